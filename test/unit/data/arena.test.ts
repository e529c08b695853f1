import * as assert from 'assert';
import * as path from 'path';
import { importArenaCsv, importArenaCsvText } from '../../../src/data/formats/copilotArena';
import { parseCsv } from '../../../src/data/formats/csv';
import type { JudgmentRecord } from '../../../src/protocol/records';

const CSV = path.join(__dirname, '..', '..', 'fixtures', 'data', 'copilot-arena-battles.csv');
const HEADER = 'prefix,suffix,model_a,model_b,acceptedIndex,completion_a,completion_b';

describe('Copilot Arena CSV import', () => {
  it('imports the shared file: 79 records and 1 malformed row reported at line 2174', async () => {
    const result = await importArenaCsv(CSV);
    assert.strictEqual(result.records.length, 79);
    assert.strictEqual(result.rejected.length, 1);
    assert.strictEqual(result.rejected[0].line, 2174);
    assert.match(result.rejected[0].reason, /1 field, expected 7/);
    const records = result.records as JudgmentRecord[];
    assert.strictEqual(
      records.filter((r) => r.judgment.kind === 'pick' && r.judgment.best === 'a').length,
      65,
    );
    // Mixed CRLF/LF inside quoted fields and trailing whitespace are kept byte for byte.
    assert.ok(records.some((r) => r.prompt.prefix.includes('\r\n')));
    assert.ok(records.some((r) => r.candidates.some((c) => c.text.includes('\r\n'))));
    assert.strictEqual(new Set(records.map((r) => r.id)).size, 79);
    assert.deepStrictEqual(
      records[0].candidates.map((c) => c.position),
      [0, 1],
    );
  });

  it('parses quotes, doubled quotes, CRLF inside fields and a BOM', () => {
    const rows = parseCsv('\ufeffa,b\r\n"x,1","he said ""hi""\r\nnext"\n3,4');
    assert.deepStrictEqual(
      rows.map((r) => [r.line, r.fields]),
      [
        [1, ['a', 'b']],
        [2, ['x,1', 'he said "hi"\r\nnext']],
        [4, ['3', '4']],
      ],
    );
  });

  it('is lenient: bad acceptedIndex, wrong width and an unclosed quote are reported by line', () => {
    const text = [
      HEADER,
      'p,s,m1,m2,0.0,a,b',
      'p,s,m1,m2,2,a,b',
      'p,s,m1,m2',
      'p,s,m1,m2,1,same,same',
      'p,s,m1,m2,1.0,a,"b',
    ].join('\n');
    const result = importArenaCsvText(text);
    assert.strictEqual(result.records.length, 1);
    assert.deepStrictEqual(
      result.rejected.map((r) => r.line),
      [3, 4, 5, 6],
    );
    assert.match(result.rejected[0].reason, /acceptedIndex "2"/);
    assert.match(result.rejected[3].reason, /never closed/);
  });

  it('names the missing column when the header is wrong', () => {
    assert.throws(() => importArenaCsvText('prefix,suffix\n'), /header lacks column "model_a"/);
  });
});
