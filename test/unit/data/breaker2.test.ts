import * as assert from 'assert';
import { computeStats } from '../../../src/data/stats';
import { blindJudgment, sampleJudgment } from './helpers/records';

/** A blind A/B record: c0 base, c1 tuned (shown tuned first), the tuned side picked. */
const blindRecord = (id: string) =>
  blindJudgment(id, `blind prompt ${id}\n`, {
    name: 'run-1 dpo',
    path: '/store/training/run-1/dpo/adapter',
  });

describe('breaker 2: blind A/B records in dataset statistics', () => {
  it('does not count blind A/B judgments as training pairs in `data stats`', () => {
    const stats = computeStats([sampleJudgment('t1'), blindRecord('b1'), blindRecord('b2')]);
    // One ordinary 2-way pick is one training pair; the two blind judgments are evaluation.
    assert.strictEqual(stats.trainingPairs, 1);
    assert.strictEqual(stats.ties, 0);
    assert.strictEqual(stats.evaluationRecords, 2);
  });
});
