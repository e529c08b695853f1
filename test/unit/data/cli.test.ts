import * as assert from 'assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cli } from '../../support/cli';

const FIXTURES = path.join(__dirname, '..', '..', 'fixtures', 'data');

describe('code-rlhf data CLI', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'code-rlhf-cli-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('prints help, and rejects unknown commands and options with exit 2', async () => {
    assert.match((await cli('--help')).out, /data\s+import, export, validate/);
    const help = await cli('data', '--help');
    assert.strictEqual(help.code, 0);
    assert.match(help.out, /code-rlhf data stats <file>/);
    const unknown = await cli('dta');
    assert.strictEqual(unknown.code, 2);
    assert.match(unknown.err, /unknown command "dta"; allowed: data/);
    const badOption = await cli('data', 'stats', 'x.csv', '--jsn');
    assert.strictEqual(badOption.code, 2);
    assert.match(badOption.err, /unknown option --jsn; allowed: --format, --json/);
    const missing = await cli('data', 'stats', path.join(dir, 'nope.jsonl'));
    assert.strictEqual(missing.code, 2);
    assert.match(missing.err, /nope\.jsonl does not exist; expected a dataset file/);
  });

  it('imports the Copilot Arena CSV, is idempotent, and reports the malformed row', async () => {
    const store = path.join(dir, 'prefs.jsonl');
    const csv = path.join(FIXTURES, 'copilot-arena-battles.csv');
    const first = await cli('data', 'import', csv, '--out', store);
    assert.strictEqual(first.code, 0, first.err);
    assert.match(first.out, /79 records read, 79 appended .* 1 rejected/);
    assert.match(first.err, /copilot-arena-battles\.csv:2174: row has 1 field, expected 7/);
    const again = await cli('data', 'import', csv, '--out', store);
    assert.match(again.out, /0 appended .* 79 already stored/);
    const validate = await cli('data', 'validate', store);
    assert.strictEqual(validate.code, 0, validate.err);
    assert.match(validate.out, /79 valid records, 0 problems/);
  });

  it('exports TRL, rankings and KTO with a summary of what was not held, atomically', async () => {
    const store = path.join(dir, 'prefs.jsonl');
    await cli('data', 'import', path.join(FIXTURES, 'trl-implicit.jsonl'), '--out', store);
    const out = path.join(dir, 'trl.jsonl');
    const exported = await cli(
      'data',
      'export',
      store,
      '--format',
      'trl',
      '--out',
      out,
      '--margins',
    );
    assert.strictEqual(exported.code, 0, exported.err);
    assert.match(exported.out, /4 lines from 4 of 4 records/);
    assert.match(exported.out, /note: metadata not held/);
    assert.strictEqual(readFileSync(out, 'utf8').trim().split('\n').length, 4);
    const refused = await cli('data', 'export', store, '--format', 'trl', '--out', out);
    assert.strictEqual(refused.code, 2);
    assert.match(refused.err, /exists; pass --force/);
    const badFormat = await cli('data', 'export', store, '--format', 'parquet', '--out', out);
    assert.match(
      badFormat.err,
      /--format "parquet" is unknown; allowed: trl, rankings, kto, records/,
    );
  });

  it('validate names the line and key of a bad record and exits 1', async () => {
    const store = path.join(dir, 'prefs.jsonl');
    await cli('data', 'import', path.join(FIXTURES, 'trl-degenerate.jsonl'), '--out', store);
    const line = readFileSync(store, 'utf8').trim();
    writeFileSync(
      store,
      `${line}\n${line.replace('"annotator":"imported"', '"annotator":7')}\n${line}\n`,
    );
    const result = await cli('data', 'validate', store);
    assert.strictEqual(result.code, 1);
    assert.match(result.err, /prefs\.jsonl:2: key "annotator": must be a string, got number 7/);
    assert.match(result.err, /stored twice \(records 1 and 2\)/);
    assert.match(result.out, /2 valid records, 2 problems/);
  });

  it('repair moves a torn tail aside and validate is clean afterwards', async () => {
    const store = path.join(dir, 'prefs.jsonl');
    await cli('data', 'import', path.join(FIXTURES, 'trl-implicit.jsonl'), '--out', store);
    writeFileSync(store, readFileSync(store, 'utf8') + '{"type":"judgment","v":1,"id":"to');
    const before = await cli('data', 'validate', store);
    assert.strictEqual(before.code, 1);
    assert.match(before.err, /prefs\.jsonl:5: unterminated last line \(torn write\)/);
    const repaired = await cli('data', 'repair', store);
    assert.match(repaired.out, /moved a torn last line \(33 bytes\) to .*prefs\.jsonl\.torn-/);
    assert.strictEqual((await cli('data', 'validate', store)).code, 0);
    writeFileSync(store, Buffer.concat([readFileSync(store), Buffer.from([0x7b, 0xc3])]));
    const cutInCharacter = await cli('data', 'validate', store);
    assert.strictEqual(cutInCharacter.code, 1);
    assert.match(
      cutInCharacter.err,
      /prefs\.jsonl:5: unterminated last line \(torn write\?\) is not valid UTF-8/,
    );
  });

  it('stats on the shared CSV reports the position bias', async () => {
    const result = await cli('data', 'stats', path.join(FIXTURES, 'copilot-arena-battles.csv'));
    assert.strictEqual(result.code, 0);
    assert.match(result.out, /records: 79/);
    assert.match(result.out, /position 0: 65\/79 = 82\.3% \[72\.4%, 89\.1%\]/);
    const json = JSON.parse(
      (await cli('data', 'stats', path.join(FIXTURES, 'copilot-arena-battles.csv'), '--json')).out,
    );
    assert.strictEqual(json.stats.positionBias[0].byPosition[0].count, 65);
  });
});
