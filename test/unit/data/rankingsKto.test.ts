import * as assert from 'assert';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { exportRecords, importFile } from '../../../src/data/formats';
import type {
  ImplicitSignalRecord,
  JudgmentRecord,
  PreferenceRecord,
} from '../../../src/protocol/records';
import { sampleJudgment } from './helpers/records';

function implicit(id: string, outcome: ImplicitSignalRecord['outcome']): ImplicitSignalRecord {
  const base = sampleJudgment(id);
  return {
    type: 'implicit',
    v: 1,
    id,
    timestamp: base.timestamp,
    annotator: 'bob',
    workspace: null,
    file: null,
    language: 'python',
    origin: 'vscode',
    prompt: base.prompt,
    redactions: [],
    candidate: base.candidates[0],
    outcome,
    visibleMs: 900,
    generationMs: 40,
  };
}

describe('rankings and KTO formats', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'code-rlhf-fmt-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function roundTrip(records: PreferenceRecord[], format: 'rankings' | 'kto') {
    const exported = exportRecords(records, format);
    const file = path.join(dir, `${format}.jsonl`);
    writeFileSync(file, exported.lines.map((l) => l + '\n').join(''));
    return { exported, imported: await importFile(file, 'auto') };
  }

  it('rankings keep picks, ties, none-good, models and positions; skipped is named', async () => {
    const records = [
      sampleJudgment('pick', { judgment: { kind: 'pick', best: 'c2' } }, 3),
      sampleJudgment(
        'tie',
        { judgment: { kind: 'ranking', groups: [['c0'], ['c1', 'c2'], ['c3']] } },
        4,
      ),
      sampleJudgment('none', { judgment: { kind: 'none-good' } }, 2),
      sampleJudgment('skip', { judgment: { kind: 'skipped' } }, 2),
    ];
    const { exported, imported } = await roundTrip(records, 'rankings');
    assert.strictEqual(imported.format, 'rankings');
    assert.strictEqual(imported.rejected.length, 0);
    assert.match(exported.notHeld[0], /^1 skipped judgment left out/);
    const back = imported.records as JudgmentRecord[];
    assert.deepStrictEqual(
      back.map((r) => r.id),
      ['pick', 'tie', 'none'],
    );
    for (let i = 0; i < 3; i++) {
      assert.deepStrictEqual(back[i].judgment, records[i].judgment);
      assert.deepStrictEqual(back[i].prompt, records[i].prompt);
      assert.deepStrictEqual(
        back[i].candidates.map((c) => [c.id, c.text, c.model, c.position]),
        records[i].candidates.map((c) => [c.id, c.text, c.model, c.position]),
      );
      assert.strictEqual(back[i].annotator, 'alice');
    }
  });

  it('a rankings line whose values make an invalid record is rejected by line, the rest kept', async () => {
    const file = path.join(dir, 'bad-rankings.jsonl');
    const good = { prompt: 'p', completions: ['a', 'b'], best: 0 };
    writeFileSync(
      file,
      [
        good,
        { ...good, positions: [0, 1.5] },
        { ...good, timestamp: 'last tuesday' },
        { ...good, best: 2 },
        { ...good, ranking: [[0]], best: undefined, none_good: true },
      ]
        .map((o) => JSON.stringify(o))
        .join('\n'),
    );
    const result = await importFile(file, 'rankings');
    assert.strictEqual(result.records.length, 1);
    assert.deepStrictEqual(
      result.rejected.map((r) => r.line),
      [2, 3, 4, 5],
    );
    assert.match(result.rejected[0].reason, /candidates\[1\]\.position/);
    assert.match(result.rejected[1].reason, /key "timestamp"/);
    assert.match(result.rejected[2].reason, /"best" must be an index 0\.\.1, got 2/);
    assert.match(result.rejected[3].reason, /exactly one of "best", "ranking", "none_good"/);
  });

  it('KTO labels: pick best good and others bad; ranking top good, bottom bad, middle left out', async () => {
    const records: PreferenceRecord[] = [
      sampleJudgment('pick', {}, 3),
      sampleJudgment(
        'rank',
        { judgment: { kind: 'ranking', groups: [['c0'], ['c1', 'c2'], ['c3']] } },
        4,
      ),
      sampleJudgment('none', { judgment: { kind: 'none-good' } }, 2),
      implicit('acc', 'accepted'),
      implicit('ign', 'ignored'),
    ];
    const { exported, imported } = await roundTrip(records, 'kto');
    assert.deepStrictEqual(
      exported.lines.map((l) => JSON.parse(l).label),
      [true, false, false, true, false, false, false, true],
    );
    assert.ok(exported.notHeld.some((n) => /^2 middle-ranked candidates left out/.test(n)));
    assert.ok(exported.notHeld.some((n) => /^1 ignored inline suggestion left out/.test(n)));
    assert.strictEqual(imported.records.length, 8);
    const back = imported.records as ImplicitSignalRecord[];
    assert.deepStrictEqual(
      back.map((r) => r.outcome),
      [
        'accepted',
        'rejected',
        'rejected',
        'accepted',
        'rejected',
        'rejected',
        'rejected',
        'accepted',
      ],
    );
    assert.strictEqual(
      back[0].candidate.text,
      records[0].type === 'judgment' ? records[0].candidates[0].text : '',
    );
    assert.strictEqual(back[0].prompt.prefix, 'def add(a, b):\n');
    const withIgnored = exportRecords(records, 'kto', { ignoredAsBad: true });
    assert.strictEqual(withIgnored.lines.length, 9);
  });

  it('a KTO line without a label is rejected saying the key is missing', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kto-label-'));
    try {
      const file = path.join(dir, 'labels.jsonl');
      const lines = [
        { prompt: 'a = ', completion: '1' },
        { prompt: 'a = ', completion: '1', label: 'yes' },
        { prompt: 'a = ', completion: '1', label: true },
      ];
      writeFileSync(file, lines.map((l) => JSON.stringify(l) + '\n').join(''));
      const result = await importFile(file, 'kto');
      assert.deepStrictEqual(result.rejected, [
        { line: 1, reason: 'key "label" is missing; allowed: true or false' },
        { line: 2, reason: 'key "label" must be true or false, got "yes"' },
      ]);
      assert.strictEqual(result.records.length, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
