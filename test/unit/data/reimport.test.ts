/**
 * Importing a TRL or KTO export into the store it came from: neither format carries ids, so the
 * records are recognised by content (prompt, chosen text, rejected text; or prompt, completion,
 * label) and never stored twice.
 */
import * as assert from 'assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { openStore } from '../../../src/data';
import {
  alreadyStoredLabels,
  alreadyStoredPairs,
  storedLabelCounts,
  storedPairCounts,
} from '../../../src/data/pairIdentity';
import { importedCandidate, importedImplicit } from '../../../src/data/recordFactory';
import type { JudgmentRecord } from '../../../src/protocol/records';
import { sampleJudgment } from './helpers/records';
import { cli } from '../../support/cli';

/** A folder and a store path in it, fresh for each test of the enclosing `describe`. */
function tempStore(prefix: string): { dir: string; store: string } {
  const paths = { dir: '', store: '' };
  beforeEach(() => {
    paths.dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    paths.store = path.join(paths.dir, 'prefs.jsonl');
  });
  afterEach(() => rmSync(paths.dir, { recursive: true, force: true }));
  return paths;
}

/** The judgments both formats export: 4 TRL lines, 6 KTO lines. */
const judged: JudgmentRecord[] = [
  // A pick among 3: 2 TRL lines; 3 KTO lines (one good, two bad).
  sampleJudgment('r1', {}, 3),
  // A ranking c1 > c0 = c2 with a suffix: 2 TRL lines, one tie left out; c1 good, c0 and c2 bad.
  sampleJudgment(
    'r2',
    {
      prompt: { prefix: 'x = [', suffix: ']\n' },
      judgment: { kind: 'ranking', groups: [['c1'], ['c0', 'c2']] },
    },
    3,
  ),
  // A skipped judgment: no line in either.
  sampleJudgment('r3', { judgment: { kind: 'skipped' } }),
];

/** A blind A/B judgment: an evaluation, which neither format exports. */
const blindJudgment = () =>
  sampleJudgment('b1', {
    evaluation: {
      kind: 'blind-ab',
      baseCandidate: 'c1',
      tunedCandidate: 'c0',
      adapter: { name: 'a', path: 'p' },
    },
  });

/** Exports `store` as `format` to `file` with the CLI; returns `file`. */
async function exportStore(store: string, format: 'trl' | 'kto', file: string, ...flags: string[]) {
  const result = await cli('data', 'export', store, '--format', format, '--out', file, ...flags);
  assert.strictEqual(result.code, 0, result.err);
  return file;
}

/**
 * Imports `file` (an export of `store` with `lines` lines) back into `store`: every line is
 * counted as already stored (the same `unit`, "pair" or "label") and the store is left byte for
 * byte.
 */
async function assertReimportAddsNothing(
  store: string,
  file: string,
  lines: number,
  unit: string,
): Promise<void> {
  assert.strictEqual(readFileSync(file, 'utf8').trim().split('\n').length, lines);
  const before = readFileSync(store);
  const again = await cli('data', 'import', file, '--out', store);
  assert.strictEqual(again.code, 0, again.err);
  assert.match(
    again.out,
    new RegExp(
      `${lines} records read, 0 appended to .*, ${lines} already stored ` +
        `\\(${lines} with the same ${unit}, 0 with the same id\\), 0 rejected`,
    ),
  );
  assert.deepStrictEqual(readFileSync(store), before);
}

describe('re-importing a TRL export into the same store', () => {
  const tmp = tempStore('code-rlhf-reimport-');
  const exportTrl = (name: string) => exportStore(tmp.store, 'trl', path.join(tmp.dir, name));

  it('skips every exported pair, counts it, and leaves the store byte for byte', async () => {
    await (await openStore(tmp.store)).appendMany(judged);
    await assertReimportAddsNothing(tmp.store, await exportTrl('export.jsonl'), 4, 'pair');
  });

  it('appends only the pairs this store lacks, and nothing on a second import', async () => {
    const { dir, store } = tmp;
    await (await openStore(store)).appendMany(judged);
    // Another store (another machine) holds the same judgments after a new one: its export
    // has the same lines at other line numbers, so the TRL importer gives them other ids.
    const other = path.join(dir, 'other.jsonl');
    const fresh = sampleJudgment('r4', {
      prompt: { prefix: 'def sub(a, b):\n', suffix: '' },
      judgment: { kind: 'pick', best: 'c1' },
    });
    await (await openStore(other)).appendMany([fresh, ...judged]);
    const trl = await exportStore(other, 'trl', path.join(dir, 'other-trl.jsonl'));
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
    const { dir, store } = tmp;
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
    const counts = storedPairCounts([pick, blindJudgment()]);
    assert.deepStrictEqual([...counts.values()], [1, 1]);
    // The first copy of `pick` matches both its pairs; the second finds none left.
    assert.deepStrictEqual([...alreadyStoredPairs([pick, pick], counts)], [0]);
  });
});

describe('re-importing a KTO export into the same store', () => {
  const tmp = tempStore('code-rlhf-reimport-kto-');

  const implicit = (id: string, outcome: 'accepted' | 'ignored') =>
    importedImplicit({
      id,
      origin: 'vscode',
      annotator: 'alice',
      prefix: 'let total = ',
      suffix: ';\n',
      candidate: importedCandidate('c0', `items.length${outcome === 'ignored' ? ' * 2' : ''}`),
      outcome,
    });
  const stored = [
    ...judged,
    // An accepted suggestion: one good line; an ignored one: no line by default.
    implicit('i1', 'accepted'),
    implicit('i2', 'ignored'),
  ];
  const exportKto = (name: string, ...flags: string[]) =>
    exportStore(tmp.store, 'kto', path.join(tmp.dir, name), ...flags);
  const count = async () => (await (await openStore(tmp.store)).readAll()).length;

  it('skips every exported label, counts it, and leaves the store byte for byte', async () => {
    await (await openStore(tmp.store)).appendMany(stored);
    await assertReimportAddsNothing(tmp.store, await exportKto('export.jsonl'), 7, 'label');
  });

  it('imports a file once: the same file again, or with its lines moved, adds nothing', async () => {
    const { dir, store } = tmp;
    const kto = path.join(dir, 'labels.jsonl');
    const lines = [
      { prompt: 'a = ', completion: '1', label: true },
      { prompt: 'a = ', completion: '1', label: true },
      { prompt: 'a = ', completion: '1', label: false },
      { prompt: 'f(', completion: 'x', suffix: ')\n', label: false },
      {
        prompt: [{ role: 'user', content: 'add 1 and 2' }],
        completion: [{ role: 'assistant', content: '3' }],
        label: true,
      },
    ].map((line) => JSON.stringify(line));
    writeFileSync(kto, lines.map((l) => `${l}\n`).join(''));
    // The repeated label (two votes) is kept twice on the first import.
    assert.match(
      (await cli('data', 'import', kto, '--out', store)).out,
      /5 records read, 5 appended/,
    );
    assert.strictEqual(await count(), 5);
    const again = await cli('data', 'import', kto, '--out', store);
    assert.match(
      again.out,
      /5 records read, 0 appended .*, 5 already stored \(5 with the same label/,
    );
    assert.strictEqual(await count(), 5);
    // Other line numbers give the importer other ids; the labels still match, and a third vote
    // for the repeated one and the opposite label of another are new.
    const flipped = JSON.stringify({ prompt: 'f(', completion: 'x', suffix: ')\n', label: true });
    writeFileSync(kto, ['', ...[...lines].reverse(), lines[0], flipped].join('\n'));
    const moved = await cli('data', 'import', kto, '--out', store);
    assert.match(
      moved.out,
      /7 records read, 2 appended .*, 5 already stored \(5 with the same label/,
    );
    assert.strictEqual(await count(), 7);
  });

  it('refuses to import into a store with an unreadable line, naming it, and writes nothing', async () => {
    const { dir, store } = tmp;
    await (await openStore(store)).appendMany(stored);
    const kto = await exportKto('export.jsonl');
    const trl = await exportStore(store, 'trl', path.join(dir, 'export-trl.jsonl'));
    // A line of a newer schema version: its labels cannot be known, so they could be re-added.
    const lines = readFileSync(store, 'utf8').split('\n');
    lines[1] = JSON.stringify({ ...JSON.parse(lines[1]), v: 99 });
    writeFileSync(store, lines.join('\n'));
    const before = readFileSync(store);
    for (const [file, unit] of [
      [kto, 'label'],
      [trl, 'pair'],
    ]) {
      for (const dryRun of [[], ['--dry-run']]) {
        const again = await cli('data', 'import', file, '--out', store, ...dryRun);
        assert.strictEqual(again.code, 1, again.out);
        assert.match(again.err, /^unreadable lines in the store .*: 1$/m);
        assert.match(again.err, new RegExp(`^  ${store}:2: key "v": version 99 is newer`, 'm'));
        assert.match(
          again.err,
          new RegExp(
            `not import(ing)?: [A-Z]+ lines carry no ids, .* a ${unit} held only there would be ` +
              `stored twice\\. ${store} is unchanged; fix or move those lines`,
          ),
        );
        assert.deepStrictEqual(readFileSync(store), before);
      }
    }
  });

  it('brings ignored suggestions back as rejected from an --ignored-as-bad export', async () => {
    const { store } = tmp;
    await (await openStore(store)).appendMany(stored);
    const kto = await exportKto('with-ignored.jsonl', '--ignored-as-bad');
    const again = await cli('data', 'import', kto, '--out', store);
    assert.match(again.out, /8 records read, 1 appended .*, 7 already stored/);
    const added = (await (await openStore(store)).readAll()).slice(-1)[0];
    assert.ok(added.type === 'implicit' && added.outcome === 'rejected');
  });

  it('matches labels as multisets and ignores blind A/B judgments', () => {
    const [pick] = stored;
    const counts = storedLabelCounts([pick, blindJudgment()]);
    assert.deepStrictEqual([...counts.values()], [1, 1, 1]);
    const good = implicit('g', 'accepted');
    good.prompt = pick.prompt;
    good.candidate = (pick as JudgmentRecord).candidates[0];
    // The pick's good label matches the first copy only.
    assert.deepStrictEqual([...alreadyStoredLabels([good, good], counts)], [0]);
  });
});
