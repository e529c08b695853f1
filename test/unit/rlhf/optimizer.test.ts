import * as assert from 'assert';
import * as path from 'path';
import { EngineSession, gradients, type HostTensor } from '../../../src/engine';
import { loadModel } from '../../../src/model/loader';
import { initLora, type LoraAdapter } from '../../../src/model/lora';
import type { Projection } from '../../../src/model/weights';
import { float32, sequenceBatch, type TokenRow } from '../../../src/rlhf/batch';
import {
  adamWTraining,
  packMoments,
  ParameterOptimizer,
  RLHF_ADAMW,
  unpackMoments,
} from '../../../src/rlhf/optimizer';
import { createRng, normal } from '../../../src/rlhf/random';
import { packTensors, unpackTensors } from '../../../src/rlhf/tensorPack';
import {
  loraScaleFeed,
  rewardTrainingLoss,
  trainableParameters,
  type LossGraph,
} from '../../../src/rlhf/trainGraphs';

const MODEL = path.join(__dirname, '../../fixtures/model/tiny-llama');

/**
 * The update the RLHF trainers applied on the host before AdamW moved into the training graph
 * (src/rlhf/adamw.ts until this test was added): per element in float64, stored in float32,
 * with global-norm clipping `norm > max ? max / norm : 1` and no weight decay.
 */
class HostAdamW {
  private t = 0;
  private readonly m = new Map<string, Float32Array>();
  private readonly v = new Map<string, Float32Array>();

  constructor(
    private readonly params: Map<string, Float32Array>,
    private readonly lr: number,
  ) {
    for (const [name, p] of params) {
      this.m.set(name, new Float32Array(p.length));
      this.v.set(name, new Float32Array(p.length));
    }
  }

  update(grads: Record<string, HostTensor>): number {
    const { beta1, beta2, eps, maxGradNorm } = RLHF_ADAMW;
    let sq = 0;
    for (const name of this.params.keys()) {
      for (const g of grads[`grad.${name}`].data as Float32Array) sq += g * g;
    }
    const norm = Math.sqrt(sq);
    const clip = norm > maxGradNorm ? maxGradNorm / norm : 1;
    this.t++;
    const c1 = 1 - beta1 ** this.t;
    const c2 = 1 - beta2 ** this.t;
    for (const [name, p] of this.params) {
      const g = grads[`grad.${name}`].data as Float32Array;
      const m = this.m.get(name)!;
      const v = this.v.get(name)!;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i] * clip;
        m[i] = beta1 * m[i] + (1 - beta1) * gi;
        v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
        p[i] -= (this.lr * m[i]) / c1 / (Math.sqrt(v[i] / c2) + eps);
      }
    }
    return norm;
  }
}

function copyParams(params: Map<string, Float32Array>): Map<string, Float32Array> {
  return new Map([...params].map(([k, v]) => [k, v.slice()]));
}

interface Comparison {
  /** Largest |in-graph - host| over the compared parameters after the last update. */
  paramError: number;
  /** Largest distance a compared parameter moved from its start. */
  moved: number;
  /** Relative gradient-norm error at the first update (identical parameters both ways). */
  firstNormError: number;
  /** Largest relative gradient-norm error over all updates (parameters differ by rounding). */
  normError: number;
  /** Updates whose gradient norm was clipped. */
  clipped: number;
  /** Largest |gradient| of the `noiseOnly` parameters, relative to the gradient norm. */
  noiseGradient: number;
}

/**
 * Runs `steps` updates both ways from the same start on the same batches: the host reference on
 * the gradients of a graph that outputs them (as the trainers' graphs did), and the in-graph
 * update. `noiseOnly` names parameters the loss does not depend on (their gradient is rounding
 * noise, which AdamW scales up to steps of about lr either way), left out of `paramError`.
 */
async function compareUpdates(options: {
  loss: () => LossGraph;
  params: Map<string, Float32Array>;
  fixedFeeds: Record<string, HostTensor>;
  batches: Record<string, HostTensor>[];
  steps: number;
  learningRate: number;
  noiseOnly?: string[];
}): Promise<Comparison> {
  const noiseOnly = options.noiseOnly ?? [];
  const reference = options.loss();
  const grads = gradients(reference.loss, reference.trainable);
  const g = reference.loss.graph;
  reference.trainable.forEach((t, i) => g.output(`grad.${t.name}`, grads[i]));
  const gradSession = await EngineSession.create(
    g.build({ outputs: reference.trainable.map((t) => `grad.${t.name}`), pruneInputs: true }),
    { threads: 2 },
  );
  const start = copyParams(options.params);
  const host = copyParams(start);
  const hostOptimizer = new HostAdamW(host, options.learningRate);
  const inGraph = copyParams(start);
  const optimizer = await ParameterOptimizer.create(
    adamWTraining(options.loss(), options.learningRate),
    inGraph,
  );
  const feedsOf = (params: Map<string, Float32Array>) => {
    const out: Record<string, HostTensor> = {};
    for (const t of reference.trainable) {
      const data = params.get(t.name)!;
      // The one symbolic dim of a LoRA factor is its rank: solved from the number of values.
      const known = t.shape.reduce<number>((a, d) => (typeof d === 'number' ? a * d : a), 1);
      const shape = t.shape.map((d) => (typeof d === 'number' ? d : data.length / known));
      out[t.name] = { dtype: 'float32', shape, data };
    }
    return out;
  };
  const result: Comparison = {
    paramError: 0,
    moved: 0,
    firstNormError: 0,
    normError: 0,
    clipped: 0,
    noiseGradient: 0,
  };
  for (let s = 0; s < options.steps; s++) {
    const batch = { ...options.fixedFeeds, ...options.batches[s % options.batches.length] };
    const gradOut = await gradSession.run({ ...batch, ...feedsOf(host) });
    const hostNorm = hostOptimizer.update(gradOut);
    for (const name of noiseOnly) {
      for (const x of gradOut[`grad.${name}`].data as Float32Array) {
        result.noiseGradient = Math.max(result.noiseGradient, Math.abs(x) / hostNorm);
      }
    }
    const step = await optimizer.update(batch, `step ${s + 1}`);
    const normError = Math.abs(step.gradNorm - hostNorm) / hostNorm;
    if (s === 0) result.firstNormError = normError;
    result.normError = Math.max(result.normError, normError);
    if (hostNorm > RLHF_ADAMW.maxGradNorm) result.clipped++;
  }
  assert.strictEqual(optimizer.step, options.steps);
  await gradSession.release();
  await optimizer.release();
  for (const [name, p] of host) {
    if (noiseOnly.includes(name)) continue;
    const q = inGraph.get(name)!;
    const s0 = start.get(name)!;
    p.forEach((x, i) => {
      result.moved = Math.max(result.moved, Math.abs(x - s0[i]));
      result.paramError = Math.max(result.paramError, Math.abs(x - q[i]));
    });
  }
  return result;
}

/**
 * The two ways differ only in float rounding (the host computed each element in float64, the
 * graph computes in float32), which AdamW's division by sqrt(v) amplifies for small gradients.
 * After N updates every parameter must agree within a thousandth of one update's largest step
 * (lr); the gradient norm of the first update, from identical parameters, within 1e-6.
 */
function assertEqualUpdates(result: Comparison, learningRate: number, label: string): void {
  const detail = `${label}: ${JSON.stringify(result)}`;
  assert.ok(result.clipped > 0, `${label}: the comparison must exercise clipping`);
  assert.ok(result.moved > 2 * learningRate, `${label}: parameters barely moved; ${detail}`);
  assert.ok(result.firstNormError < 1e-6, detail);
  assert.ok(result.normError < 1e-3, detail);
  assert.ok(result.paramError < 1e-3 * learningRate, detail);
}

describe('rlhf optimizer: AdamW in the training graph', function () {
  this.timeout(180000);
  const model = loadModel(MODEL);
  const targets: Projection[] = ['q_proj', 'v_proj', 'down_proj'];
  const rng = createRng(3);
  const ids = (n: number) => Array.from({ length: n }, () => 3 + Math.floor(rng() * 200));
  const rows = (n: number, prompt: number, completion: number): TokenRow[] =>
    Array.from({ length: n }, (_, i) => ({
      prompt: ids(prompt + (i % 3)),
      completion: ids(completion - (i % 2)),
    }));
  const adapter = (): LoraAdapter =>
    initLora(model, { rank: 4, alpha: 8, targets, useRslora: false }, 9);
  const head = () => ({
    weight: Float32Array.from({ length: model.config.hiddenSize }, () => 0.3 * normal(rng)),
    bias: new Float32Array(1),
  });
  const int64 = (values: number[]) => ({
    dtype: 'int64' as const,
    shape: [values.length],
    data: BigInt64Array.from(values.map(BigInt)),
  });

  it('reward model: 6 updates in the graph equal the host AdamW updates', async () => {
    const lora = adapter();
    const batches = [0, 1].map(() => {
      const batch = sequenceBatch(rows(6, 5, 4), 0, false);
      return {
        ...batch.feeds,
        pair_chosen: int64([0, 2, 4, 0]),
        pair_rejected: int64([1, 3, 5, 5]),
        pair_target: float32([1, 1, 0.5, 1], [4]),
        pair_margin: float32([0, 0.5, 0, 0], [4]),
      };
    });
    const result = await compareUpdates({
      loss: () => rewardTrainingLoss(model, targets),
      params: trainableParameters(model, lora, { prefix: 'reward_head', head: head() }),
      fixedFeeds: loraScaleFeed(lora),
      batches,
      steps: 6,
      learningRate: 1e-2,
      // Bradley-Terry reads only reward differences, so the head's bias cancels.
      noiseOnly: ['reward_head.bias'],
    });
    assert.ok(result.noiseGradient < 1e-6, `bias gradient ${result.noiseGradient}`);
    assertEqualUpdates(result, 1e-2, 'reward model');
  });

  it('state() and restore() continue exactly; moments survive the checkpoint pack', async () => {
    const lora = adapter();
    const params = trainableParameters(model, lora, { prefix: 'reward_head', head: head() });
    const start = copyParams(params);
    const batch = {
      ...sequenceBatch(rows(4, 5, 3), 0, false).feeds,
      ...loraScaleFeed(lora),
      pair_chosen: int64([0, 2]),
      pair_rejected: int64([1, 3]),
      pair_target: float32([1, 1], [2]),
      pair_margin: float32([0, 0], [2]),
    };
    const training = () => adamWTraining(rewardTrainingLoss(model, targets), 1e-2);
    const straight = await ParameterOptimizer.create(training(), params);
    for (let s = 1; s <= 2; s++) await straight.update(batch, `step ${s}`);
    const savedParams = unpackTensors(
      packTensors(Object.fromEntries([...params].map(([k, v]) => [k, v.slice()]))),
      'params.bin',
    );
    const savedMoments = unpackMoments(packMoments(straight.state()), 'optimizer.bin', 2);
    for (let s = 3; s <= 4; s++) await straight.update(batch, `step ${s}`);

    const resumed = copyParams(start);
    for (const [name, p] of resumed) p.set(savedParams[name]);
    const other = await ParameterOptimizer.create(training(), resumed);
    other.restore(savedMoments);
    assert.strictEqual(other.step, 2);
    for (let s = 3; s <= 4; s++) await other.update(batch, `step ${s}`);
    for (const [name, p] of params) {
      assert.deepStrictEqual(Buffer.from(resumed.get(name)!.buffer), Buffer.from(p.buffer), name);
    }
    assert.deepStrictEqual(other.state(), straight.state());

    // A non-finite loss changes nothing and names the step.
    const before = copyParams(resumed);
    await assert.rejects(
      other.update({ ...batch, pair_target: float32([Number.NaN, 1], [2]) }, 'reward model step 5'),
      /^Error: reward model step 5: update 5: loss NaN, gradient norm NaN; refused/,
    );
    for (const [name, p] of resumed) assert.deepStrictEqual(p, before.get(name), name);
    assert.strictEqual(other.step, 4);

    // Moments of another adapter shape: the error names the file.
    const { m, v } = savedMoments;
    const name = Object.keys(m)[0];
    assert.throws(
      () =>
        other.restore({
          step: 2,
          m: { ...m, [name]: new Float32Array(3) },
          v,
          source: '/run/checkpoints/reward-model/step-0000002/optimizer.bin',
        }),
      new RegExp(
        `^Error: /run/checkpoints/reward-model/step-0000002/optimizer.bin: no AdamW moment ` +
          `m:${name.replace(/\./g, '\\.')} of \\d+ values \\(it has 3\\)`,
      ),
    );
    assert.throws(
      () => unpackMoments(packTensors({ 'x:y': new Float32Array(1) }), 'optimizer.bin', 0),
      /optimizer.bin: tensor "x:y" is not an AdamW moment/,
    );
    await straight.release();
    await other.release();
  });
});
