import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { ModelRuntime } from '../../../src/model/runtime';

const FIXTURES = path.join(__dirname, '../../fixtures/model');

interface Reference {
  prompts: { ids: number[]; logits: number[]; greedy: number[] }[];
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.strictEqual(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

function argmax(logits: ArrayLike<number>, from = 0, to = logits.length): number {
  let best = from;
  for (let i = from + 1; i < to; i++) if (logits[i] > logits[best]) best = i;
  return best - from;
}

for (const name of ['tiny-llama', 'tiny-qwen2', 'tiny-llama3rope']) {
  describe(`Llama-family forward on the engine: ${name}`, () => {
    let runtime: ModelRuntime;
    let reference: Reference;
    before(() => {
      runtime = ModelRuntime.load(path.join(FIXTURES, name), { threads: 1 });
      reference = JSON.parse(
        fs.readFileSync(path.join(FIXTURES, 'reference', `${name}.json`), 'utf8'),
      );
    });
    after(() => runtime.dispose());

    it('logits match the PyTorch reference within 1e-4, batched with different lengths', async () => {
      const outputs = await runtime.logits(reference.prompts.map((p) => p.ids));
      outputs.forEach((logits, i) => {
        const error = maxAbsDiff(logits, reference.prompts[i].logits);
        assert.ok(error < 1e-4, `prompt ${i}: max abs error ${error}`);
      });
      // Running each sequence alone gives the same numbers as the padded batch.
      for (const [i, p] of reference.prompts.entries()) {
        const [alone] = await runtime.logits([p.ids]);
        assert.ok(maxAbsDiff(alone, outputs[i]) < 1e-5);
      }
    });

    it('greedy decoding with the KV cache gives the exact reference ids', async () => {
      const v = runtime.vocabSize;
      for (const p of reference.prompts) {
        let step = await runtime.step(
          runtime.emptyCache(1),
          p.ids,
          p.ids.map((_, i) => i),
        );
        const ids: number[] = [];
        for (let s = 0; s < p.greedy.length; s++) {
          const next = argmax(step.logits, 0, v);
          ids.push(next);
          step = await runtime.step(step.cache, [next], [step.cache.length]);
        }
        assert.deepStrictEqual(ids, p.greedy);
      }
    });

    it('decoding with the cache equals recomputing without it', async () => {
      const p = reference.prompts[0];
      const sequence = [...p.ids, ...p.greedy.slice(0, 6)];
      const [full] = await runtime.logits([sequence]);
      const v = runtime.vocabSize;
      let step = await runtime.step(
        runtime.emptyCache(1),
        p.ids,
        p.ids.map((_, i) => i),
      );
      for (let t = p.ids.length; t < sequence.length; t++) {
        const expected = full.subarray((t - 1) * v, t * v);
        assert.ok(maxAbsDiff(step.logits, expected) < 1e-4, `position ${t - 1}`);
        step = await runtime.step(step.cache, [sequence[t]], [t]);
      }
    });

    it('left-padded batch rows with a key mask equal unpadded rows', async () => {
      const [a, b] = reference.prompts.map((p) => p.ids);
      const length = Math.max(a.length, b.length);
      const rows = [a, b].map((ids) => [...new Array(length - ids.length).fill(0), ...ids]);
      const positions = [a, b].flatMap((ids) =>
        Array.from({ length }, (_, i) => Math.max(0, i - (length - ids.length))),
      );
      const mask = [a, b].flatMap((ids) =>
        Array.from({ length }, (_, i) => (i >= length - ids.length ? 1 : 0)),
      );
      const cache = { ...runtime.emptyCache(2) };
      const batched = await runtime.step(cache, rows.flat(), positions, { keyMask: mask });
      const v = runtime.vocabSize;
      for (const [i, ids] of [a, b].entries()) {
        const alone = await runtime.step(
          runtime.emptyCache(1),
          ids,
          ids.map((_, j) => j),
        );
        assert.ok(maxAbsDiff(batched.logits.subarray(i * v, (i + 1) * v), alone.logits) < 1e-4);
      }
    });
  });
}

describe('model runtime sessions and feeds (O1, O3)', () => {
  let runtime: ModelRuntime;
  before(() => (runtime = ModelRuntime.load(path.join(FIXTURES, 'tiny-llama'), { threads: 1 })));
  after(() => runtime.dispose());

  it('creates one session per graph kind, however many requests', async () => {
    const ids = [305, 100, 101];
    for (let i = 0; i < 5; i++) await runtime.step(runtime.emptyCache(1), ids, [0, 1, 2]);
    await runtime.logits([ids]);
    await runtime.logits([ids, ids.slice(1)]);
    assert.strictEqual(runtime.sessionsCreated, 2);
  });

  it('rejects a wrong feed with a typed error before running', async () => {
    const session = await runtime.session('logits');
    await assert.rejects(
      session.run({
        input_ids: { dtype: 'int64', shape: [1, 2], data: new Int32Array(2) as never },
        positions: { dtype: 'int64', shape: [1, 2], data: new BigInt64Array(2) },
        key_mask: { dtype: 'int64', shape: [1, 2], data: new BigInt64Array(2) },
      }),
      (error: Error) => error.name === 'InputValidationError' && /input_ids/.test(error.message),
    );
    await assert.rejects(
      session.run({
        input_ids: { dtype: 'int64', shape: [1, 2], data: new BigInt64Array(2) },
        positions: { dtype: 'int64', shape: [1, 2], data: new BigInt64Array(2) },
        key_mask: { dtype: 'int64', shape: [1, 1], data: new BigInt64Array(1) },
      }),
      (error: Error) => error.name === 'InputValidationError' && /key_mask/.test(error.message),
    );
    const [ok] = await runtime.logits([[305, 100]]);
    assert.strictEqual(ok.length, 2 * runtime.vocabSize);
  });
});
