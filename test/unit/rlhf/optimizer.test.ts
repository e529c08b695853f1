import * as assert from 'assert';
import * as path from 'path';
import {
  buildTraining,
  EngineSession,
  Graph,
  gradients,
  op,
  type HostTensor,
} from '../../../src/engine';
import { loadModel } from '../../../src/model/loader';
import { initLora, type LoraAdapter } from '../../../src/model/lora';
import type { Projection } from '../../../src/model/weights';
import { float32, sequenceBatch, type TokenRow } from '../../../src/rlhf/batch';
import {
  adamWTraining,
  packMoments,
  ParameterOptimizer,
  unpackMoments,
  type OptimizerState,
} from '../../../src/rlhf/optimizer';
import { createRng, normal } from '../../../src/rlhf/random';
import { packTensors, unpackTensors } from '../../../src/rlhf/tensorPack';
import {
  dpoTrainingLoss,
  loraScaleFeed,
  ppoTrainingLoss,
  rewardTrainingLoss,
  trainableParameters,
  type LossGraph,
} from '../../../src/rlhf/trainGraphs';

const MODEL = path.join(__dirname, '../../fixtures/model/tiny-llama');

/**
 * The update the RLHF trainers applied on the host before AdamW moved into the training graph
 * (src/rlhf/adamw.ts until then): per element in float64, stored in float32, global-norm
 * clipping `norm > max ? max / norm : 1`, no weight decay, betas 0.9 and 0.999, eps 1e-8. Updates `params` and the moments in
 * place from the gradients a graph output (`grad.<name>`); returns the gradient norm.
 */
function hostAdamWUpdate(
  params: Map<string, Float32Array>,
  state: OptimizerState,
  grads: Record<string, HostTensor>,
  lr: number,
): number {
  // The constants of the host AdamW (its ADAMW_DEFAULTS; no trainer overrode them).
  const [beta1, beta2, eps, maxGradNorm] = [0.9, 0.999, 1e-8, 1];
  let sq = 0;
  for (const name of params.keys()) {
    for (const g of grads[`grad.${name}`].data as Float32Array) sq += g * g;
  }
  const norm = Math.sqrt(sq);
  const clip = norm > maxGradNorm ? maxGradNorm / norm : 1;
  const t = ++state.step;
  const c1 = 1 - beta1 ** t;
  const c2 = 1 - beta2 ** t;
  for (const [name, p] of params) {
    const g = grads[`grad.${name}`].data as Float32Array;
    const m = state.m[name];
    const v = state.v[name];
    for (let i = 0; i < p.length; i++) {
      const gi = g[i] * clip;
      m[i] = beta1 * m[i] + (1 - beta1) * gi;
      v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
      p[i] -= (lr * m[i]) / c1 / (Math.sqrt(v[i] / c2) + eps);
    }
  }
  return norm;
}

function copyParams(params: ReadonlyMap<string, Float32Array>): Map<string, Float32Array> {
  return new Map([...params].map(([k, v]) => [k, v.slice()]));
}

interface Comparison {
  /** Largest |in-graph - host| of a compared parameter after one update, divided by lr. */
  stepError: number;
  /** Largest |in-graph - host| of a moment after one update, relative to that tensor's largest. */
  momentError: number;
  /** Largest relative gradient-norm error of an update. */
  normError: number;
  /** Largest distance a compared parameter moved from its start over all updates. */
  moved: number;
  /** Updates whose gradient norm was clipped. */
  clipped: number;
  /** Largest |gradient| of the `noiseOnly` parameters, relative to the gradient norm. */
  noiseGradient: number;
}

/**
 * Runs `steps` in-graph updates; before each, the host reference takes the same parameters,
 * moments and step count and applies its update to the gradients of a graph that outputs them
 * (as the trainers' graphs did), and the two results are compared. `noiseOnly` names
 * parameters the loss does not depend on (their gradient is rounding noise, which AdamW scales
 * up to steps of about lr either way); they are left out of `stepError`.
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
  const { learningRate: lr, noiseOnly = [] } = options;
  const reference = options.loss();
  const grads = gradients(reference.loss, reference.trainable);
  const g = reference.loss.graph;
  reference.trainable.forEach((t, i) => g.output(`grad.${t.name}`, grads[i]));
  const gradSession = await EngineSession.create(
    g.build({ outputs: reference.trainable.map((t) => `grad.${t.name}`), pruneInputs: true }),
    { threads: 2 },
  );
  const start = copyParams(options.params);
  const inGraph = copyParams(start);
  const optimizer = await ParameterOptimizer.create(adamWTraining(options.loss(), lr), inGraph);
  const feedsOf = (params: Map<string, Float32Array>) => {
    const out: Record<string, HostTensor> = {};
    for (const t of reference.trainable) {
      const data = params.get(t.name)!;
      // The loss graphs are built for one LoRA rank: every trainable's shape is static.
      const shape = t.shape.map((d) => {
        assert.strictEqual(typeof d, 'number', `${t.name} [${t.shape.join(', ')}]`);
        return d as number;
      });
      assert.strictEqual(
        data.length,
        shape.reduce((a, b) => a * b, 1),
        t.name,
      );
      out[t.name] = { dtype: 'float32', shape, data };
    }
    return out;
  };
  const result: Comparison = {
    stepError: 0,
    momentError: 0,
    normError: 0,
    moved: 0,
    clipped: 0,
    noiseGradient: 0,
  };
  const worst = (a: Float32Array, b: Float32Array) =>
    a.reduce((w, x, i) => Math.max(w, Math.abs(x - b[i])), 0);
  for (let s = 0; s < options.steps; s++) {
    const batch = { ...options.fixedFeeds, ...options.batches[s % options.batches.length] };
    const host = copyParams(inGraph);
    const hostState = optimizer.state();
    const gradOut = await gradSession.run({ ...batch, ...feedsOf(host) });
    const hostNorm = hostAdamWUpdate(host, hostState, gradOut, lr);
    for (const name of noiseOnly) {
      for (const x of gradOut[`grad.${name}`].data as Float32Array) {
        result.noiseGradient = Math.max(result.noiseGradient, Math.abs(x) / hostNorm);
      }
    }
    const step = await optimizer.update(batch, `step ${s + 1}`);
    const after = optimizer.state();
    assert.strictEqual(after.step, hostState.step);
    result.normError = Math.max(result.normError, Math.abs(step.gradNorm - hostNorm) / hostNorm);
    if (hostNorm > 1) result.clipped++;
    for (const [name, p] of host) {
      for (const key of ['m', 'v'] as const) {
        const scale = hostState[key][name].reduce((w, x) => Math.max(w, Math.abs(x)), 0);
        if (scale > 0) {
          const error = worst(after[key][name], hostState[key][name]) / scale;
          result.momentError = Math.max(result.momentError, error);
        }
      }
      if (noiseOnly.includes(name)) continue;
      result.stepError = Math.max(result.stepError, worst(inGraph.get(name)!, p) / lr);
      result.moved = Math.max(result.moved, worst(inGraph.get(name)!, start.get(name)!));
    }
  }
  await gradSession.release();
  await optimizer.release();
  return result;
}

/**
 * The two ways differ only in float rounding: the host computed each element in float64, the
 * graph computes in float32 (and sums the gradient norm in another order).
 */
function assertEqualUpdates(result: Comparison, learningRate: number, label: string): void {
  const detail = `${label}: ${JSON.stringify(result)}`;
  assert.ok(result.clipped > 0, `${label}: the comparison must exercise clipping; ${detail}`);
  assert.ok(result.moved > 2 * learningRate, `${label}: parameters barely moved; ${detail}`);
  assert.ok(result.normError < 1e-6, detail);
  assert.ok(result.momentError < 1e-5, detail);
  assert.ok(result.stepError < 1e-4, detail);
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
      loss: () => rewardTrainingLoss(model, targets, 4),
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

  it('DPO: 6 updates in the graph equal the host AdamW updates', async () => {
    const lora = adapter();
    const batches = [0, 1].map(() => {
      const batch = sequenceBatch(rows(8, 5, 4));
      return {
        ...batch.feeds,
        temperature: float32([1], []),
        response_mask: {
          dtype: 'float32' as const,
          shape: [8, batch.responseWidth],
          data: batch.responseMask,
        },
        ref_logps: float32(
          Array.from({ length: 8 }, () => -20 + 4 * normal(rng)),
          [8],
        ),
        pair_target: float32([1, 1, 0.5, 1], [4]),
      };
    });
    const result = await compareUpdates({
      loss: () => dpoTrainingLoss(model, targets, 4, 1),
      params: trainableParameters(model, lora),
      fixedFeeds: loraScaleFeed(lora),
      batches,
      steps: 6,
      learningRate: 1e-2,
    });
    assertEqualUpdates(result, 1e-2, 'DPO');
  });

  it('PPO: 6 updates of the LoRA factors and value head in one optimizer equal the host AdamW', async () => {
    const lora = adapter();
    const batches = [0, 1].map(() => {
      const batch = sequenceBatch(rows(8, 5, 4));
      const shape = [8, batch.responseWidth];
      const values = (mean: number, sd: number) =>
        float32(
          Array.from({ length: 8 * batch.responseWidth }, () => mean + sd * normal(rng)),
          shape,
        );
      return {
        ...batch.feeds,
        temperature: float32([0.9], []),
        response_mask: { dtype: 'float32' as const, shape, data: batch.responseMask },
        old_logprobs: values(-5, 0.5),
        advantages: values(0, 1),
        old_values: values(0, 1),
        returns: values(0.5, 1),
      };
    });
    const result = await compareUpdates({
      loss: () => ppoTrainingLoss(model, targets, 4, { valueCoef: 0.1 }),
      params: trainableParameters(model, lora, { prefix: 'value_head', head: head() }),
      fixedFeeds: loraScaleFeed(lora),
      batches,
      steps: 6,
      learningRate: 1e-2,
    });
    assertEqualUpdates(result, 1e-2, 'PPO');
  });

  it('refuses a trainable with a named dim, and host arrays of another size', async () => {
    const g = new Graph('named-rank');
    const x = g.input('x', 'float32', ['N', 4]);
    const a = g.input('a', 'float32', ['R', 4]);
    const loss = op.reduceSum(op.matMul(x, op.transpose(a, [1, 0])));
    const named = buildTraining(loss, [a], { optimizer: { kind: 'adamw', learningRate: 1 } });
    await assert.rejects(
      ParameterOptimizer.create(named, new Map([['a', new Float32Array(8)]])),
      /^Error: optimizer: trainable "a" \[R, 4\] has a named dim; allowed: static shapes/,
    );
    const training = adamWTraining(rewardTrainingLoss(model, targets, 4), 1e-2);
    const params = trainableParameters(model, adapter(), { prefix: 'reward_head', head: head() });
    params.set('reward_head.weight', new Float32Array(model.config.hiddenSize * 2));
    await assert.rejects(
      ParameterOptimizer.create(training, params),
      new RegExp(
        `^Error: optimizer: trainable "reward_head\\.weight" \\[${model.config.hiddenSize}\\] ` +
          `needs ${model.config.hiddenSize} values; the host has ${2 * model.config.hiddenSize}$`,
      ),
    );
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
    const training = () => adamWTraining(rewardTrainingLoss(model, targets, 4), 1e-2);
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
      /^Error: reward model step 5: update 5: loss NaN, gradient norm NaN; refused .*\. Training diverged: train again with a lower learningRate or loraAlpha/,
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
