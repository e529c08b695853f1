import * as assert from 'assert';
import { computeStats, formatStats, wilson } from '../../../src/data/stats';
import type { JudgmentRecord } from '../../../src/protocol/records';
import { sampleJudgment } from './helpers/records';

function pick(
  id: string,
  annotator: string,
  best: string,
  prefix = 'def add(a, b):\n',
): JudgmentRecord {
  return sampleJudgment(id, {
    annotator,
    prompt: { prefix, suffix: '' },
    judgment: { kind: 'pick', best },
  });
}

describe('dataset stats', () => {
  it('Wilson 95% interval matches reference values', () => {
    // Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (Wilson score).
    const reference: [number, number, number, number][] = [
      [81, 263, 0.2553, 0.3662],
      [15, 148, 0.0624, 0.1605],
      [0, 20, 0, 0.1611],
      [1, 29, 0.0061, 0.1718],
    ];
    for (const [k, n, low, high] of reference) {
      const p = wilson(k, n);
      assert.ok(
        Math.abs(p.low - low) < 5e-5 && Math.abs(p.high - high) < 5e-5,
        `${k}/${n}: ${p.low} ${p.high}`,
      );
    }
    assert.ok(Number.isNaN(wilson(0, 0).share));
  });

  it('counts per annotator, language and origin, and position bias by number shown', () => {
    const records = [
      pick('1', 'alice', 'c0'),
      pick('2', 'alice', 'c0', 'x'),
      pick('3', 'bob', 'c1', 'y'),
    ];
    records[2].language = 'typescript';
    const stats = computeStats(records);
    assert.deepStrictEqual(stats.byAnnotator, { alice: 2, bob: 1 });
    assert.deepStrictEqual(stats.byLanguage, { python: 2, typescript: 1 });
    assert.strictEqual(stats.positionBias.length, 1);
    assert.strictEqual(stats.positionBias[0].shown, 2);
    assert.deepStrictEqual(
      stats.positionBias[0].byPosition.map((p) => `${p.count}/${p.total}`),
      ['2/3', '1/3'],
    );
    assert.match(formatStats(stats), /position 0: 2\/3 = 66\.7% \[/);
  });

  it('finds duplicates, self-consistency and inter-annotator disagreement', () => {
    const records = [
      pick('1', 'alice', 'c0'),
      pick('2', 'alice', 'c0'), // same judgment again: a duplicate, and consistent
      pick('3', 'alice', 'c1'), // alice changes her mind: inconsistent
      pick('4', 'bob', 'c1'), // bob disagrees with alice's first judgment
      pick('5', 'carol', 'c0', 'other prompt'),
    ];
    const stats = computeStats(records);
    assert.strictEqual(stats.duplicates.sameJudgment, 1);
    assert.strictEqual(stats.duplicates.repeatedComparisons, 1);
    assert.deepStrictEqual(stats.selfConsistency.alice, {
      comparisons: 1,
      pairs: 2,
      agreeing: 1,
      rate: 0.5,
    });
    assert.strictEqual(stats.interAnnotator.comparisons, 1);
    assert.strictEqual(stats.interAnnotator.disagreeingComparisons, 1);
    assert.strictEqual(stats.interAnnotator.agreeing, 0);
    const report = formatStats(stats);
    assert.match(report, /alice: 1\/2 pairs agree \(50\.0%\)/);
    assert.match(report, /1 of 1 shared comparisons have a disagreement/);
  });

  it('a comparison is the same whatever order its candidates were shown in', () => {
    const a = pick('1', 'alice', 'c0');
    const b = pick('2', 'bob', 'c1');
    b.candidates.reverse(); // bob saw c1 first and picked it: the same text as alice's pick
    const stats = computeStats([a, b]);
    assert.strictEqual(stats.interAnnotator.comparisons, 1);
    assert.strictEqual(stats.interAnnotator.disagreeingComparisons, 1);
    b.judgment = { kind: 'pick', best: 'c0' };
    assert.strictEqual(computeStats([a, b]).interAnnotator.disagreeingComparisons, 0);
  });
});
