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

  it('draws the same ids and log-probs as before the scratch-buffer rewrite', () => {
    // Pinned from the allocation-per-call implementation (commit 4c1a1a2): the speed-up must
    // not change a single sample or the last bit of a log-prob.
    const settingsList = [
      { temperature: 0.8, topK: 0, topP: 0.95 },
      { temperature: 1, topK: 0, topP: 1 },
      { temperature: 0.6, topK: 40, topP: 0.9 },
      { temperature: 0, topK: 0, topP: 1 },
      { temperature: 1.3, topK: 5, topP: 1 },
      { temperature: 0.2, topK: 0, topP: 0.5 },
      { temperature: 1, topK: 3, topP: 0.7 },
      { temperature: 0.8, topK: 0, topP: 0.999 },
    ];
    const ids: number[] = [];
    let logprobSum = 0;
    for (let trial = 0; trial < 24; trial++) {
      const rng = new Rng(1000 + trial);
      const n = [7, 300, 4096][trial % 3];
      const spread = [0.5, 3, 12][Math.floor(trial / 3) % 3];
      const logits = Float32Array.from(
        { length: n },
        (_, i) => (rng.next() - 0.5) * spread * 2 + (i % 17 === 0 ? spread : 0),
      );
      const draw = new Rng(trial, 1);
      for (let k = 0; k < 4; k++) {
        const settings = settingsList[trial % 8];
        const token = sampleToken(logits, settings, draw, trial % 5 === 4 ? n - 2 : n);
        ids.push(token.id);
        logprobSum += token.logprob;
      }
    }
    // prettier-ignore
    assert.deepStrictEqual(ids, [
      4, 2, 5, 2, 231, 286, 4, 284, 3400, 1819, 3247, 3349, 5, 5, 5, 5, 255, 85, 153, 85, 2584,
      2227, 2669, 2584, 0, 0, 0, 0, 17, 17, 51, 17, 3298, 2006, 2006, 2278, 0, 2, 3, 1, 272, 116,
      72, 119, 1802, 1802, 1802, 1802, 1, 1, 5, 1, 255, 255, 255, 255, 2329, 2329, 2329, 2822, 4,
      4, 4, 4, 119, 119, 119, 119, 3111, 2771, 646, 578, 5, 0, 2, 6, 68, 68, 68, 68, 4046, 2686,
      2754, 2686, 1, 1, 1, 1, 238, 102, 68, 102, 2737, 629, 425, 1445,
    ]);
    assert.strictEqual(logprobSum, -275.12104986349226);
  });

  it('gives the same answers whatever vocabulary size the previous call had', () => {
    // Scratch buffers are shared between calls: a large call must leave nothing behind that a
    // smaller one reads (weights past `allowed`, stale kept ids, bucket totals).
    const small = Float32Array.from([1, 3, 2, 0.5]);
    const settings = { temperature: 0.7, topK: 3, topP: 0.8 };
    const alone = Array.from({ length: 30 }, (_, i) => sampleToken(small, settings, new Rng(i)));
    const big = Float32Array.from({ length: 5000 }, (_, i) => (i % 13) - 6);
    const mixed = Array.from({ length: 30 }, (_, i) => {
      sampleToken(big, { temperature: 1, topK: 0, topP: 0.9 }, new Rng(i));
      keptIds(big, { temperature: 1, topK: 100, topP: 0.5 });
      return sampleToken(small, settings, new Rng(i));
    });
    assert.deepStrictEqual(mixed, alone);
    assert.deepStrictEqual(keptIds(small, settings), [1, 2]);
  });

  it('rejects bad settings by name', () => {
    assert.throws(() => validateSampling({ temperature: -1, topK: 0, topP: 1 }), /temperature/);
    assert.throws(() => validateSampling({ temperature: 1, topK: 1.5, topP: 1 }), /topK/);
    assert.throws(() => validateSampling({ temperature: 1, topK: 0, topP: 0 }), /topP/);
  });
});
