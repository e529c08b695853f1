import * as assert from 'assert';
import { computeGae, maskedStats, whiten } from '../../../src/rlhf/advantages';

const close = (a: number, b: number, tol = 1e-9) =>
  assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

describe('rlhf GAE and whitening', () => {
  it('matches a hand computation for gamma=1, lambda=0.95 and ignores padding', () => {
    // rewards on 3 real tokens, 2 pads; values 0.5 everywhere (also on pads, which must not leak)
    const { advantages, returns } = computeGae(
      [[0, 0, 1, 9, 9]],
      [[0.5, 0.5, 0.5, 7, 7]],
      [[1, 1, 1, 0, 0]],
      1,
      0.95,
    );
    // delta2 = 1 - 0.5 = 0.5; delta1 = 0 + 0.5 - 0.5 = 0; delta0 = 0
    // A2 = 0.5; A1 = 0 + 0.95*0.5 = 0.475; A0 = 0.95*0.475 = 0.45125
    close(advantages[0][2], 0.5);
    close(advantages[0][1], 0.475);
    close(advantages[0][0], 0.45125);
    assert.deepStrictEqual(advantages[0].slice(3), [0, 0]);
    close(returns[0][0], 0.95125);
    assert.deepStrictEqual(returns[0].slice(3), [0, 0]);
  });

  it('with lambda=1 and gamma=1 advantage equals return-to-go minus value', () => {
    const r = [[0.1, -0.2, 0.3, 1]];
    const v = [[0.4, 0.1, -0.3, 0.2]];
    const { advantages } = computeGae(r, v, [[1, 1, 1, 1]], 1, 1);
    let togo = 0;
    for (let t = 3; t >= 0; t--) {
      togo += r[0][t];
      close(advantages[0][t], togo - v[0][t], 1e-12);
    }
  });

  it('rejects ragged rows', () => {
    assert.throws(
      () => computeGae([[0, 0]], [[0]], [[1, 1]], 1, 1),
      /row 0 has rewards length 2, values 1/,
    );
  });

  it('whitens to mean 0 and unit variance over real positions only', () => {
    const w = whiten([[1, 2, 3, 100]], [[1, 1, 1, 0]]);
    const s = maskedStats(w, [[1, 1, 1, 0]]);
    close(s.mean, 0, 1e-12);
    close(s.variance, 1, 1e-6);
    assert.strictEqual(w[0][3], 0);
  });

  it('is safe for tiny batches: one token, constant values, no tokens', () => {
    assert.deepStrictEqual(whiten([[5]], [[1]]), [[0]]); // centred, not divided by sqrt(eps)
    assert.deepStrictEqual(whiten([[5]], [[1]], false), [[5]]);
    const constant = whiten([[2, 2, 2]], [[1, 1, 1]]);
    assert.deepStrictEqual(constant, [[0, 0, 0]]);
    assert.deepStrictEqual(whiten([[3, 4]], [[0, 0]]), [[0, 0]]);
    for (const row of whiten([[1e-6, 2e-6]], [[1, 1]]))
      for (const x of row) assert.ok(Math.abs(x) < 1e-3);
  });
});
