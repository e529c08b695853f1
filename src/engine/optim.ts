/**
 * Optimizers emitted into the graph: the training step takes parameters, optimizer moments and
 * the step number as inputs and returns their updated values, so one session.run is one update.
 * AdamW follows Loshchilov & Hutter 2019 (decoupled weight decay) as torch.optim.AdamW computes
 * it; SGD follows torch.optim.SGD (L2 weight decay added to the gradient, optional momentum).
 */
import { gradients } from './autodiff';
import { Dim } from './dims';
import { BuiltModel, Graph, GraphBuildError, Tensor } from './graph';
import * as op from './ops';

export interface AdamWConfig {
  kind: 'adamw';
  /** Peak learning rate (before the schedule). */
  learningRate: number;
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay, applied as p *= 1 - lr * weightDecay (default 0.01, torch's). */
  weightDecay?: number;
}

export interface SgdConfig {
  kind: 'sgd';
  learningRate: number;
  /** Momentum factor (default 0: no momentum buffers). */
  momentum?: number;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
  /** Nesterov momentum (default false). */
  nesterov?: boolean;
}

export type OptimizerConfig = AdamWConfig | SgdConfig;

/** Linear warmup to the peak rate, then cosine decay to `minLearningRate` at `totalSteps`. */
export interface ScheduleConfig {
  /** Updates with linearly rising rate: lr * t / warmupSteps for t <= warmupSteps. */
  warmupSteps: number;
  /** Update at which the cosine reaches its floor; 0 keeps the rate constant after warmup. */
  totalSteps: number;
  /** Floor of the cosine (default 0). */
  minLearningRate?: number;
}

export interface TrainingConfig {
  optimizer: OptimizerConfig;
  schedule?: ScheduleConfig;
  /** Clip the global L2 norm of all gradients to this value (torch clip_grad_norm_); 0 = off. */
  maxGradNorm?: number;
  /** Micro-batches whose gradients are averaged into one update (default 1). */
  accumulationSteps?: number;
  /**
   * Apply the optimizer to one concatenation of all trainables instead of to each: its
   * arithmetic (about a dozen ops for AdamW) runs once over one vector, not once per trainable.
   * Each trainable keeps its reshapes in and out (for AdamW 7 Reshape nodes: value, gradient and
   * two moments in, value and two moments out), beside one Concat or Split per vector. Per-op
   * overhead dominates the update of many small tensors (measured, 2 threads: 58 LoRA factors
   * and head tensors of 1 to 4,096 values took about 11 ms per AdamW update op by op, 4 ms
   * fused). Needs static shapes, one dtype and one effective weight decay. Inputs and outputs are
   * those of the unfused update, and so are the results up to the order of the gradient norm's
   * sum.
   */
  fuseParameters?: boolean;
}

export interface TrainableParam {
  tensor: Tensor;
  /** Apply weight decay to this parameter (default: true for rank >= 2, false for vectors). */
  weightDecay?: boolean;
}

/** Names of the inputs and outputs of a training graph, for the host-side Trainer. */
export interface TrainingGraph {
  config: TrainingConfig;
  params: { name: string; shape: Dim[]; next: string }[];
  /** Optimizer state slots (AdamW m and v, SGD momentum), zero-initialized. */
  state: { param: string; slot: string; input: string; next: string }[];
  /** Gradient accumulators (only with accumulationSteps > 1). */
  accumulators: { param: string; input: string; next: string }[];
  /** Outputs the update model returns besides loss, norm, rate and the new values (metrics). */
  keptOutputs: string[];
  /** Float scalar input: the 1-based index of this update. */
  stepInput: string;
  /** Float scalar input: 1 / accumulationSteps (only with accumulationSteps > 1). */
  gradScaleInput: string | null;
  lossOutput: string;
  gradNormOutput: string;
  learningRateOutput: string;
  /** Runs forward, backward and the optimizer update. */
  update: BuiltModel;
  /** Runs forward and backward and adds gradients to the accumulators (accumulation only). */
  accumulate: BuiltModel | null;
}

export const STEP_INPUT = 'train.step';
export const GRAD_SCALE_INPUT = 'train.grad_scale';
export const LOSS_OUTPUT = 'train.loss';
export const GRAD_NORM_OUTPUT = 'train.grad_norm';
export const LR_OUTPUT = 'train.lr';

/** The scheduled learning rate at 1-based update `step` (a float scalar tensor). */
export function scheduledLearningRate(
  step: Tensor,
  peak: number,
  schedule?: ScheduleConfig,
): Tensor {
  const g = step.graph;
  if (!schedule) return op.identity(g.scalar(peak, step.dtype));
  const { warmupSteps, totalSteps } = schedule;
  const floor = schedule.minLearningRate ?? 0;
  const warm = warmupSteps > 0 ? op.minimum(op.div(step, warmupSteps), 1) : g.scalar(1, step.dtype);
  if (totalSteps <= 0) return op.mul(warm, peak);
  if (totalSteps <= warmupSteps) {
    throw new GraphBuildError(
      `schedule: totalSteps ${totalSteps} must exceed warmupSteps ${warmupSteps}`,
    );
  }
  const progress = op.clip(op.div(op.sub(step, warmupSteps), totalSteps - warmupSteps), 0, 1);
  // floor + (peak - floor) * (1 + cos(pi * progress)) / 2
  const cosine = op.add(
    op.mul(op.add(op.cos(op.mul(progress, Math.PI)), 1), (peak - floor) / 2),
    floor,
  );
  return op.mul(warm, cosine);
}

export interface TrainingBuildOptions {
  /**
   * Outputs already declared on the graph that the update model also returns (per-step metrics
   * such as a PPO clip fraction), so they cost no second forward pass.
   */
  keepOutputs?: readonly string[];
}

/** The weight decay `opt` applies to `p`: its rate if `p` decays (default: rank >= 2), else 0. */
function effectiveWeightDecay(p: TrainableParam, opt: OptimizerConfig): number {
  if (!(p.weightDecay ?? p.tensor.rank >= 2)) return 0;
  return opt.kind === 'adamw' ? (opt.weightDecay ?? 0.01) : (opt.weightDecay ?? 0);
}

/**
 * Values per trainable, for fuseParameters: static shapes, one dtype, one effective weight decay
 * (trainables flagged differently fuse when the optimizer's rate is 0, as no decay is applied).
 */
function fusedSizes(list: readonly TrainableParam[], decays: readonly number[]): number[] {
  const first = list[0].tensor;
  return list.map((p, i) => {
    const t = p.tensor;
    if (!t.shape.every((d): d is number => typeof d === 'number')) {
      throw new GraphBuildError(
        `buildTraining: fuseParameters needs static shapes; trainable ${t} has a named dim`,
      );
    }
    if (t.dtype !== first.dtype || decays[i] !== decays[0]) {
      throw new GraphBuildError(
        `buildTraining: fuseParameters needs one dtype and one effective weight decay; ${t} ` +
          `(weight decay ${decays[i]}) differs from ${first} (weight decay ${decays[0]})`,
      );
    }
    return t.shape.reduce((a, b) => a * b, 1);
  });
}

/**
 * Adds backward and optimizer nodes for `loss` with respect to `params` (graph inputs; anything
 * else, such as external-data base weights, stays frozen) and builds the training models.
 */
export function buildTraining(
  loss: Tensor,
  params: readonly (Tensor | TrainableParam)[],
  config: TrainingConfig,
  options: TrainingBuildOptions = {},
): TrainingGraph {
  const g: Graph = loss.graph;
  const list = params.map((p) => (p instanceof Tensor ? { tensor: p } : p));
  for (const { tensor } of list) {
    if (tensor.kind !== 'input') {
      throw new GraphBuildError(
        `buildTraining: trainable ${tensor} must be a graph input, so its value can flow in and out`,
      );
    }
  }
  const declared = g.getOutputs().map((o) => o.name);
  const keptOutputs = [...(options.keepOutputs ?? [])];
  for (const name of keptOutputs) {
    if (!declared.includes(name)) {
      throw new GraphBuildError(
        `buildTraining: keepOutputs names "${name}", which graph "${g.name}" does not declare ` +
          `as an output (declared: ${declared.join(', ') || 'none'})`,
      );
    }
  }
  const accumulation = config.accumulationSteps ?? 1;
  if (!Number.isInteger(accumulation) || accumulation < 1) {
    throw new GraphBuildError(
      `buildTraining: accumulationSteps must be a positive integer, got ${accumulation}`,
    );
  }
  const dtype = loss.dtype;
  const step = g.input(STEP_INPUT, dtype, []);
  let grads = gradients(
    loss,
    list.map((p) => p.tensor),
  );
  g.output(LOSS_OUTPUT, loss);

  const accumulators: TrainingGraph['accumulators'] = [];
  let gradScaleInput: string | null = null;
  // Gradient scaling (1/k for accumulation, the clipping coefficient) is folded into the
  // optimizer's scalar factors instead of costing a pass over every gradient.
  let gradScale: Tensor | null = null;
  if (accumulation > 1) {
    const scale = g.input(GRAD_SCALE_INPUT, dtype, []);
    gradScaleInput = scale.name;
    gradScale = scale;
    grads = grads.map((d, i) => {
      const p = list[i].tensor;
      const acc = g.input(`${p.name}.grad_acc`, p.dtype, p.shape);
      const sum = op.add(acc, d);
      g.output(`${acc.name}.next`, sum);
      accumulators.push({ param: p.name, input: acc.name, next: `${acc.name}.next` });
      return sum;
    });
  }

  const opt = config.optimizer;
  const decays = list.map((p) => effectiveWeightDecay(p, opt));
  const fused = config.fuseParameters ?? false;
  const sizes = fused ? fusedSizes(list, decays) : [];
  /** The trainables' values (or gradients, or slots) as one vector [sum of sizes]. */
  const flatten = (parts: readonly Tensor[]): Tensor =>
    op.concat(
      parts.map((t, i) => op.reshape(t, [sizes[i]])),
      0,
    );
  /** A vector from `flatten` back into one tensor per trainable. */
  const unflatten = (x: Tensor): Tensor[] =>
    (list.length > 1 ? op.split(x, 0, sizes) : [x]).map((part, i) =>
      op.reshape(part, list[i].tensor.shape),
    );
  const flatGrad = fused ? flatten(grads) : null;

  // Global-norm clipping: coef = min(maxNorm / (norm + 1e-6), 1), as torch clip_grad_norm_.
  // ReduceSumSquare reads each gradient once, without a squared temporary.
  const squares = (flatGrad ? [flatGrad] : grads).map(
    (d) =>
      g.node('ReduceSumSquare', [d, g.int64s(d.shape.map((_, i) => i))], [{ dtype, shape: [] }], {
        keepdims: { type: 'int', value: 0 },
      })[0],
  );
  let norm = op.sqrt(squares.reduce((a, b) => op.add(a, b)));
  if (gradScale) norm = op.mul(norm, gradScale);
  g.output(GRAD_NORM_OUTPUT, norm);
  if (config.maxGradNorm && config.maxGradNorm > 0) {
    const coef = op.minimum(op.div(config.maxGradNorm, op.add(norm, 1e-6)), 1);
    gradScale = gradScale ? op.mul(gradScale, coef) : coef;
  }

  const lr = scheduledLearningRate(step, opt.learningRate, config.schedule);
  g.output(LR_OUTPUT, lr);

  const state: TrainingGraph['state'] = [];
  const declareSlot = (p: Tensor, name: string): Tensor => {
    const t = g.input(`${p.name}.${name}`, p.dtype, p.shape);
    state.push({ param: p.name, slot: name, input: t.name, next: `${t.name}.next` });
    return t;
  };
  /**
   * The optimizer's rule for parameter `p` with gradient `d` (one trainable, or all of them
   * flattened) and weight decay `wd`: `slot(name)` reads an optimizer slot, `emitSlot` outputs
   * its next value. Returns the next value of `p`.
   */
  const applyRule = (
    p: Tensor,
    d: Tensor,
    wd: number,
    slot: (name: string) => Tensor,
    emitSlot: (name: string, next: Tensor) => void,
  ): Tensor => {
    if (opt.kind === 'adamw') {
      const beta1 = opt.beta1 ?? 0.9;
      const beta2 = opt.beta2 ?? 0.999;
      const eps = opt.eps ?? 1e-8;
      const m = slot('adam_m');
      const v = slot('adam_v');
      // m' = b1 m + (1 - b1) s g, v' = b2 v + (1 - b2) s^2 g^2 for the gradient scale s.
      const s1 = gradScale ? op.mul(gradScale, 1 - beta1) : g.scalar(1 - beta1, dtype);
      const s2 = gradScale
        ? op.mul(op.mul(gradScale, gradScale), 1 - beta2)
        : g.scalar(1 - beta2, dtype);
      const m2 = op.add(op.mul(m, beta1), op.mul(d, s1));
      const v2 = op.add(op.mul(v, beta2), op.mul(op.mul(d, d), s2));
      emitSlot('adam_m', m2);
      emitSlot('adam_v', v2);
      const correction1 = op.sub(1, op.pow(g.scalar(beta1, dtype), step));
      const root2 = op.sqrt(op.sub(1, op.pow(g.scalar(beta2, dtype), step)));
      // torch: p -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps), with c_i = 1 - beta_i^t;
      // multiplied through by sqrt(c2) so only scalars carry the corrections.
      const stepSize = op.div(op.mul(lr, root2), correction1);
      const update = op.mul(op.div(m2, op.add(op.sqrt(v2), op.mul(root2, eps))), stepSize);
      const decayed = wd > 0 ? op.mul(p, op.sub(1, op.mul(lr, wd))) : p;
      return op.sub(decayed, update);
    }
    const momentum = opt.momentum ?? 0;
    const scaled = gradScale ? op.mul(d, gradScale) : d;
    let direction = wd > 0 ? op.add(scaled, op.mul(p, wd)) : scaled;
    if (momentum > 0) {
      const buffer = slot('momentum');
      // torch: b = momentum * b + g (b starts at g, which zero-init reproduces)
      const b2 = op.add(op.mul(buffer, momentum), direction);
      emitSlot('momentum', b2);
      direction = opt.nesterov ? op.add(direction, op.mul(b2, momentum)) : b2;
    }
    return op.sub(p, op.mul(direction, lr));
  };
  const outParams: TrainingGraph['params'] = list.map(({ tensor: p }) => ({
    name: p.name,
    shape: [...p.shape],
    next: `${p.name}.next`,
  }));
  if (fused) {
    const tensors = list.map((p) => p.tensor);
    const next = applyRule(
      flatten(tensors),
      flatGrad!,
      decays[0],
      (name) => flatten(tensors.map((p) => declareSlot(p, name))),
      (name, value) =>
        unflatten(value).forEach((part, i) => g.output(`${tensors[i].name}.${name}.next`, part)),
    );
    unflatten(next).forEach((part, i) => g.output(outParams[i].next, part));
  } else {
    list.forEach(({ tensor: p }, i) => {
      const next = applyRule(
        p,
        grads[i],
        decays[i],
        (name) => declareSlot(p, name),
        (name, value) => g.output(`${p.name}.${name}.next`, value),
      );
      g.output(outParams[i].next, next);
    });
  }

  const updateOutputs = [
    LOSS_OUTPUT,
    GRAD_NORM_OUTPUT,
    LR_OUTPUT,
    ...outParams.map((p) => p.next),
    ...state.map((s) => s.next),
    ...keptOutputs,
  ];
  const update = g.build({ outputs: updateOutputs, pruneInputs: true });
  const accumulate =
    accumulation > 1
      ? g.build({ outputs: [LOSS_OUTPUT, ...accumulators.map((a) => a.next)], pruneInputs: true })
      : null;
  return {
    config,
    params: outParams,
    state,
    accumulators,
    keptOutputs,
    stepInput: step.name,
    gradScaleInput,
    lossOutput: LOSS_OUTPUT,
    gradNormOutput: GRAD_NORM_OUTPUT,
    learningRateOutput: LR_OUTPUT,
    update,
    accumulate,
  };
}
