import * as assert from 'assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { exportRecords, importFile } from '../../../src/data/formats';
import { importTrl, splitSharedPrompt } from '../../../src/data/formats/trl';
import { expandJudgment } from '../../../src/data/pairs';
import type { JudgmentRecord, PreferenceRecord } from '../../../src/protocol/records';
import { sampleJudgment } from './helpers/records';

const FIXTURES = path.join(__dirname, '..', '..', 'fixtures', 'data');
const fixture = (name: string) => path.join(FIXTURES, name);

function texts(record: PreferenceRecord): { prompt: string; chosen: string; rejected: string } {
  const r = record as JudgmentRecord;
  assert.strictEqual(r.judgment.kind, 'pick');
  return { prompt: r.prompt.prefix, chosen: r.candidates[0].text, rejected: r.candidates[1].text };
}

describe('TRL preference import and export', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'code-rlhf-trl-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('D1(1): rejects chosen identical to rejected, citing line 2; one pair remains', async () => {
    const result = await importTrl(fixture('trl-degenerate.jsonl'));
    assert.strictEqual(result.records.length, 1);
    assert.deepStrictEqual(result.rejected, [
      { line: 2, reason: 'chosen identical to rejected (a pair with no information)' },
    ]);
    assert.strictEqual(expandJudgment(result.records[0] as JudgmentRecord).pairs.length, 1);
  });

  it('D4: infers implicit prompts the TRL way without empty completions', async () => {
    const result = await importTrl(fixture('trl-implicit.jsonl'));
    assert.strictEqual(result.rejected.length, 0);
    const [a, b, c, d] = result.records as JudgmentRecord[];
    assert.deepStrictEqual(texts(a), { prompt: 'Q: hi\nA:', chosen: ' yes', rejected: ' no' });
    assert.strictEqual(texts(a).prompt + texts(a).chosen, 'Q: hi\nA: yes');
    // (b) one response is a prefix of the other: kept whole with prompt "" and a warning.
    assert.deepStrictEqual(texts(b), {
      prompt: '',
      chosen: 'The sky is blue',
      rejected: 'The sky is blue and vast',
    });
    assert.deepStrictEqual(
      result.warnings.map((w) => w.line),
      [2],
    );
    assert.match(result.warnings[0].reason, /one response is a prefix of the other/);
    assert.deepStrictEqual(texts(c), { prompt: '', chosen: 'Yes', rejected: 'No ' });
    // (d) conversational: the shared leading messages are the prompt, never a stringified list.
    assert.deepStrictEqual(d.prompt.messages, [{ role: 'user', content: 'Write add' }]);
    assert.strictEqual(d.prompt.prefix, '');
    assert.deepStrictEqual(d.candidates[0].messages, [
      { role: 'assistant', content: 'def add(a, b): return a + b' },
    ]);
    assert.strictEqual(d.candidates[1].text, 'def add(a, b): return a - b');
  });

  it('splitSharedPrompt never splits a surrogate pair and handles first-character divergence', () => {
    assert.deepStrictEqual(splitSharedPrompt('x😀', 'x😁'), {
      prompt: 'x',
      chosen: '😀',
      rejected: '😁',
      prefixCase: false,
    });
    assert.deepStrictEqual(splitSharedPrompt(' a', 'b'), {
      prompt: '',
      chosen: ' a',
      rejected: 'b',
      prefixCase: false,
    });
  });

  it('D7(a): BOM, CRLF and a blank last line give 3 records with no stray \\r', async () => {
    const result = await importTrl(fixture('trl-windows-bom-crlf.jsonl'));
    assert.strictEqual(result.records.length, 3);
    assert.strictEqual(result.rejected.length, 0);
    assert.deepStrictEqual(texts(result.records[0]), {
      prompt: 'def add(a, b):\n',
      chosen: '    return a + b\n',
      rejected: '    return a - b\n',
    });
    // CRLF inside a value (escaped in JSON) is data and stays.
    assert.deepStrictEqual(texts(result.records[2]), {
      prompt: 'if ok:\r\n',
      chosen: '\tpass\r\n',
      rejected: '\tcontinue\r\n',
    });
  });

  it('D7(b): a 5 MiB single-line chosen imports whole', async () => {
    const file = path.join(dir, 'long.jsonl');
    const chosen = 'a = 1  # '.padEnd(5 * 1024 * 1024, 'x');
    writeFileSync(
      file,
      JSON.stringify({ prompt: 'p', chosen, rejected: 'b = 2' }) +
        '\n' +
        JSON.stringify({ prompt: 'q', chosen: 'c', rejected: 'd' }) +
        '\n',
    );
    const result = await importTrl(file);
    assert.strictEqual(result.records.length, 2);
    assert.strictEqual(texts(result.records[0]).chosen.length, 5_242_880);
  });

  it('D7(c): escaped control characters survive import -> export -> import byte for byte', async () => {
    const first = await importTrl(fixture('trl-escapes.jsonl'));
    const exported = exportRecords(first.records, 'trl');
    const file = path.join(dir, 'again.jsonl');
    writeFileSync(file, exported.lines.join('\n') + '\n');
    const second = await importTrl(file);
    assert.deepStrictEqual(texts(second.records[0]), texts(first.records[0]));
    assert.strictEqual(texts(second.records[0]).prompt, 'int main() {\r\n\tprintf("a\\n");\r\n');
    assert.deepStrictEqual(
      JSON.parse(exported.lines[0]),
      JSON.parse(readFileSync(fixture('trl-escapes.jsonl'), 'utf8')),
    );
  });

  it('D3(3): a pure tie exports 0 TRL lines and says "1 tie skipped"; re-import count equals exported pairs', async () => {
    const tie = sampleJudgment('tie', { judgment: { kind: 'ranking', groups: [['c0', 'c1']] } });
    const ranked = sampleJudgment(
      'rank',
      { judgment: { kind: 'ranking', groups: [['c0'], ['c1', 'c2'], ['c3']] } },
      4,
    );
    const onlyTie = exportRecords([tie], 'trl');
    assert.strictEqual(onlyTie.lines.length, 0);
    assert.match(onlyTie.notHeld[0], /^1 tie skipped/);
    const both = exportRecords([tie, ranked], 'trl', { margins: true });
    assert.strictEqual(both.lines.length, 5);
    assert.match(both.notHeld[0], /^2 ties skipped/);
    assert.deepStrictEqual(
      both.lines.map((l) => JSON.parse(l).margin),
      [1, 1, 2, 1, 1],
    );
    const file = path.join(dir, 'pairs.jsonl');
    writeFileSync(file, both.lines.join('\n') + '\n');
    const back = await importTrl(file);
    assert.strictEqual(back.records.length, both.lines.length);
    assert.deepStrictEqual(
      back.records.map((r) => r.meta?.margin),
      [1, 1, 2, 1, 1],
    );
  });

  it('export -> import is lossless for prompt, suffix, texts, margin and conversations', async () => {
    const withSuffix = sampleJudgment('s', { prompt: { prefix: 'f(', suffix: ')\r\n' } });
    const conv = (await importTrl(fixture('trl-implicit.jsonl'))).records[3];
    const exported = exportRecords([withSuffix, conv], 'trl', { margins: true });
    const file = path.join(dir, 'rt.jsonl');
    writeFileSync(file, exported.lines.join('\n') + '\n');
    const back = (await importFile(file, 'auto')).records as JudgmentRecord[];
    assert.deepStrictEqual(back[0].prompt, { prefix: 'f(', suffix: ')\r\n' });
    assert.deepStrictEqual(
      back[0].candidates.map((c) => c.text),
      withSuffix.candidates.map((c) => c.text),
    );
    assert.strictEqual(back[0].meta?.margin, 1);
    assert.deepStrictEqual(back[1].prompt.messages, (conv as JudgmentRecord).prompt.messages);
    assert.deepStrictEqual(
      back[1].candidates.map((c) => c.messages),
      (conv as JudgmentRecord).candidates.map((c) => c.messages),
    );
    assert.ok(exported.notHeld.some((n) => /suffix/.test(n)));
  });

  it('reports bad lines by number and reason, imports the rest', async () => {
    const file = path.join(dir, 'bad.jsonl');
    writeFileSync(
      file,
      [
        '{"prompt":"a","chosen":"b","rejected":"c"}',
        '{not json',
        '{"prompt":"a","chosen":"b"}',
        '[1]',
        '{"prompt":1,"chosen":"b","rejected":"c"}',
        '{"prompt":"a","chosen":"b","rejected":"c","margin":"big"}',
      ].join('\n'),
    );
    const result = await importTrl(file);
    assert.strictEqual(result.records.length, 1);
    assert.deepStrictEqual(
      result.rejected.map((r) => r.line),
      [2, 3, 4, 5, 6],
    );
    assert.match(result.rejected[0].reason, /not valid JSON/);
    assert.match(result.rejected[1].reason, /missing key "rejected"/);
    assert.match(result.rejected[4].reason, /key "margin" must be a finite number/);
  });

  it('the same file imported twice yields the same ids (idempotent import)', async () => {
    const a = await importTrl(fixture('trl-implicit.jsonl'));
    const b = await importTrl(fixture('trl-implicit.jsonl'));
    assert.deepStrictEqual(
      a.records.map((r) => r.id),
      b.records.map((r) => r.id),
    );
  });
});
