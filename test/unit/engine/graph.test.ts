import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  EngineSession,
  Graph,
  GraphBuildError,
  InputValidationError,
  nn,
  op,
} from '../../../src/engine';

describe('engine graph builder', () => {
  it('rejects mismatched shapes at build time, naming op, operands and shapes', () => {
    const g = new Graph('bad');
    const a = g.input('a', 'float32', ['B', 'T', 64]);
    const b = g.input('b', 'float32', [32, 16]);
    assert.throws(
      () => op.matMul(a, b),
      (e: Error) =>
        e instanceof GraphBuildError &&
        /MatMul: inner dims differ: 64 vs 32/.test(e.message) &&
        /a float32\[B, T, 64\]/.test(e.message) &&
        /b float32\[32, 16\]/.test(e.message),
    );
    const t = g.input('t', 'float32', ['T']);
    const s = g.input('s', 'float32', ['S']);
    assert.throws(() => op.add(t, s), /Add: shapes \[T\] and \[S\] do not broadcast/);
    const i = g.input('i', 'int64', [3]);
    assert.throws(() => op.mul(i, g.input('f', 'float32', [3])), /Mul: operand dtypes differ/);
  });

  it('infers reshape dims symbolically and rejects impossible reshapes', () => {
    const g = new Graph('r');
    const x = g.input('x', 'float32', ['B', 'T', 12]);
    assert.deepStrictEqual(op.reshape(x, [-1, 12]).shape, ['B*T', 12]);
    assert.deepStrictEqual(op.reshape(x, ['B', 'T', 3, 4]).shape, ['B', 'T', 3, 4]);
    assert.throws(() => op.reshape(x, ['B', 5, -1]), /Reshape: cannot infer -1/);
  });

  it('runs a built model and reuses one session for many runs', async () => {
    const g = new Graph('affine');
    const x = g.input('x', 'float32', ['B', 3]);
    const w = g.initializer('w', 'float32', [3], new Float32Array([1, 2, 3]));
    const flat = op.reshape(op.mul(x, w), [-1]); // [B*3]
    g.output('y', op.add(flat, 1));
    const session = await EngineSession.create(g.build());
    for (let k = 1; k <= 3; k++) {
      const r = await session.run({
        x: { dtype: 'float32', shape: [k, 3], data: new Float32Array(3 * k).fill(2) },
      });
      assert.deepStrictEqual(r.y.shape, [3 * k]);
      assert.deepStrictEqual(Array.from(r.y.data.slice(0, 3) as Float32Array), [3, 5, 7]);
    }
    await session.release();
  });

  it('emits an output under two names, and a graph input as an output', async () => {
    const g = new Graph('names');
    const x = g.input('x', 'float32', [2]);
    const y = op.mul(x, 3);
    g.output('y', y);
    g.output('y_again', y);
    g.output('x_out', x);
    g.output('z', op.add(y, 1)); // y is consumed after being renamed
    const r = await (
      await EngineSession.create(g.build())
    ).run({
      x: { dtype: 'float32', shape: [2], data: new Float32Array([1, 2]) },
    });
    assert.deepStrictEqual(Array.from(r.y.data as Float32Array), [3, 6]);
    assert.deepStrictEqual(Array.from(r.y_again.data as Float32Array), [3, 6]);
    assert.deepStrictEqual(Array.from(r.x_out.data as Float32Array), [1, 2]);
    assert.deepStrictEqual(Array.from(r.z.data as Float32Array), [4, 7]);
    assert.throws(() => g.output('x', y), /name "x" is already used/);
  });

  it('reads f32 and bf16 external data at unaligned byte offsets and casts bf16 in-graph', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-ext-'));
    const file = path.join(dir, 'weights.bin');
    const bytes = Buffer.alloc(7 + 12 + 6);
    Buffer.from(new Float32Array([1, 2, 3]).buffer).copy(bytes, 7);
    const bits = new Uint32Array(new Float32Array([0.5, 1.5, -2]).buffer);
    bits.forEach((b, i) => bytes.writeUInt16LE(b >>> 16, 19 + 2 * i)); // bf16 = top half of f32
    fs.writeFileSync(file, bytes);
    const g = new Graph('ext');
    const x = g.input('x', 'float32', [3]);
    const w = g.externalInitializer('w', 'float32', [3], { file, offset: 7, length: 12 });
    const b = g.externalInitializer('b', 'bfloat16', [3], { file, offset: 19, length: 6 });
    assert.strictEqual(b.dtype, 'float32');
    g.output('y', op.add(op.mul(x, w), b));
    const session = await EngineSession.create(g.build());
    const r = await session.run({
      x: { dtype: 'float32', shape: [3], data: new Float32Array([1, 1, 1]) },
    });
    assert.deepStrictEqual(Array.from(r.y.data as Float32Array), [1.5, 3.5, 1]);
    await session.release();
    assert.throws(
      () => g.externalInitializer('c', 'float32', [4], { file, offset: 0, length: 12 }),
      /needs 16 bytes/,
    );
    fs.rmSync(dir, { recursive: true });
  });

  // Failure kind O1: a wrong dtype or shape must reject with a typed error, before session.run.
  it('O1: rejects wrong input dtype and length before session.run, then runs correct inputs', async () => {
    const g = new Graph('o1');
    const ids = g.input('input_ids', 'int64', [1, 'S']);
    const mask = g.input('attention_mask', 'int64', [1, 'S']);
    g.output('sum', op.reduceSum(op.add(ids, mask)));
    const session = await EngineSession.create(g.build());
    const inner = (session as unknown as { session: { run: (...a: unknown[]) => unknown } })
      .session;
    let runCalls = 0;
    const realRun = inner.run.bind(inner);
    inner.run = (...args: unknown[]) => {
      runCalls++;
      return realRun(...args);
    };
    const good = {
      dtype: 'int64' as const,
      shape: [1, 4],
      data: BigInt64Array.from([1n, 2n, 3n, 4n]),
    };
    await assert.rejects(
      session.run({
        input_ids: { dtype: 'int64', shape: [1, 4], data: new Int32Array(4) as never },
        attention_mask: good,
      }),
      (e: Error) =>
        e instanceof InputValidationError &&
        e.input === 'input_ids' &&
        /BigInt64Array/.test(e.message),
    );
    await assert.rejects(
      session.run({
        input_ids: good,
        attention_mask: { dtype: 'int64', shape: [1, 3], data: new BigInt64Array(3) },
      }),
      (e: Error) =>
        e instanceof InputValidationError && e.input === 'attention_mask' && /"S"/.test(e.message),
    );
    await assert.rejects(session.run({ input_ids: good }), /attention_mask.*missing/);
    assert.strictEqual(runCalls, 0);
    const r = await session.run({ input_ids: good, attention_mask: good });
    assert.strictEqual(runCalls, 1);
    assert.deepStrictEqual(Array.from(r.sum.data as BigInt64Array), [20n]);
  });

  it('creates sessions even when another module polluted Object.prototype', async () => {
    const g = new Graph('polluted');
    const x = g.input('x', 'float32', [2]);
    g.output('y', op.mul(x, 2));
    const proto = Object.prototype as unknown as Record<string, unknown>;
    proto.pollutedByTest = 1; // the native binding enumerates inherited keys of `extra`
    try {
      const session = await EngineSession.create(g.build(), { threads: 1, spinWait: false });
      const r = await session.run({
        x: { dtype: 'float32', shape: [2], data: new Float32Array([1, 2]) },
      });
      assert.deepStrictEqual(Array.from(r.y.data as Float32Array), [2, 4]);
    } finally {
      delete proto.pollutedByTest;
    }
  });

  it('attention with grouped-query heads matches a direct computation', async () => {
    const g = new Graph('gqa');
    const q = g.input('q', 'float32', [1, 4, 'T', 2]);
    const k = g.input('k', 'float32', [1, 2, 'T', 2]);
    const v = g.input('v', 'float32', [1, 2, 'T', 2]);
    g.output('o', nn.attention(q, k, v, { causal: true }));
    const session = await EngineSession.create(g.build());
    const T = 3;
    const rnd = (n: number, seed: number) =>
      Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7 + i * 1.3));
    const qd = rnd(4 * T * 2, 1);
    const kd = rnd(2 * T * 2, 2);
    const vd = rnd(2 * T * 2, 3);
    const r = await session.run({
      q: { dtype: 'float32', shape: [1, 4, T, 2], data: qd },
      k: { dtype: 'float32', shape: [1, 2, T, 2], data: kd },
      v: { dtype: 'float32', shape: [1, 2, T, 2], data: vd },
    });
    const out = r.o.data as Float32Array;
    for (let h = 0; h < 4; h++) {
      const kh = Math.floor(h / 2); // query heads 0,1 share key head 0; 2,3 share 1
      for (let t = 0; t < T; t++) {
        const scores: number[] = [];
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let d = 0; d < 2; d++) dot += qd[(h * T + t) * 2 + d] * kd[(kh * T + s) * 2 + d];
          scores.push(dot / Math.sqrt(2));
        }
        const m = Math.max(...scores);
        const e = scores.map((x) => Math.exp(x - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let d = 0; d < 2; d++) {
          let expected = 0;
          for (let s = 0; s <= t; s++) expected += (e[s] / z) * vd[(kh * T + s) * 2 + d];
          assert.ok(Math.abs(out[(h * T + t) * 2 + d] - expected) < 1e-5, `h${h} t${t} d${d}`);
        }
      }
    }
  });
});
