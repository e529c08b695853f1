import * as assert from 'assert';
import { computeStats } from '../../../src/data/stats';
import type { JudgmentRecord } from '../../../src/protocol/records';
import { sampleJudgment } from './helpers/records';

/** A blind A/B record: c0 base, c1 tuned (shown tuned first), the tuned side picked. */
function blindRecord(id: string): JudgmentRecord {
  const record = sampleJudgment(id, { judgment: { kind: 'pick', best: 'c1' } }, 2);
  record.prompt = { prefix: `blind prompt ${id}\n`, suffix: '' };
  record.candidates[1].adapter = 'run-1 dpo';
  record.evaluation = {
    kind: 'blind-ab',
    baseCandidate: 'c0',
    tunedCandidate: 'c1',
    adapter: { name: 'run-1 dpo', path: '/store/training/run-1/dpo/adapter' },
  };
  return record;
}

describe('breaker 2: blind A/B records in dataset statistics', () => {
  it('does not count blind A/B judgments as training pairs in `data stats`', () => {
    const stats = computeStats([sampleJudgment('t1'), blindRecord('b1'), blindRecord('b2')]);
    // One ordinary 2-way pick is one training pair; the two blind judgments are evaluation.
    assert.strictEqual(stats.trainingPairs, 1);
    assert.strictEqual(stats.ties, 0);
    assert.strictEqual(stats.evaluationRecords, 2);
  });
});
