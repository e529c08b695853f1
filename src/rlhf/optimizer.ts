/**
 * The RLHF trainers' optimizer: AdamW emitted into the training graph by the engine
 * (`buildTraining`), so one session.run computes the loss, the gradients and the update of the
 * LoRA factors and head, and the engine's `Trainer` carries the moments and step count between
 * runs. The trained values live in the adapter and head arrays, which the scorers, the rollout
 * generator and the PEFT writer share: every update feeds them as they are (PPO edits the value
 * head and rolls back on the host) and copies the new values into them.
 */
import { buildTraining, NonFiniteUpdateError, Trainer } from '../engine';
import type { HostTensor, StepMetrics, TrainingGraph } from '../engine';
import { packTensors, unpackTensors } from './tensorPack';
import type { LossGraph } from './trainGraphs';

/**
 * The AdamW settings of every RLHF trainer (torch.optim.AdamW's betas and eps). No weight decay:
 * the engine's default of 0.01 on matrices would pull LoRA factors toward zero, which these
 * trainers never did. Gradients are clipped to a global L2 norm of 1 (clip_grad_norm_).
 */
export const RLHF_ADAMW = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: 1 };

/** Adds the backward pass and the AdamW update at a constant `learningRate` to `loss`. */
export function adamWTraining(loss: LossGraph, learningRate: number): TrainingGraph {
  const { beta1, beta2, eps, weightDecay, maxGradNorm } = RLHF_ADAMW;
  return buildTraining(
    loss.loss,
    loss.trainable.map((tensor) => ({ tensor, weightDecay: weightDecay > 0 })),
    {
      optimizer: { kind: 'adamw', learningRate, beta1, beta2, eps, weightDecay },
      maxGradNorm,
      fuseParameters: true,
    },
    { keepOutputs: loss.metrics },
  );
}

/** AdamW moments by parameter name and the number of updates applied (checkpoint contents). */
export interface OptimizerState {
  step: number;
  m: Record<string, Float32Array>;
  v: Record<string, Float32Array>;
}

/** The moments as checkpoints store them: one pack with keys `m:<name>` and `v:<name>`. */
export function packMoments(state: OptimizerState): Uint8Array {
  const moments: Record<string, Float32Array> = {};
  for (const [k, a] of Object.entries(state.m)) moments[`m:${k}`] = a;
  for (const [k, a] of Object.entries(state.v)) moments[`v:${k}`] = a;
  return packTensors(moments);
}

/** Reads packMoments' bytes; `source` names the file in errors. */
export function unpackMoments(
  bytes: Uint8Array,
  source: string,
  step: number,
): OptimizerState & { source: string } {
  const m: Record<string, Float32Array> = {};
  const v: Record<string, Float32Array> = {};
  for (const [k, a] of Object.entries(unpackTensors(bytes, source))) {
    if (k.startsWith('m:')) m[k.slice(2)] = a;
    else if (k.startsWith('v:')) v[k.slice(2)] = a;
    else throw new Error(`${source}: tensor "${k}" is not an AdamW moment (allowed: m:*, v:*)`);
  }
  return { step, m, v, source };
}

const SLOT_KEY = { adam_m: 'm', adam_v: 'v' } as const;

/** AdamW over named host arrays, one training-graph run per update (see the file comment). */
export class ParameterOptimizer {
  private constructor(
    private readonly trainer: Trainer,
    private readonly training: TrainingGraph,
    private readonly params: ReadonlyMap<string, Float32Array>,
    /** The arrays of `params` as graph feeds (same memory). */
    private readonly feeds: Record<string, HostTensor>,
  ) {}

  /**
   * Creates the update session once. `params` must hold exactly the graph's trainables (by input
   * name); the moments start at zero and the step count at 0 unless `restore` is called.
   */
  static async create(
    training: TrainingGraph,
    params: ReadonlyMap<string, Float32Array>,
    threads = 2,
  ): Promise<ParameterOptimizer> {
    const feeds: Record<string, HostTensor> = {};
    for (const p of training.params) {
      const shape = p.shape;
      // The trainers' loss graphs are built for one LoRA rank, so every trainable's shape is
      // fixed (and fuseParameters refuses named dims).
      if (!shape.every((d): d is number => typeof d === 'number')) {
        throw new Error(
          `optimizer: trainable "${p.name}" [${shape.join(', ')}] has a named dim; allowed: ` +
            'static shapes (build the loss graph with the LoRA rank)',
        );
      }
      const size = shape.reduce((a, b) => a * b, 1);
      const data = params.get(p.name);
      if (!data || data.length !== size) {
        throw new Error(
          `optimizer: trainable "${p.name}" [${shape.join(', ')}] needs ${size} values; the ` +
            `host has ${data ? data.length : 'no array'}`,
        );
      }
      feeds[p.name] = { dtype: 'float32', shape: [...shape], data };
    }
    for (const name of params.keys()) {
      if (!feeds[name]) throw new Error(`optimizer: "${name}" is not a trainable of the graph`);
    }
    const trainer = await Trainer.create(training, feeds, { threads });
    return new ParameterOptimizer(trainer, training, params, feeds);
  }

  /** Updates applied so far (AdamW's t). */
  get step(): number {
    return this.trainer.appliedSteps;
  }

  /**
   * One AdamW update from `feeds` (the loss's inputs other than the trainables): writes the new
   * values into the parameter arrays. A non-finite loss or gradient norm changes nothing and
   * throws, naming `where`.
   */
  async update(feeds: Record<string, HostTensor>, where: string): Promise<StepMetrics> {
    this.trainer.setParameters(this.feeds);
    let metrics: StepMetrics;
    try {
      metrics = await this.trainer.step([feeds]);
    } catch (error) {
      // The user can act on this only through the settings that size the steps (a diverged
      // run), so the message names them; the engine's message says what was refused.
      if (error instanceof NonFiniteUpdateError) {
        throw new Error(
          `${where}: ${error.message}. Training diverged: train again with a lower ` +
            'learningRate or loraAlpha (PPO: also a lower klCoef, valueCoef or missingEosPenalty)',
        );
      }
      throw error;
    }
    for (const [name, p] of this.params)
      p.set(metrics.outputs[`${name}.next`].data as Float32Array);
    return metrics;
  }

  /** A copy of the moments and step count (checkpoints, PPO's last good state). */
  state(): OptimizerState {
    const saved = this.trainer.state();
    const out: OptimizerState = { step: saved.step, m: {}, v: {} };
    for (const s of this.training.state) {
      out[SLOT_KEY[s.slot as keyof typeof SLOT_KEY]][s.param] = saved.slots[s.input]
        .data as Float32Array;
    }
    return out;
  }

  /**
   * Continues with `state`'s moments and step count, and the parameter arrays as they are now.
   * Errors name `state.source` (the checkpoint file) when it has no moments for a parameter.
   */
  restore(state: OptimizerState & { source?: string }): void {
    const slots: Record<string, HostTensor> = {};
    for (const s of this.training.state) {
      const key = SLOT_KEY[s.slot as keyof typeof SLOT_KEY];
      const saved = state[key][s.param];
      const size = this.feeds[s.param].data.length;
      if (!saved || saved.length !== size) {
        throw new Error(
          `${state.source ?? 'optimizer state'}: no AdamW moment ${key}:${s.param} of ${size} ` +
            `values${saved ? ` (it has ${saved.length})` : ''}; the checkpoint was written with ` +
            'another LoRA rank, target list or model: resume with the config it was written with',
        );
      }
      slots[s.input] = { dtype: 'float32', shape: this.feeds[s.param].shape, data: saved.slice() };
    }
    this.trainer.restore({ step: state.step, params: this.feeds, slots });
  }

  async release(): Promise<void> {
    await this.trainer.release();
  }
}
