/**
 * Host loop over the engine's training graph (`buildTraining`: forward, backward and AdamW in
 * one session.run) whose learning-rate schedule follows the run's progress, not its step count.
 *
 * The pretraining run is time-boxed on a shared machine whose speed varies several-fold, so
 * the number of steps that fit is unknown in advance. The graph's warmup + cosine schedule is
 * built over `SCHEDULE_STEPS` virtual steps, and each update is fed the virtual step matching
 * its progress: the real step during warmup, then
 * `warmup + (SCHEDULE_STEPS - warmup) * progress`, with progress = max(fraction of the time
 * budget spent, fraction of the step limit done). The cosine therefore reaches its floor when
 * the run ends, whichever limit ends it. The same input drives AdamW's bias correction; after
 * warmup the virtual step is never below the real one, and at those steps (>= 100 with
 * beta2 = 0.95) both corrections are within 1% of 1, so the effect is negligible.
 */
import { EngineSession, hostTensor, type HostTensor, type TrainerState } from '../../src/engine';
import type { TrainingGraph } from '../../src/engine';

/** Length of the schedule in virtual steps; only its ratio to warmup matters. */
export const SCHEDULE_STEPS = 100_000;

export interface Progress {
  step: number;
  warmupSteps: number;
  maxSteps: number;
  seconds: number;
  budgetSeconds: number;
}

/** The virtual schedule step for the update about to run (1-based `step`). */
export function scheduleStep(p: Progress): number {
  if (p.step <= p.warmupSteps) return p.step;
  const byTime = p.budgetSeconds > 0 ? p.seconds / p.budgetSeconds : 0;
  const bySteps = (p.step - p.warmupSteps) / Math.max(1, p.maxSteps - p.warmupSteps);
  const progress = Math.min(1, Math.max(byTime, bySteps));
  return Math.max(p.step, p.warmupSteps + (SCHEDULE_STEPS - p.warmupSteps) * progress);
}

export interface UpdateMetrics {
  loss: number;
  gradNorm: number;
  learningRate: number;
}

export class TimedTrainer {
  private constructor(
    private readonly training: TrainingGraph,
    private readonly session: EngineSession,
    private params: Record<string, HostTensor>,
    private slots: Record<string, HostTensor>,
    private steps: number,
  ) {}

  /** Optimizer slots start at zero unless `resume` carries saved ones. */
  static async create(
    training: TrainingGraph,
    params: Record<string, HostTensor>,
    threads: number,
    resume?: TrainerState,
  ): Promise<TimedTrainer> {
    const start = resume?.params ?? params;
    const slots: Record<string, HostTensor> = {};
    for (const s of training.state) {
      const saved = resume?.slots[s.input];
      const p = start[s.param];
      if (!p) throw new Error(`TimedTrainer: no value for trainable "${s.param}"`);
      slots[s.input] =
        saved ?? hostTensor('float32', [...p.shape], new Float32Array(p.data.length));
    }
    const session = await EngineSession.create(training.update, { threads });
    return new TimedTrainer(training, session, { ...start }, slots, resume?.step ?? 0);
  }

  get step(): number {
    return this.steps;
  }

  get parameters(): Readonly<Record<string, HostTensor>> {
    return this.params;
  }

  state(): TrainerState {
    return { step: this.steps, params: { ...this.params }, slots: { ...this.slots } };
  }

  /** One AdamW update on `batch`, with the schedule at virtual step `virtualStep`. */
  async update(batch: Record<string, HostTensor>, virtualStep: number): Promise<UpdateMetrics> {
    const out = await this.session.run({
      ...batch,
      ...this.params,
      ...this.slots,
      [this.training.stepInput]: hostTensor('float32', [], Float32Array.of(virtualStep)),
    });
    for (const p of this.training.params) this.params[p.name] = out[p.next];
    for (const s of this.training.state) this.slots[s.input] = out[s.next];
    this.steps++;
    return {
      loss: Number(out[this.training.lossOutput].data[0]),
      gradNorm: Number(out[this.training.gradNormOutput].data[0]),
      learningRate: Number(out[this.training.learningRateOutput].data[0]),
    };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
