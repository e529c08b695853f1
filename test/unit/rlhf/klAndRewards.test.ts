import * as assert from 'assert';
import {
  AdaptiveKlController,
  FixedKlController,
  restoreKlController,
} from '../../../src/rlhf/klController';
import { assembleTokenRewards, containsStop, responseMask } from '../../../src/rlhf/tokenRewards';

const EOS = 2;
const stop = new Set([EOS]);
const base = { klCoef: 0, missingEosPenalty: 1, missingEosConvention: 'subtract' as const };

describe('rlhf KL control and token rewards (R2)', () => {
  it('adaptive controller moves toward the target, clipped at 20% error', () => {
    const c = new AdaptiveKlController(0.1, 6, 10000);
    c.update(12, 256); // error clipped to +0.2 -> 0.1 * (1 + 0.2*256/10000)
    assert.ok(Math.abs(c.value - 0.1 * (1 + (0.2 * 256) / 10000)) < 1e-15);
    const d = new AdaptiveKlController(0.1, 6, 10000);
    d.update(3, 256); // error -0.5 clipped to -0.2
    assert.ok(d.value < 0.1);
    const before = d.value;
    d.update(Number.NaN, 256);
    assert.strictEqual(d.value, before);
    assert.strictEqual(restoreKlController(d.state()).value, d.value);
    assert.strictEqual(new FixedKlController(0.05).value, 0.05);
    assert.throws(() => new FixedKlController(-1), /finite number >= 0, got -1/);
  });

  it('(a) pad == eos: score on the EOS, EOS kept in the mask', () => {
    const tokens = [11, 12, EOS, EOS, EOS];
    const mask = responseMask(tokens, stop);
    assert.deepStrictEqual(mask, [1, 1, 1, 0, 0]);
    const out = assembleTokenRewards(
      {
        logprobs: [0, 0, 0, 0, 0],
        refLogprobs: [0, 0, 0, 0, 0],
        mask,
        score: 1,
        hitLengthLimit: !containsStop(tokens, stop),
      },
      base,
    );
    assert.deepStrictEqual(out.rewards, [0, 0, 1, 0, 0]);
  });

  it('(b)/(c) length-limit penalty decided on completion tokens only, subtract and replace', () => {
    const completion = [11, 12, 13, 14, 15];
    const promptWithEos = [5, EOS, 6];
    const promptWithout = [5, 6];
    for (const prompt of [promptWithEos, promptWithout]) {
      void prompt; // the prompt is deliberately not an input: the check cannot see it
      const mask = responseMask(completion, stop);
      assert.deepStrictEqual(mask, [1, 1, 1, 1, 1]);
      const input = {
        logprobs: [0, 0, 0, 0, 0],
        refLogprobs: [0, 0, 0, 0, 0],
        mask,
        score: 1,
        hitLengthLimit: !containsStop(completion, stop),
      };
      const sub = assembleTokenRewards(input, base);
      assert.deepStrictEqual(sub.rewards, [0, 0, 0, 0, 0]);
      assert.strictEqual(sub.score, 0);
      const rep = assembleTokenRewards(input, { ...base, missingEosConvention: 'replace' });
      assert.deepStrictEqual(rep.rewards, [0, 0, 0, 0, -1]);
    }
  });

  it('puts -beta * (logp - ref) on every real token and the score on the last', () => {
    const out = assembleTokenRewards(
      {
        logprobs: [-1, -2, -0.5, -9],
        refLogprobs: [-1.5, -2, -1, -9],
        mask: [1, 1, 1, 0],
        score: 2,
        hitLengthLimit: false,
      },
      { ...base, klCoef: 0.1 },
    );
    assert.deepStrictEqual(out.kl, [0.5, 0, 0.5, 0]);
    const expected = [-0.05, -0, 2 - 0.05, 0];
    out.rewards.forEach((r, i) => assert.ok(Math.abs(r - expected[i]) < 1e-12));
    assert.ok(Math.abs(out.nonScoreReward + 0.1) < 1e-12);
  });
});
