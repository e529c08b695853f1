import * as assert from 'assert';
import { keptIds, Rng, sampleToken, validateSampling } from '../../../src/generation/sampling';

function counts(logits: Float32Array, settings: Parameters<typeof sampleToken>[1], n: number) {
  const rng = new Rng(7);
  const seen = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const { id } = sampleToken(logits, settings, rng);
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  return seen;
}

describe('sampling', () => {
  const logits = Float32Array.from([2, 1, 0.5, -1, 3, 0]);

  it('greedy picks the argmax and reports its log-prob at temperature 1', () => {
    const { id, logprob } = sampleToken(logits, { temperature: 0, topK: 0, topP: 1 }, new Rng(1));
    assert.strictEqual(id, 4);
    const z = [...logits].reduce((a, x) => a + Math.exp(x), 0);
    assert.ok(Math.abs(logprob - (3 - Math.log(z))) < 1e-9);
  });

  it('the same seed gives the same stream, another seed another one', () => {
    const draw = (seed: number) => {
      const rng = new Rng(seed);
      return Array.from(
        { length: 20 },
        () => sampleToken(logits, { temperature: 1, topK: 0, topP: 1 }, rng).id,
      );
    };
    assert.deepStrictEqual(draw(42), draw(42));
    assert.notDeepStrictEqual(draw(42), draw(43));
    assert.notDeepStrictEqual(
      Array.from(
        { length: 8 },
        (
          (r) => () =>
            r.next()
        )(new Rng(5, 0)),
      ),
      Array.from(
        { length: 8 },
        (
          (r) => () =>
            r.next()
        )(new Rng(5, 1)),
      ),
    );
  });

  it('top-k keeps exactly the k best ids', () => {
    const seen = counts(logits, { temperature: 1, topK: 2, topP: 1 }, 2000);
    assert.deepStrictEqual([...seen.keys()].sort(), [0, 4]);
  });

  it('top-p keeps the smallest prefix holding the mass', () => {
    // softmax: id4 0.574, id0 0.211, id1 0.078 ... top-p 0.7 keeps {4, 0}.
    const seen = counts(logits, { temperature: 1, topK: 0, topP: 0.7 }, 2000);
    assert.deepStrictEqual([...seen.keys()].sort(), [0, 4]);
    const frequency = (seen.get(4) ?? 0) / 2000;
    assert.ok(Math.abs(frequency - 0.574 / (0.574 + 0.211)) < 0.04, `frequency ${frequency}`);
  });

  it('samples in proportion to softmax(logits / T) and ignores padded ids', () => {
    const seen = counts(
      Float32Array.from([0, Math.log(3), 50]),
      { temperature: 1, topK: 0, topP: 1 },
      0,
    );
    assert.strictEqual(seen.size, 0);
    const rng = new Rng(3);
    let ones = 0;
    for (let i = 0; i < 4000; i++) {
      if (
        sampleToken(
          Float32Array.from([0, Math.log(3), 50]),
          { temperature: 1, topK: 0, topP: 1 },
          rng,
          2,
        ).id === 1
      )
        ones++;
    }
    assert.ok(Math.abs(ones / 4000 - 0.75) < 0.03, `${ones}`);
  });

  it('finds the nucleus in a large flat vocabulary without missing mass', () => {
    const big = new Float32Array(50000).fill(0);
    big[123] = 5;
    const { id } = sampleToken(big, { temperature: 1, topK: 0, topP: 0.001 }, new Rng(1));
    assert.strictEqual(id, 123);
    const seen = counts(big, { temperature: 1, topK: 0, topP: 0.5 }, 60);
    assert.ok(seen.size > 40);
  });

  it('keeps exactly the ids a full sort would keep, ties to lower ids', () => {
    // Reference: sort every id (probability descending, id ascending), cut, renormalise.
    const reference = (logits: Float32Array, topK: number, topP: number, t: number) => {
      const p = Array.from(logits, (l) => Math.exp(l / t));
      let order = p.map((_, i) => i).sort((a, b) => p[b] - p[a] || a - b);
      if (topK > 0) order = order.slice(0, topK);
      if (topP < 1) {
        const mass = order.reduce((a, i) => a + p[i], 0);
        let cumulative = 0;
        const cut = order.findIndex((i) => (cumulative += p[i]) >= topP * mass);
        order = order.slice(0, cut + 1);
      }
      return order.sort((a, b) => a - b);
    };
    const rng = new Rng(9);
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + Math.floor(rng.next() * 300);
      // Coarse values make many ties; a spread makes peaked and flat distributions.
      const spread = [0.01, 1, 10][trial % 3];
      const logits = Float32Array.from({ length: n }, () => Math.round(rng.next() * 8) * spread);
      const topK = trial % 4 === 0 ? 0 : 1 + Math.floor(rng.next() * n);
      const topP = trial % 5 === 0 ? 1 : 0.05 + rng.next() * 0.9;
      const settings = { temperature: 0.7, topK, topP };
      const expected =
        topK === 0 && topP >= 1 ? logits.map((_, i) => i) : reference(logits, topK, topP, 0.7);
      assert.deepStrictEqual(keptIds(logits, settings), Array.from(expected), `trial ${trial}`);
    }
  });

  it('rejects bad settings by name', () => {
    assert.throws(() => validateSampling({ temperature: -1, topK: 0, topP: 1 }), /temperature/);
    assert.throws(() => validateSampling({ temperature: 1, topK: 1.5, topP: 1 }), /topK/);
    assert.throws(() => validateSampling({ temperature: 1, topK: 0, topP: 0 }), /topP/);
  });
});
