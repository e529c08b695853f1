import * as assert from 'assert';
import { distinctCandidates, expandJudgment } from '../../../src/data/pairs';
import { sampleJudgment } from './helpers/records';

const name = (id: string) => 'ABCD'['c0c1c2c3'.indexOf(id) / 2];

describe('ranking and tie expansion (D3, D1)', () => {
  it('(1) A > B = C > D gives exactly (A,B), (A,C), (A,D), (B,D), (C,D) and the tie (B,C)', () => {
    const record = sampleJudgment(
      'r',
      { judgment: { kind: 'ranking', groups: [['c0'], ['c1', 'c2'], ['c3']] } },
      4,
    );
    const { pairs, ties, degenerate } = expandJudgment(record);
    assert.deepStrictEqual(
      pairs.map((p) => `${name(p.chosen.id)}${name(p.rejected.id)}`),
      ['AB', 'AC', 'AD', 'BD', 'CD'],
    );
    assert.deepStrictEqual(
      pairs.map((p) => p.levels),
      [1, 1, 2, 1, 1],
    );
    assert.deepStrictEqual(
      ties.map((t) => `${name(t.a.id)}${name(t.b.id)}`),
      ['BC'],
    );
    assert.strictEqual(degenerate, 0);
  });

  it('(2) a strict ranking of 4 gives 6 pairs and no ties', () => {
    const record = sampleJudgment(
      'r',
      { judgment: { kind: 'ranking', groups: [['c2'], ['c0'], ['c3'], ['c1']] } },
      4,
    );
    const { pairs, ties } = expandJudgment(record);
    assert.strictEqual(pairs.length, 6);
    assert.strictEqual(ties.length, 0);
  });

  it('a pick of 4 gives 3 pairs and does not tie the others with each other', () => {
    const { pairs, ties } = expandJudgment(
      sampleJudgment('p', { judgment: { kind: 'pick', best: 'c1' } }, 4),
    );
    assert.deepStrictEqual(
      pairs.map((p) => `${name(p.chosen.id)}${name(p.rejected.id)}`),
      ['BA', 'BC', 'BD'],
    );
    assert.strictEqual(ties.length, 0);
  });

  it('none-good and skipped give no pairs', () => {
    for (const kind of ['none-good', 'skipped'] as const) {
      const { pairs, ties } = expandJudgment(sampleJudgment('n', { judgment: { kind } }, 3));
      assert.strictEqual(pairs.length + ties.length, 0);
    }
  });

  it('D1(2): identical samples never form a pair; 4 samples with two equal show as 3', () => {
    const record = sampleJudgment(
      'd',
      { judgment: { kind: 'ranking', groups: [['c0'], ['c1'], ['c2'], ['c3']] } },
      4,
    );
    record.candidates[3].text = record.candidates[1].text;
    const { pairs, degenerate } = expandJudgment(record);
    assert.ok(pairs.every((p) => p.chosen.text !== p.rejected.text));
    assert.strictEqual(degenerate, 1);
    // D's text equals B's: D is dropped, so no (C,D) contradicts (B,C) and no (A,D) repeats (A,B).
    assert.deepStrictEqual(
      pairs.map((p) => `${name(p.chosen.id)}${name(p.rejected.id)}`),
      ['AB', 'AC', 'BC'],
    );
    const samples = ['x', 'y', 'x', 'z'].map((text) => ({ text }));
    assert.deepStrictEqual(
      distinctCandidates(samples).map((s) => s.text),
      ['x', 'y', 'z'],
    );
  });
});
