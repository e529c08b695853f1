import * as assert from 'assert';
import { evaluatePairs, pairLoss } from '../../../src/rlhf/bradleyTerry';
import { EarlyStopping, splitByPrompt } from '../../../src/rlhf/split';
import { formatWinRate, wilsonInterval, winRate } from '../../../src/rlhf/winRate';
import {
  clippedPolicyLoss,
  clippedValueLoss,
  dpoLoss,
  entropyFromLogits,
} from '../../../src/rlhf/ppoMath';

const close = (a: number, b: number, tol = 1e-6) =>
  assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

describe('rlhf Bradley-Terry, split, win rate, PPO/DPO reference losses', () => {
  it('D3: tie loss is -1/2 log s(d) - 1/2 log s(-d)', () => {
    close(pairLoss({ chosen: 0, rejected: 0, target: 0.5 }), 0.693147);
    close(pairLoss({ chosen: 2, rejected: 0, target: 0.5 }), 1.126928);
    close(pairLoss({ chosen: 3, rejected: 1, target: 1 }), Math.log1p(Math.exp(-2)));
    // margin applies to strict preferences only
    close(pairLoss({ chosen: 3, rejected: 1, target: 1, margin: 2 }), Math.LN2);
    close(pairLoss({ chosen: 0, rejected: 0, target: 0.5, margin: 5 }), Math.LN2);
    close(pairLoss({ chosen: 1000, rejected: -1000, target: 1 }), 0, 1e-12);
    assert.ok(Number.isFinite(pairLoss({ chosen: -1000, rejected: 1000, target: 1 })));
  });

  it('D1: equal scores are never counted correct; label ties are left out', () => {
    const e = evaluatePairs([
      { chosen: 1, rejected: 0, target: 1 },
      { chosen: 0.5, rejected: 0.5, target: 1 },
      { chosen: 3, rejected: 0, target: 0.5 },
    ]);
    assert.strictEqual(e.accuracy, 0.5);
    assert.strictEqual(e.equalScores, 1);
    assert.strictEqual(e.tiePairs, 1);
    assert.strictEqual(e.strictPairs, 2);
    close(e.margin, 0.5);
  });

  it('keeps a prefix judged with several suffixes on one side, as the trainers split', () => {
    // 12 prefixes, each judged with 3 suffixes (the same place before and after edits below
    // the cursor), 2 pairs per context.
    const pairs = Array.from({ length: 72 }, (_, i) => ({
      prompt: `const v${i % 12} = `,
      suffix: `;\n// edit ${Math.floor(i / 12) % 3}\n`,
      i,
    }));
    const s = splitByPrompt(pairs, (p) => p.prompt, 0.25, 5);
    const trainPrefixes = new Set(s.train.map((p) => p.prompt));
    assert.ok(s.validation.length > 0 && s.train.length > 0);
    for (const p of s.validation) assert.ok(!trainPrefixes.has(p.prompt), p.prompt);
    assert.deepStrictEqual([s.trainPrompts, s.validationPrompts], [9, 3]);
    assert.strictEqual(s.validation.length, 3 * 6);
  });

  it('splits by prompt: no prompt on both sides, both sides non-empty, stable', () => {
    const items = Array.from({ length: 60 }, (_, i) => ({ prompt: `p${i % 20}`, i }));
    const s = splitByPrompt(items, (x) => x.prompt, 0.2, 3);
    const trainPrompts = new Set(s.train.map((x) => x.prompt));
    for (const v of s.validation) assert.ok(!trainPrompts.has(v.prompt));
    assert.strictEqual(s.validationPrompts, 4);
    assert.strictEqual(s.train.length + s.validation.length, 60);
    assert.deepStrictEqual(
      splitByPrompt(items, (x) => x.prompt, 0.2, 3),
      s,
    );
    const two = splitByPrompt([{ prompt: 'a' }, { prompt: 'b' }], (x) => x.prompt, 0.01);
    assert.strictEqual(two.validation.length, 1);
    assert.throws(() => splitByPrompt(items, (x) => x.prompt, 1), /between 0 and 1/);
  });

  it('early stopping waits `patience` evaluations without improvement', () => {
    const es = new EarlyStopping({ patience: 2, minDelta: 0.01, mode: 'max' });
    assert.ok(es.observe(0.6, 1));
    assert.ok(es.observe(0.7, 2));
    assert.ok(!es.observe(0.705, 3));
    assert.ok(!es.shouldStop);
    assert.ok(!es.observe(0.69, 4));
    assert.ok(es.shouldStop);
    assert.strictEqual(es.bestStep, 2);
  });

  it('Wilson interval matches known values', () => {
    const { low, high } = wilsonInterval(65, 100);
    close(low, 0.552544, 1e-5);
    close(high, 0.736358, 1e-5);
    const w = winRate(10, 0, 0);
    assert.strictEqual(w.high, 1);
    close(w.low, 0.722467, 1e-5);
    const t = winRate(3, 3, 2);
    assert.strictEqual(t.rate, 0.5);
    assert.match(formatWinRate(t), /50\.0% \[95% CI/);
    assert.ok(Number.isNaN(winRate(0, 0, 0).rate));
  });

  it('PPO: ratio 1 gives loss -mean(A), no clipping, zero approx KL', () => {
    const lp = [[-1, -2, -3]];
    const r = clippedPolicyLoss(lp, lp, [[1, -2, 0.5]], [[1, 1, 0]], 0.2);
    close(r.loss, 0.5);
    assert.strictEqual(r.clipfrac, 0);
    assert.strictEqual(r.approxKl, 0);
    assert.strictEqual(r.ratioMean, 1);
    const moved = clippedPolicyLoss([[-0.5]], [[-1]], [[1]], [[1]], 0.2);
    close(moved.loss, -1.2); // ratio e^0.5 clipped to 1.2 for a positive advantage
    assert.strictEqual(moved.clipfrac, 1);
  });

  it('value loss clips around the old values', () => {
    const v = clippedValueLoss([[2]], [[0]], [[1]], [[1]], 0.2);
    // unclipped (2-1)^2 = 1; clipped (0.2-1)^2 = 0.64; max = 1; times 0.5
    close(v.loss, 0.5);
    assert.strictEqual(v.clipfrac, 0);
  });

  it('DPO loss is ln 2 at the reference and falls when chosen gains', () => {
    const at = dpoLoss(
      { policyChosen: -5, policyRejected: -6, refChosen: -5, refRejected: -6, target: 1 },
      0.1,
    );
    close(at.loss, Math.LN2);
    const better = dpoLoss(
      { policyChosen: -4, policyRejected: -7, refChosen: -5, refRejected: -6, target: 1 },
      0.1,
    );
    assert.ok(better.loss < at.loss);
    close(better.rewardChosen, 0.1);
  });

  it('entropy of uniform logits is ln(V)', () => {
    close(entropyFromLogits([3, 3, 3, 3]), Math.log(4), 1e-12);
    close(entropyFromLogits([1000, 0]), 0, 1e-9);
  });
});
