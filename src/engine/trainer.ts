/**
 * Host side of training: owns the sessions of a TrainingGraph (created once), the current
 * parameters and optimizer state, and feeds each step's outputs into the next step.
 */
import { allocate } from './dtype';
import { EngineSession, HostTensor, SessionConfig } from './runner';
import { TrainingGraph } from './optim';

export interface StepMetrics {
  /** 1-based index of the update just applied. */
  step: number;
  /** Mean loss over the step's micro-batches. */
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  learningRate: number;
  /** Every output of the update run: the new values, and the outputs kept by buildTraining. */
  outputs: Record<string, HostTensor>;
}

/**
 * An update whose loss or gradient norm is not finite (a diverged step). Applying it would put
 * NaN into every parameter and moment, so the Trainer refuses it and keeps its state.
 */
export class NonFiniteUpdateError extends Error {
  override name = 'NonFiniteUpdateError';
  constructor(
    readonly step: number,
    readonly loss: number,
    readonly gradNorm: number,
  ) {
    super(
      `update ${step}: loss ${loss}, gradient norm ${gradNorm}; refused (parameters, optimizer ` +
        'state and step count are unchanged)',
    );
  }
}

/** Everything needed to resume training exactly: parameters, optimizer slots, step count. */
export interface TrainerState {
  step: number;
  params: Record<string, HostTensor>;
  slots: Record<string, HostTensor>;
}

function zerosLike(t: HostTensor): HostTensor {
  return { dtype: t.dtype, shape: [...t.shape], data: allocate(t.dtype, t.data.length) };
}

function scalar(dtype: HostTensor['dtype'], value: number): HostTensor {
  const data = allocate(dtype, 1) as Float32Array;
  data[0] = value;
  return { dtype, shape: [], data };
}

export interface TrainerOptions {
  /**
   * Write each step's parameters and optimizer slots into a second set of buffers and swap
   * (saves allocating and copying them every step). The arrays from `parameters` are then
   * only valid until the step after next: copy what you keep. `state()` always copies.
   */
  reuseBuffers?: boolean;
}

export class Trainer {
  private params: Record<string, HostTensor>;
  private slots: Record<string, HostTensor>;
  /** Buffers the next update writes into (reuseBuffers only). */
  private spare: Record<string, HostTensor> | null = null;
  private stepCount: number;
  private readonly lossDType: HostTensor['dtype'];

  private constructor(
    readonly training: TrainingGraph,
    private readonly update: EngineSession,
    private readonly accumulate: EngineSession | null,
    state: TrainerState,
    private readonly options: TrainerOptions,
  ) {
    this.params = state.params;
    this.slots = state.slots;
    this.stepCount = state.step;
    this.lossDType = update.outputs.find((o) => o.name === training.lossOutput)!.dtype;
  }

  /**
   * Creates the sessions once. `params` holds the initial value of every trainable input;
   * optimizer slots start at zero unless `resume` gives a saved state.
   */
  static async create(
    training: TrainingGraph,
    params: Record<string, HostTensor>,
    config: SessionConfig = {},
    resume?: TrainerState,
    options: TrainerOptions = {},
  ): Promise<Trainer> {
    for (const p of training.params) {
      if (!params[p.name]) throw new Error(`Trainer: no initial value for trainable "${p.name}"`);
    }
    const slots: Record<string, HostTensor> = {};
    for (const s of training.state)
      slots[s.input] = resume?.slots[s.input] ?? zerosLike(params[s.param]);
    const update = await EngineSession.create(training.update, config);
    let accumulate: EngineSession | null = null;
    try {
      if (training.accumulate) accumulate = await EngineSession.create(training.accumulate, config);
    } catch (error) {
      await update.release();
      throw error;
    }
    return new Trainer(
      training,
      update,
      accumulate,
      {
        step: resume?.step ?? 0,
        params: { ...(resume?.params ?? params) },
        slots,
      },
      options,
    );
  }

  /**
   * One optimizer update from `microBatches` (exactly accumulationSteps of them): gradients of
   * all micro-batches are averaged, then clipped and applied.
   */
  async step(microBatches: readonly Record<string, HostTensor>[]): Promise<StepMetrics> {
    const k = this.training.config.accumulationSteps ?? 1;
    if (microBatches.length !== k) {
      throw new Error(
        `Trainer.step: expected ${k} micro-batches (accumulationSteps), got ${microBatches.length}`,
      );
    }
    const t = this.stepCount + 1;
    let lossSum = 0;
    const accumulators: Record<string, HostTensor> = {};
    for (const a of this.training.accumulators)
      accumulators[a.input] = zerosLike(this.params[a.param]);
    for (let i = 0; i < k - 1; i++) {
      const out = await this.accumulate!.run({
        ...microBatches[i],
        ...this.params,
        ...accumulators,
      });
      lossSum += Number(out[this.training.lossOutput].data[0]);
      for (const a of this.training.accumulators) accumulators[a.input] = out[a.next];
    }
    const feeds: Record<string, HostTensor> = {
      ...microBatches[k - 1],
      ...this.params,
      ...this.slots,
      ...accumulators,
    };
    // The step input is pruned from the model when nothing reads it (constant rate, SGD).
    if (this.update.inputs.some((i) => i.name === this.training.stepInput)) {
      feeds[this.training.stepInput] = scalar(this.lossDType, t);
    }
    if (this.training.gradScaleInput) {
      feeds[this.training.gradScaleInput] = scalar(this.lossDType, 1 / k);
    }
    let into: Record<string, HostTensor> | undefined;
    if (this.options.reuseBuffers) {
      if (!this.spare) {
        this.spare = {};
        for (const p of this.training.params) this.spare[p.next] = zerosLike(this.params[p.name]);
        for (const s of this.training.state) this.spare[s.next] = zerosLike(this.slots[s.input]);
      }
      into = this.spare;
    }
    const out = await this.update.run(feeds, undefined, into);
    lossSum += Number(out[this.training.lossOutput].data[0]);
    const gradNorm = Number(out[this.training.gradNormOutput].data[0]);
    if (!Number.isFinite(lossSum) || !Number.isFinite(gradNorm)) {
      // Outputs went to fresh arrays or to the spare set, never into the live state.
      throw new NonFiniteUpdateError(t, lossSum / k, gradNorm);
    }
    if (into) {
      // Swap: this step's inputs become the next step's output buffers.
      const spare: Record<string, HostTensor> = {};
      for (const p of this.training.params) spare[p.next] = this.params[p.name];
      for (const s of this.training.state) spare[s.next] = this.slots[s.input];
      this.spare = spare;
    }
    for (const p of this.training.params) this.params[p.name] = out[p.next];
    for (const s of this.training.state) this.slots[s.input] = out[s.next];
    this.stepCount = t;
    return {
      step: t,
      loss: lossSum / k,
      gradNorm,
      learningRate: Number(out[this.training.learningRateOutput].data[0]),
      outputs: out,
    };
  }

  /** The number of updates applied so far (the `step` of the last StepMetrics). */
  get appliedSteps(): number {
    return this.stepCount;
  }

  /**
   * Replaces the value of every trainable (edited or rolled back on the host), keeping the
   * optimizer slots and step count. The arrays are used as given, not copied; without
   * reuseBuffers no later step writes into them.
   */
  setParameters(params: Readonly<Record<string, HostTensor>>): void {
    this.params = this.complete(
      params,
      this.training.params.map((p) => p.name),
      this.params,
      'trainable',
    );
    this.spare = null;
  }

  /**
   * Continues from `state` (from state(), possibly of an earlier point of this run): parameters,
   * optimizer slots and step count. The arrays are used as given, not copied; without
   * reuseBuffers no later step writes into them.
   */
  restore(state: TrainerState): void {
    if (!Number.isSafeInteger(state.step) || state.step < 0) {
      throw new Error(`Trainer.restore: step is ${state.step}; allowed: a non-negative integer`);
    }
    const slots = this.complete(
      state.slots,
      this.training.state.map((s) => s.input),
      this.slots,
      'optimizer slot',
    );
    this.setParameters(state.params);
    this.slots = slots;
    this.stepCount = state.step;
  }

  /** `values` restricted to `names`, each present with the dtype and size of `like`'s. */
  private complete(
    values: Readonly<Record<string, HostTensor>>,
    names: readonly string[],
    like: Readonly<Record<string, HostTensor>>,
    what: string,
  ): Record<string, HostTensor> {
    const out: Record<string, HostTensor> = {};
    for (const name of names) {
      const value = values[name];
      if (!value) throw new Error(`Trainer: no value for ${what} "${name}"`);
      const now = like[name];
      if (value.dtype !== now.dtype || value.data.length !== now.data.length) {
        throw new Error(
          `Trainer: ${what} "${name}" is ${value.dtype} of ${value.data.length} values; ` +
            `expected ${now.dtype} of ${now.data.length}`,
        );
      }
      out[name] = value;
    }
    return out;
  }

  /**
   * Current parameter values. Without reuseBuffers the arrays are replaced, never mutated, by
   * later steps; with it they are overwritten by the step after next.
   */
  get parameters(): Readonly<Record<string, HostTensor>> {
    return this.params;
  }

  /** A snapshot for checkpointing; pass it to create() as `resume` to continue exactly. */
  state(): TrainerState {
    const copy = (m: Record<string, HostTensor>) =>
      Object.fromEntries(
        Object.entries(m).map(([k, t]) => [k, { ...t, shape: [...t.shape], data: t.data.slice() }]),
      );
    return { step: this.stepCount, params: copy(this.params), slots: copy(this.slots) };
  }

  async release(): Promise<void> {
    await this.update.release();
    await this.accumulate?.release();
  }
}
