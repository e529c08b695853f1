import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  buildTraining,
  EngineSession,
  Graph,
  gradients,
  HostTensor,
  nn,
  NonFiniteUpdateError,
  op,
  Rng,
  Trainer,
  TrainingConfig,
} from '../../../src/engine';
import { trackSessions } from './sessionTracker';

// A small regression problem: loss = mean((x @ W^T + b - y)^2), W [3, 4], b [3].
const N = 6;
function problem(dtype: 'float64' | 'float32') {
  const g = new Graph('regression');
  const x = g.input('x', dtype, ['N', 4]);
  const y = g.input('y', dtype, ['N', 3]);
  const w = g.input('w', dtype, [3, 4]);
  const b = g.input('b', dtype, [3]);
  const diff = op.sub(op.add(op.matMul(x, op.transpose(w, [1, 0])), b), y);
  return { g, loss: op.reduceMean(op.mul(diff, diff)), w, b };
}

function arrayOf(dtype: 'float64' | 'float32', values: number[]) {
  return dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values);
}

function data(seed: number, dtype: 'float64' | 'float32', rows = N) {
  const rng = new Rng(seed);
  const fill = (n: number) =>
    arrayOf(
      dtype,
      Array.from({ length: n }, () => rng.normal()),
    );
  return {
    x: { dtype, shape: [rows, 4], data: fill(rows * 4) } as HostTensor,
    y: { dtype, shape: [rows, 3], data: fill(rows * 3) } as HostTensor,
  };
}

function initParams(seed: number, dtype: 'float64' | 'float32') {
  const rng = new Rng(seed);
  return {
    w: {
      dtype,
      shape: [3, 4],
      data: arrayOf(
        dtype,
        Array.from({ length: 12 }, () => rng.normal()),
      ),
    } as HostTensor,
    b: {
      dtype,
      shape: [3],
      data: arrayOf(
        dtype,
        Array.from({ length: 3 }, () => rng.normal()),
      ),
    } as HostTensor,
  };
}

async function gradientSession() {
  const { g, loss, w, b } = problem('float64');
  const [dw, db] = gradients(loss, [w, b]);
  g.output('dw', dw);
  g.output('db', db);
  return EngineSession.create(g.build());
}

function referenceLr(
  t: number,
  peak: number,
  warmup: number,
  total: number,
  floor: number,
): number {
  const warm = Math.min(t / warmup, 1);
  const progress = Math.min(Math.max((t - warmup) / (total - warmup), 0), 1);
  return warm * (floor + ((peak - floor) * (1 + Math.cos(Math.PI * progress))) / 2);
}

describe('engine optimizers in the graph', () => {
  it('AdamW with warmup + cosine and global-norm clipping matches a host reference', async () => {
    const config: TrainingConfig = {
      optimizer: {
        kind: 'adamw',
        learningRate: 0.05,
        weightDecay: 0.1,
        beta1: 0.8,
        beta2: 0.95,
        eps: 1e-6,
      },
      schedule: { warmupSteps: 2, totalSteps: 6, minLearningRate: 0.005 },
      maxGradNorm: 0.5,
    };
    const { loss, w, b } = problem('float64');
    const trainer = await Trainer.create(
      buildTraining(loss, [w, b], config),
      initParams(3, 'float64'),
    );
    const grads = await gradientSession();
    // Host reference (torch.optim.AdamW semantics): weight decay on W (rank 2) only.
    const p = {
      w: Array.from(initParams(3, 'float64').w.data as Float64Array),
      b: Array.from(initParams(3, 'float64').b.data as Float64Array),
    };
    const m = { w: p.w.map(() => 0), b: p.b.map(() => 0) };
    const v = { w: p.w.map(() => 0), b: p.b.map(() => 0) };
    let clipped = false;
    for (let t = 1; t <= 6; t++) {
      const batch = data(100 + t, 'float64');
      const gr = await grads.run({
        ...batch,
        w: { dtype: 'float64', shape: [3, 4], data: Float64Array.from(p.w) },
        b: { dtype: 'float64', shape: [3], data: Float64Array.from(p.b) },
      });
      const d = {
        w: Array.from(gr.dw.data as Float64Array),
        b: Array.from(gr.db.data as Float64Array),
      };
      const norm = Math.sqrt([...d.w, ...d.b].reduce((s, x) => s + x * x, 0));
      const coef = Math.min(0.5 / (norm + 1e-6), 1);
      clipped ||= coef < 1;
      const lr = referenceLr(t, 0.05, 2, 6, 0.005);
      for (const key of ['w', 'b'] as const) {
        const wd = key === 'w' ? 0.1 : 0;
        for (let i = 0; i < p[key].length; i++) {
          const gi = d[key][i] * coef;
          m[key][i] = 0.8 * m[key][i] + 0.2 * gi;
          v[key][i] = 0.95 * v[key][i] + 0.05 * gi * gi;
          const denom = Math.sqrt(v[key][i]) / Math.sqrt(1 - 0.95 ** t) + 1e-6;
          p[key][i] = p[key][i] * (1 - lr * wd) - (lr / (1 - 0.8 ** t)) * (m[key][i] / denom);
        }
      }
      const metrics = await trainer.step([batch]);
      assert.ok(Math.abs(metrics.learningRate - lr) < 1e-12, `lr at step ${t}`);
      assert.ok(Math.abs(metrics.gradNorm - norm) < 1e-9 * norm, `grad norm at step ${t}`);
    }
    assert.ok(clipped, 'the test must exercise clipping');
    const got = trainer.parameters;
    for (const key of ['w', 'b'] as const) {
      (got[key].data as Float64Array).forEach((value, i) =>
        assert.ok(Math.abs(value - p[key][i]) < 1e-10, `${key}[${i}]`),
      );
    }
    await trainer.release();
  });

  it('SGD with Nesterov momentum and weight decay matches a host reference', async () => {
    const { loss, w, b } = problem('float64');
    const config: TrainingConfig = {
      optimizer: {
        kind: 'sgd',
        learningRate: 0.1,
        momentum: 0.9,
        nesterov: true,
        weightDecay: 0.01,
      },
    };
    const trainer = await Trainer.create(
      buildTraining(loss, [{ tensor: w }, { tensor: b, weightDecay: true }], config),
      initParams(4, 'float64'),
    );
    const grads = await gradientSession();
    const p = [
      ...(initParams(4, 'float64').w.data as Float64Array),
      ...(initParams(4, 'float64').b.data as Float64Array),
    ];
    const buf = p.map(() => 0);
    for (let t = 1; t <= 4; t++) {
      const batch = data(200 + t, 'float64');
      const gr = await grads.run({
        ...batch,
        w: { dtype: 'float64', shape: [3, 4], data: Float64Array.from(p.slice(0, 12)) },
        b: { dtype: 'float64', shape: [3], data: Float64Array.from(p.slice(12)) },
      });
      const d = [...(gr.dw.data as Float64Array), ...(gr.db.data as Float64Array)];
      for (let i = 0; i < p.length; i++) {
        const gi = d[i] + 0.01 * p[i];
        buf[i] = 0.9 * buf[i] + gi;
        p[i] -= 0.1 * (gi + 0.9 * buf[i]);
      }
      await trainer.step([batch]);
    }
    const got = [
      ...(trainer.parameters.w.data as Float64Array),
      ...(trainer.parameters.b.data as Float64Array),
    ];
    got.forEach((value, i) =>
      assert.ok(Math.abs(value - p[i]) < 1e-10, `param ${i}: ${value} vs ${p[i]}`),
    );
  });

  it('gradient accumulation over 2 half-batches equals one full batch', async () => {
    const config = (k: number): TrainingConfig => ({
      optimizer: { kind: 'adamw', learningRate: 0.01 },
      maxGradNorm: 1,
      accumulationSteps: k,
    });
    const full = problem('float64');
    const half = problem('float64');
    const one = await Trainer.create(
      buildTraining(full.loss, [full.w, full.b], config(1)),
      initParams(5, 'float64'),
    );
    const two = await Trainer.create(
      buildTraining(half.loss, [half.w, half.b], config(2)),
      initParams(5, 'float64'),
    );
    for (let t = 1; t <= 3; t++) {
      const batch = data(300 + t, 'float64', 8);
      const part = (from: number, to: number): Record<string, HostTensor> => ({
        x: {
          dtype: 'float64',
          shape: [to - from, 4],
          data: (batch.x.data as Float64Array).slice(from * 4, to * 4),
        },
        y: {
          dtype: 'float64',
          shape: [to - from, 3],
          data: (batch.y.data as Float64Array).slice(from * 3, to * 3),
        },
      });
      const a = await one.step([batch]);
      const b = await two.step([part(0, 4), part(4, 8)]);
      assert.ok(Math.abs(a.loss - b.loss) < 1e-12, `loss ${a.loss} vs ${b.loss}`);
      assert.ok(Math.abs(a.gradNorm - b.gradNorm) < 1e-12);
    }
    for (const key of ['w', 'b']) {
      const x = one.parameters[key].data as Float64Array;
      const y = two.parameters[key].data as Float64Array;
      x.forEach((value, i) => assert.ok(Math.abs(value - y[i]) < 1e-12, `${key}[${i}]`));
    }
    await assert.rejects(two.step([data(1, 'float64')]), /expected 2 micro-batches/);
  });

  it('is deterministic: the same seed gives bit-identical parameters, and parameters move', async () => {
    const run = async (reuseBuffers: boolean) => {
      const { loss, w, b } = problem('float32');
      const trainer = await Trainer.create(
        buildTraining(loss, [w, b], { optimizer: { kind: 'adamw', learningRate: 0.01 } }),
        initParams(7, 'float32'),
        { threads: 2 },
        undefined,
        { reuseBuffers },
      );
      const losses: number[] = [];
      for (let t = 1; t <= 5; t++)
        losses.push((await trainer.step([data(400 + t, 'float32', 64)])).loss);
      await trainer.release();
      return { params: trainer.state().params, losses };
    };
    const a = await run(false);
    const b = await run(true); // ping-pong output buffers must not change any number
    assert.deepStrictEqual(
      Buffer.from((a.params.w.data as Float32Array).buffer),
      Buffer.from((b.params.w.data as Float32Array).buffer),
    );
    assert.deepStrictEqual(a.losses, b.losses);
    const init = initParams(7, 'float32').w.data as Float32Array;
    assert.ok(
      (a.params.w.data as Float32Array).some((value, i) => value !== init[i]),
      'parameters changed',
    );
  });

  it('rejects trainables that are not graph inputs', () => {
    const g = new Graph('bad-train');
    const x = g.input('x', 'float32', [2]);
    const w = g.initializer('w', 'float32', [2], new Float32Array(2));
    assert.throws(
      () =>
        buildTraining(op.reduceSum(op.mul(x, w)), [w], {
          optimizer: { kind: 'sgd', learningRate: 1 },
        }),
      /must be a graph input/,
    );
  });

  it('trains only LoRA factors over a frozen external-data base weight', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-lora-'));
    const file = path.join(dir, 'base.bin');
    const rng = new Rng(11);
    const base = rng.normalArray(4 * 4, 0.5);
    fs.writeFileSync(file, Buffer.concat([Buffer.alloc(3), Buffer.from(base.buffer)]));
    const g = new Graph('lora-train');
    const x = g.input('x', 'float32', ['N', 4]);
    const y = g.input('y', 'float32', ['N', 4]);
    const w = g.externalInitializer('base.weight', 'float32', [4, 4], {
      file,
      offset: 3,
      length: 64,
    });
    const a = g.input('lora_a', 'float32', [2, 4]);
    const b = g.input('lora_b', 'float32', [4, 2]);
    const diff = op.sub(nn.linear(x, w, { lora: { a, b, scale: 2 } }), y);
    const loss = op.reduceMean(op.mul(diff, diff));
    const training = buildTraining(loss, [a, b], {
      optimizer: { kind: 'adamw', learningRate: 0.05, weightDecay: 0 },
    });
    assert.deepStrictEqual(
      training.params.map((p) => p.name),
      ['lora_a', 'lora_b'],
    );
    const trainer = await Trainer.create(training, {
      lora_a: { dtype: 'float32', shape: [2, 4], data: rng.normalArray(8, 0.1) },
      lora_b: { dtype: 'float32', shape: [4, 2], data: new Float32Array(8) }, // PEFT init: B = 0
    });
    const batch = {
      x: { dtype: 'float32' as const, shape: [16, 4], data: rng.normalArray(64) },
      y: { dtype: 'float32' as const, shape: [16, 4], data: rng.normalArray(64) },
    };
    const first = await trainer.step([batch]);
    let last = first;
    for (let t = 0; t < 30; t++) last = await trainer.step([batch]);
    assert.ok(last.loss < first.loss * 0.9, `loss fell: ${first.loss} -> ${last.loss}`);
    assert.ok(
      (trainer.parameters.lora_b.data as Float32Array).some((v) => v !== 0),
      'B moved from zero',
    );
    assert.deepStrictEqual(
      fs.readFileSync(file).subarray(3),
      Buffer.from(base.buffer),
      'base file untouched',
    );
    await trainer.release();
    fs.rmSync(dir, { recursive: true });
  });

  // Failure kind O3: sessions are created once per training graph, never per step.
  it('creates its sessions once, not per step', async () => {
    const { loss, w, b } = problem('float64');
    const training = buildTraining(loss, [w, b], {
      optimizer: { kind: 'adamw', learningRate: 0.01 },
      accumulationSteps: 2,
    });
    const realCreate = EngineSession.create;
    let creates = 0;
    EngineSession.create = (...args: Parameters<typeof realCreate>) => {
      creates++;
      return realCreate(...args);
    };
    try {
      const trainer = await Trainer.create(training, initParams(1, 'float64'));
      assert.strictEqual(creates, 2, 'one update and one accumulate session');
      for (let t = 1; t <= 5; t++)
        await trainer.step([data(t, 'float64', 4), data(t + 50, 'float64', 4)]);
      assert.strictEqual(creates, 2, 'no session created by steps');
      await trainer.release();
    } finally {
      EngineSession.create = realCreate;
    }
  });

  it('returns the outputs kept from the graph with each update, and refuses unknown ones', async () => {
    const { g, loss, w, b } = problem('float64');
    g.output('loss_twice', op.mul(loss, 2));
    g.output('loss_thrice', op.mul(loss, 3));
    const training = buildTraining(
      loss,
      [w, b],
      { optimizer: { kind: 'adamw', learningRate: 0.01 } },
      { keepOutputs: ['loss_twice'] },
    );
    assert.deepStrictEqual(training.keptOutputs, ['loss_twice']);
    assert.ok(!training.update.outputs.some((o) => o.name === 'loss_thrice'), 'only kept outputs');
    const trainer = await Trainer.create(training, initParams(2, 'float64'));
    const step = await trainer.step([data(9, 'float64')]);
    assert.strictEqual(Number(step.outputs.loss_twice.data[0]), 2 * step.loss);
    await trainer.release();
    const other = problem('float64');
    assert.throws(
      () =>
        buildTraining(
          other.loss,
          [other.w],
          { optimizer: { kind: 'sgd', learningRate: 1 } },
          { keepOutputs: ['nope'] },
        ),
      /keepOutputs names "nope", which graph "regression" does not declare as an output \(declared: none\)/,
    );
  });

  it('refuses an update with a non-finite loss or gradient norm and keeps its state', async () => {
    for (const reuseBuffers of [false, true]) {
      const { loss, w, b } = problem('float32');
      const trainer = await Trainer.create(
        buildTraining(loss, [w, b], { optimizer: { kind: 'adamw', learningRate: 0.01 } }),
        initParams(8, 'float32'),
        {},
        undefined,
        { reuseBuffers },
      );
      await trainer.step([data(1, 'float32')]);
      const before = trainer.state();
      const bad = data(2, 'float32');
      (bad.y.data as Float32Array)[0] = Number.NaN;
      await assert.rejects(
        trainer.step([bad]),
        (e: Error) =>
          e instanceof NonFiniteUpdateError &&
          /^update 2: loss NaN, gradient norm NaN; refused/.test(e.message),
      );
      assert.deepStrictEqual(trainer.state(), before, 'parameters, slots and step unchanged');
      assert.strictEqual(trainer.appliedSteps, 1);
      // The next good step proceeds as if the bad one never came.
      const next = await trainer.step([data(3, 'float32')]);
      assert.strictEqual(next.step, 2);
      assert.ok(Number.isFinite(next.loss));
      await trainer.release();
    }
  });

  it('restore() continues exactly from an earlier state; setParameters() replaces values only', async () => {
    const make = async () => {
      const { loss, w, b } = problem('float64');
      return Trainer.create(
        buildTraining(loss, [w, b], {
          optimizer: { kind: 'adamw', learningRate: 0.05 },
          maxGradNorm: 1,
        }),
        initParams(6, 'float64'),
      );
    };
    const straight = await make();
    for (let t = 1; t <= 3; t++) await straight.step([data(500 + t, 'float64')]);
    const saved = straight.state();
    for (let t = 4; t <= 5; t++) await straight.step([data(500 + t, 'float64')]);
    // Roll back to step 3 and replay: the same numbers, bit for bit.
    straight.restore(saved);
    assert.strictEqual(straight.appliedSteps, 3);
    for (let t = 4; t <= 5; t++) await straight.step([data(500 + t, 'float64')]);
    const other = await make();
    other.restore(saved);
    for (let t = 4; t <= 5; t++) await other.step([data(500 + t, 'float64')]);
    assert.deepStrictEqual(other.state(), straight.state());
    const values = other.state();
    other.setParameters(initParams(1, 'float64'));
    assert.deepStrictEqual(other.parameters.b, initParams(1, 'float64').b);
    assert.strictEqual(other.appliedSteps, 5);
    assert.deepStrictEqual(other.state().slots, values.slots, 'slots kept');
    assert.throws(
      () => other.setParameters({ w: initParams(1, 'float64').w }),
      /Trainer: no value for trainable "b"/,
    );
    assert.throws(
      () => other.restore({ ...values, slots: {} }),
      /Trainer: no value for optimizer slot "w.adam_m"/,
    );
    assert.throws(
      () =>
        other.setParameters({
          ...initParams(1, 'float64'),
          b: { dtype: 'float64', shape: [2], data: new Float64Array(2) },
        }),
      /trainable "b" is float64 of 2 values; expected float64 of 3/,
    );
    await straight.release();
    await other.release();
  });

  it('Trainer.create releases the update session when the accumulation session fails to open', async () => {
    const { loss, w, b } = problem('float32');
    const training = buildTraining(loss, [w, b], {
      optimizer: { kind: 'sgd', learningRate: 0.1 },
      accumulationSteps: 2,
    });
    // The first session is the update's, the second the accumulation's.
    const tracker = trackSessions({ failAt: 2 });
    try {
      await assert.rejects(
        Trainer.create(training, initParams(1, 'float32')),
        /session 2: creation failed/,
      );
      assert.strictEqual(tracker.created, 2);
      assert.strictEqual(tracker.live, 0, 'the update session was left open');
    } finally {
      tracker.uninstall();
    }
  });

  it('fuseParameters: one optimizer over all trainables equals the per-tensor update', async () => {
    for (const optimizer of [
      { kind: 'adamw', learningRate: 0.05, weightDecay: 0.1 },
      { kind: 'sgd', learningRate: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 },
    ] as const) {
      const run = async (fuseParameters: boolean) => {
        const { loss, w, b } = problem('float64');
        const training = buildTraining(
          loss,
          [
            { tensor: w, weightDecay: true },
            { tensor: b, weightDecay: true },
          ],
          {
            optimizer,
            schedule: { warmupSteps: 2, totalSteps: 6 },
            maxGradNorm: 0.5,
            accumulationSteps: 2,
            fuseParameters,
          },
        );
        const trainer = await Trainer.create(training, initParams(3, 'float64'));
        const norms: number[] = [];
        for (let t = 1; t <= 5; t++) {
          const step = await trainer.step([
            data(600 + t, 'float64', 4),
            data(700 + t, 'float64', 4),
          ]);
          norms.push(step.gradNorm);
        }
        await trainer.release();
        // One ReduceSumSquare node per gradient tensor, or one over the fused vector.
        const sumSquares =
          Buffer.from(training.update.bytes).toString('latin1').split('ReduceSumSquare').length - 1;
        return {
          state: trainer.state(),
          norms,
          slots: training.state.map((s) => s.input).sort(),
          sumSquares,
        };
      };
      const fused = await run(true);
      const apart = await run(false);
      assert.deepStrictEqual([fused.sumSquares, apart.sumSquares], [1, 2]);
      assert.deepStrictEqual(fused.slots, apart.slots, 'the same slot inputs');
      fused.norms.forEach((n, i) => assert.ok(Math.abs(n - apart.norms[i]) < 1e-12 * n));
      for (const [name, t] of [
        ...Object.entries(fused.state.params),
        ...Object.entries(fused.state.slots),
      ]) {
        const other = apart.state.params[name] ?? apart.state.slots[name];
        assert.deepStrictEqual(t.shape, other.shape, name);
        (t.data as Float64Array).forEach((x, i) =>
          assert.ok(Math.abs(x - Number(other.data[i])) < 1e-12, `${optimizer.kind} ${name}[${i}]`),
        );
      }
    }
  });

  it('fuseParameters refuses named dims and mixed weight decay', () => {
    const g = new Graph('fuse-bad');
    const x = g.input('x', 'float32', ['N', 4]);
    const a = g.input('a', 'float32', ['R', 4]);
    const loss = op.reduceSum(op.matMul(x, op.transpose(a, [1, 0])));
    const sgd = { kind: 'sgd', learningRate: 1 } as const;
    assert.throws(
      () => buildTraining(loss, [a], { optimizer: sgd, fuseParameters: true }),
      /fuseParameters needs static shapes; trainable .*a.* has a named dim/,
    );
    // By default w (a matrix) decays and b (a vector) does not.
    for (const optimizer of [
      { kind: 'sgd', learningRate: 1, weightDecay: 0.01 },
      { kind: 'adamw', learningRate: 1 },
    ] as const) {
      const { loss: l2, w, b } = problem('float32');
      assert.throws(
        () => buildTraining(l2, [w, b], { optimizer, fuseParameters: true }),
        new RegExp(
          'fuseParameters needs one dtype and one effective weight decay; b: float32\\[3\\] ' +
            `\\(weight decay 0\\) differs from w: float32\\[3, 4\\] \\(weight decay ` +
            `${optimizer.weightDecay ?? 0.01}\\)`,
        ),
      );
    }
  });

  it('fuseParameters fuses trainables flagged differently when the weight decay is 0', async () => {
    for (const optimizer of [
      { kind: 'sgd', learningRate: 0.1, momentum: 0.9 },
      { kind: 'adamw', learningRate: 0.05, weightDecay: 0 },
    ] as const) {
      const run = async (fuseParameters: boolean) => {
        const { loss, w, b } = problem('float64');
        // The default flags: w decays, b does not; with a rate of 0 neither is decayed.
        const training = buildTraining(loss, [w, b], { optimizer, fuseParameters });
        const trainer = await Trainer.create(training, initParams(4, 'float64'));
        for (let t = 1; t <= 3; t++) await trainer.step([data(800 + t, 'float64')]);
        await trainer.release();
        return trainer.state();
      };
      const fused = await run(true);
      const apart = await run(false);
      for (const [name, t] of Object.entries(fused.params)) {
        (t.data as Float64Array).forEach((x, i) =>
          assert.ok(
            Math.abs(x - Number(apart.params[name].data[i])) < 1e-12,
            `${optimizer.kind} ${name}[${i}]`,
          ),
        );
      }
    }
  });
});
