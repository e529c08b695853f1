/**
 * Importing a TRL export into the store it came from: TRL carries no ids, so the records are
 * recognised by content (prompt, chosen text, rejected text) and never stored twice.
 */
import * as assert from 'assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { openStore } from '../../../src/data';
import { alreadyStoredPairs, storedPairCounts } from '../../../src/data/pairIdentity';
import type { JudgmentRecord } from '../../../src/protocol/records';
import { sampleJudgment } from './helpers/records';
import { cli } from './helpers/cli';

describe('re-importing a TRL export into the same store', () => {
  let dir: string;
  let store: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'code-rlhf-reimport-'));
    store = path.join(dir, 'prefs.jsonl');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const judged: JudgmentRecord[] = [
    // A pick among 3: 2 TRL lines.
    sampleJudgment('r1', {}, 3),
    // A ranking c1 > c0 = c2 with a suffix: 2 TRL lines, one tie left out.
    sampleJudgment(
      'r2',
      {
        prompt: { prefix: 'x = [', suffix: ']\n' },
        judgment: { kind: 'ranking', groups: [['c1'], ['c0', 'c2']] },
      },
      3,
    ),
    // A skipped judgment: no TRL line.
    sampleJudgment('r3', { judgment: { kind: 'skipped' } }),
  ];
  const exportTrl = async (name: string) => {
    const file = path.join(dir, name);
    const result = await cli('data', 'export', store, '--format', 'trl', '--out', file);
    assert.strictEqual(result.code, 0, result.err);
    return file;
  };

  it('skips every exported pair, counts it, and leaves the store byte for byte', async () => {
    await (await openStore(store)).appendMany(judged);
    const trl = await exportTrl('export.jsonl');
    assert.strictEqual(readFileSync(trl, 'utf8').trim().split('\n').length, 4);
    const before = readFileSync(store);
    const again = await cli('data', 'import', trl, '--out', store);
    assert.strictEqual(again.code, 0, again.err);
    assert.match(
      again.out,
      /4 records read, 0 appended to .*, 4 already stored \(4 with the same pair, 0 with the same id\), 0 rejected/,
    );
    assert.deepStrictEqual(readFileSync(store), before);
  });

  it('appends only the pairs this store lacks, and nothing on a second import', async () => {
    await (await openStore(store)).appendMany(judged);
    // Another store (another machine) holds the same judgments after a new one: its export
    // has the same lines at other line numbers, so the TRL importer gives them other ids.
    const other = path.join(dir, 'other.jsonl');
    const fresh = sampleJudgment('r4', {
      prompt: { prefix: 'def sub(a, b):\n', suffix: '' },
      judgment: { kind: 'pick', best: 'c1' },
    });
    await (await openStore(other)).appendMany([fresh, ...judged]);
    const trl = path.join(dir, 'other-trl.jsonl');
    assert.strictEqual(
      (await cli('data', 'export', other, '--format', 'trl', '--out', trl)).code,
      0,
    );
    const imported = await cli('data', 'import', trl, '--out', store);
    assert.match(imported.out, /5 records read, 1 appended .*, 4 already stored/);
    const records = await (await openStore(store)).readAll();
    assert.strictEqual(records.length, 4);
    const added = records[3] as JudgmentRecord;
    assert.strictEqual(added.origin, 'import:trl');
    assert.deepStrictEqual(
      [added.prompt.prefix, added.candidates.map((c) => c.text)],
      ['def sub(a, b):\n', ['    return a - b  # 1\n', '    return a + b  # 0\n']],
    );
    // The same file again, or an export of this store (every pair at new line numbers), adds
    // nothing.
    assert.match((await cli('data', 'import', trl, '--out', store)).out, /0 appended/);
    const own = await exportTrl('own.jsonl');
    assert.match(
      (await cli('data', 'import', own, '--out', store)).out,
      /5 records read, 0 appended/,
    );
    assert.strictEqual((await (await openStore(store)).readAll()).length, 4);
  });

  it('keeps a pair repeated in one file (two votes) on the first import only', async () => {
    const trl = path.join(dir, 'votes.jsonl');
    const line = JSON.stringify({ prompt: 'a = ', chosen: '1', rejected: '2' });
    const reversed = JSON.stringify({ prompt: 'a = ', chosen: '2', rejected: '1' });
    writeFileSync(trl, `${line}\n${line}\n`);
    assert.match((await cli('data', 'import', trl, '--out', store)).out, /2 appended/);
    // The same votes at other line numbers (new ids), and the opposite verdict, which is new.
    writeFileSync(trl, `${reversed}\n\n${line}\n${line}\n`);
    const again = await cli('data', 'import', trl, '--out', store);
    assert.match(
      again.out,
      /3 records read, 1 appended .*, 2 already stored \(2 with the same pair/,
    );
    assert.strictEqual((await (await openStore(store)).readAll()).length, 3);
  });

  it('matches pairs as multisets and ignores blind A/B judgments', () => {
    const [pick] = judged;
    const blind = sampleJudgment('b1', {
      evaluation: {
        kind: 'blind-ab',
        baseCandidate: 'c1',
        tunedCandidate: 'c0',
        adapter: { name: 'a', path: 'p' },
      },
    });
    const counts = storedPairCounts([pick, blind]);
    assert.deepStrictEqual([...counts.values()], [1, 1]);
    // The first copy of `pick` matches both its pairs; the second finds none left.
    assert.deepStrictEqual([...alreadyStoredPairs([pick, pick], counts)], [0]);
  });
});
