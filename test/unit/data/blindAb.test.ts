import * as assert from 'assert';
import { blindAbOutcome, blindAbScore, isEvaluationRecord } from '../../../src/data/blindAb';
import { exportRecords } from '../../../src/data/formats';
import { RecordValidationError, validateRecord } from '../../../src/data/recordSchema';
import { winRate } from '../../../src/data/winRate';
import type { Judgment, JudgmentRecord } from '../../../src/protocol/records';
import { pairsFromRecords } from '../../../src/rlhf/preferences';
import { sampleJudgment } from './helpers/records';

const ADAPTER = { name: 'run-1 dpo', path: '/store/training/run-1/dpo/adapter' };

/** A valid blind A/B record: c0 base, c1 tuned, shown tuned first. */
function blindRecord(id: string, judgment: Judgment, adapter = ADAPTER): JudgmentRecord {
  const record = sampleJudgment(id, { judgment }, 2);
  record.candidates[0].text = 'BLIND base';
  record.candidates[1].text = 'BLIND tuned';
  record.candidates[1].adapter = adapter.name;
  record.candidates[0].position = 1;
  record.candidates[1].position = 0;
  record.evaluation = {
    kind: 'blind-ab',
    baseCandidate: 'c0',
    tunedCandidate: 'c1',
    adapter: { ...adapter },
  };
  return record;
}

function rejects(value: unknown, key: string, reason: RegExp): void {
  assert.throws(
    () => validateRecord(value, 4, 'judgments.jsonl'),
    (e: Error) => {
      assert.ok(e instanceof RecordValidationError, `not a RecordValidationError: ${e.message}`);
      assert.strictEqual(e.key, key, e.message);
      assert.match(e.message, reason);
      assert.ok(e.message.startsWith(`judgments.jsonl:4: key "${key}"`), e.message);
      return true;
    },
  );
}

const copy = (r: JudgmentRecord) => JSON.parse(JSON.stringify(r));

describe('blind A/B records (schema v2)', () => {
  it('accepts a blind A/B record and keeps its evaluation through validation', () => {
    const record = blindRecord('b1', { kind: 'pick', best: 'c1' });
    const valid = validateRecord(copy(record)) as JudgmentRecord;
    assert.deepStrictEqual(valid.evaluation, record.evaluation);
    assert.ok(isEvaluationRecord(valid));
    assert.ok(!isEvaluationRecord(sampleJudgment('plain')));
  });

  it('rejects a bad evaluation, naming the key and what is allowed', () => {
    const r = () => copy(blindRecord('b1', { kind: 'pick', best: 'c1' }));
    rejects({ ...r(), v: 1 }, 'evaluation', /needs schema version 2 or later; the record has v 1/);
    rejects(
      { ...r(), evaluation: { ...r().evaluation, kind: 'arena' } },
      'evaluation.kind',
      /unknown kind string "arena"; allowed: "blind-ab"/,
    );
    rejects(
      { ...r(), evaluation: { ...r().evaluation, baseCandidate: 'c7' } },
      'evaluation.baseCandidate',
      /unknown candidate "c7"; ids: c0, c1/,
    );
    rejects(
      { ...r(), evaluation: { ...r().evaluation, tunedCandidate: 'c0' } },
      'evaluation.tunedCandidate',
      /must differ from baseCandidate/,
    );
    rejects(
      { ...r(), evaluation: { ...r().evaluation, adapter: { name: 'x' } } },
      'evaluation.adapter.path',
      /must be a string, got missing/,
    );
    const baseWithAdapter = r();
    baseWithAdapter.candidates[0].adapter = 'run-1 dpo';
    rejects(baseWithAdapter, 'candidates[0].adapter', /base candidate c0 must have adapter null/);
    const tunedMismatch = r();
    tunedMismatch.candidates[1].adapter = 'run-2 ppo';
    rejects(
      tunedMismatch,
      'candidates[1].adapter',
      /tuned candidate c1 must name the adapter "run-1 dpo", got string "run-2 ppo"/,
    );
    const three = copy(sampleJudgment('b3', {}, 3));
    three.candidates[1].adapter = ADAPTER.name;
    three.evaluation = r().evaluation;
    rejects(three, 'candidates', /exactly 2 candidates \(base and tuned\), got 3/);
    const implicit = {
      ...r(),
      type: 'implicit',
      candidate: r().candidates[0],
      outcome: 'accepted',
      visibleMs: null,
    };
    rejects(implicit, 'evaluation', /only on judgment records/);
  });

  it('says which side each judgment preferred; "none good" is a tie, skip counts nothing', () => {
    const outcome = (judgment: Judgment) => blindAbOutcome(blindRecord('x', judgment));
    assert.strictEqual(outcome({ kind: 'pick', best: 'c1' }), 'tuned');
    assert.strictEqual(outcome({ kind: 'pick', best: 'c0' }), 'base');
    assert.strictEqual(outcome({ kind: 'ranking', groups: [['c0', 'c1']] }), 'tie');
    assert.strictEqual(outcome({ kind: 'ranking', groups: [['c1'], ['c0']] }), 'tuned');
    assert.strictEqual(outcome({ kind: 'ranking', groups: [['c0'], ['c1']] }), 'base');
    assert.strictEqual(outcome({ kind: 'ranking', groups: [['c0']] }), 'no-preference');
    assert.strictEqual(outcome({ kind: 'none-good' }), 'tie');
    assert.strictEqual(outcome({ kind: 'skipped' }), 'no-preference');
    assert.strictEqual(blindAbOutcome(sampleJudgment('plain')), undefined);
  });

  it('scores one adapter from the store: ties half a win, duplicates once, others apart', () => {
    const other = { name: 'run-2 ppo', path: '/store/training/run-2/ppo/adapter' };
    const records = [
      blindRecord('a', { kind: 'pick', best: 'c1' }),
      blindRecord('b', { kind: 'pick', best: 'c1' }),
      blindRecord('b', { kind: 'pick', best: 'c1' }), // the same record stored twice
      blindRecord('c', { kind: 'pick', best: 'c1' }),
      blindRecord('d', { kind: 'pick', best: 'c0' }),
      blindRecord('e', { kind: 'ranking', groups: [['c0', 'c1']] }),
      blindRecord('f', { kind: 'none-good' }),
      blindRecord('g', { kind: 'skipped' }),
      blindRecord('h', { kind: 'pick', best: 'c0' }, other),
      sampleJudgment('plain'),
    ];
    const score = blindAbScore(records, ADAPTER.path);
    assert.strictEqual(score.wins, 3);
    assert.strictEqual(score.losses, 1);
    assert.strictEqual(score.ties, 2);
    assert.strictEqual(score.skipped, 1);
    assert.strictEqual(score.n, 6);
    assert.strictEqual(score.rate, 4 / 6);
    assert.strictEqual(score.adapterName, ADAPTER.name);
    // The interval is the Wilson interval of 4 successes in 6, as the trainer's evaluation uses.
    const expected = winRate(3, 1, 2);
    assert.strictEqual(score.low, expected.low);
    assert.strictEqual(score.high, expected.high);
    assert.ok(Math.abs(score.low - 0.3) < 0.001 && Math.abs(score.high - 0.9032) < 0.001);
    const none = blindAbScore(records, '/nowhere');
    assert.strictEqual(none.n, 0);
    assert.ok(Number.isNaN(none.rate));
  });

  it('reward-model and DPO pairs leave blind A/B records out and count them', () => {
    const summary = pairsFromRecords([
      blindRecord('a', { kind: 'pick', best: 'c1' }),
      blindRecord('b', { kind: 'ranking', groups: [['c0', 'c1']] }),
      sampleJudgment('plain', {}, 3),
    ]);
    assert.strictEqual(summary.evaluationRecords, 2);
    assert.strictEqual(summary.strictPairs, 2);
    assert.strictEqual(summary.tiePairs, 0);
    assert.ok(summary.pairs.every((p) => p.recordId === 'plain'));
  });

  it('training exports leave blind A/B records out and say so; the records export keeps them', () => {
    const records = [
      blindRecord('a', { kind: 'pick', best: 'c1' }),
      blindRecord('b', { kind: 'none-good' }),
      sampleJudgment('plain', {}, 2),
    ];
    for (const format of ['trl', 'rankings', 'kto'] as const) {
      const result = exportRecords(records, format);
      assert.strictEqual(result.recordsUsed, 1, format);
      assert.ok(
        result.notHeld.includes(
          '2 blind A/B evaluation judgments left out (not training data; use --format records ' +
            'to keep them)',
        ),
        `${format}: ${result.notHeld.join('; ')}`,
      );
      assert.ok(result.lines.length > 0, format);
      assert.ok(!result.lines.some((l) => l.includes('BLIND')), `${format} holds a blind text`);
    }
    const all = exportRecords(records, 'records');
    assert.strictEqual(all.lines.length, 3);
    assert.deepStrictEqual(JSON.parse(all.lines[0]).evaluation, records[0].evaluation);
  });
});
