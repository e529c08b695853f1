/**
 * "Train on my judgments" without `vscode`: runs the reward model and then PPO or DPO as
 * training jobs in the model host (the editor's main thread never trains), forwards their
 * validated events, cancels the running job when the signal fires, and decides whether the
 * tuned adapter replaces the current completion policy. Unit tests drive it against a real
 * forked model host.
 */
import * as path from 'path';
import {
  parseTrainingEvent,
  type TrainDoneEvent,
  type TrainStartCommand,
  type TrainingEvent,
  type TrainingKind,
} from '../protocol/training';
import type { TypedMessage } from '../protocol/modelHost';
import type { Logger } from './log';
import type { ModelHostClient } from './modelHostClient';

export type TuneAlgorithm = 'ppo' | 'dpo';

const EVENT_TYPES = [
  'train/progress',
  'train/metrics',
  'train/log',
  'train/checkpoint',
  'train/done',
] as const;

/**
 * Mean per-sequence KL (nats) the tuned policy may reach and still be promoted. Sent to PPO as
 * its `targetKl` too, so the adaptive controller and the gate agree.
 */
export const KL_BUDGET = 6;

type HostChannel = Pick<ModelHostClient, 'send' | 'on' | 'request'>;

/**
 * Runs one job in the model host and resolves with its `train/done`. Aborting `signal` sends
 * `train/cancel`; the job then ends at its next step boundary with status "cancelled". If the
 * model host process is replaced while the job runs (a crash), resolves with status "failed".
 */
export async function runHostJob(
  client: HostChannel,
  command: TrainStartCommand,
  options: {
    signal: AbortSignal;
    log: Logger;
    onEvent?: (event: TrainingEvent) => void;
    /** How often to check that the model host running the job is still alive. */
    livenessMs?: number;
  },
): Promise<TrainDoneEvent> {
  const { signal, log } = options;
  // The host drops messages sent before its loop listens: a ping answers only once it does.
  const { pid } = await client.request('ping', {});
  return new Promise<TrainDoneEvent>((resolve) => {
    let finished = false;
    const subscriptions = EVENT_TYPES.map((type) =>
      client.on(type, (message) => {
        if (message.jobId !== command.jobId) return;
        let event: TrainingEvent;
        try {
          event = parseTrainingEvent(message);
        } catch (error) {
          log.warn(`dropped training event of job ${command.jobId}: ${(error as Error).message}`);
          return;
        }
        options.onEvent?.(event);
        if (event.type === 'train/done') finish(event);
      }),
    );
    const onAbort = () => {
      log.info(`cancelling training job ${command.jobId}`);
      try {
        client.send({ type: 'train/cancel', jobId: command.jobId });
      } catch (error) {
        finish({ type: 'train/done', jobId: command.jobId, status: 'cancelled' });
        log.warn(`could not send train/cancel: ${(error as Error).message}`);
      }
    };
    const liveness = setInterval(() => {
      client.request('ping', {}).then(
        (now) => {
          if (now.pid !== pid) lost(`model host restarted (pid ${pid} -> ${now.pid})`);
        },
        (error: Error) => lost(`model host unreachable: ${error.message}`),
      );
    }, options.livenessMs ?? 5000);
    const lost = (why: string) =>
      finish({
        type: 'train/done',
        jobId: command.jobId,
        status: 'failed',
        error: `${why}; the job was lost. Run the command again to resume from its last checkpoint.`,
      });
    function finish(done: TrainDoneEvent) {
      if (finished) return;
      finished = true;
      clearInterval(liveness);
      signal.removeEventListener('abort', onAbort);
      subscriptions.forEach((s) => s.dispose());
      resolve(done);
    }
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      client.send(command as unknown as TypedMessage);
    } catch (error) {
      finish({
        type: 'train/done',
        jobId: command.jobId,
        status: 'failed',
        error: `could not start the job: ${(error as Error).message}`,
      });
      return;
    }
    if (signal.aborted) onAbort();
  });
}

export interface PromotionDecision {
  promote: boolean;
  reason: string;
}

/**
 * Whether the tuned adapter becomes the completion policy. PPO: its held-out reward (reward
 * model, prompts it did not train on) must rise and the final KL stay within `KL_BUDGET`. DPO:
 * its implicit-reward accuracy on held-out judgments must be above 50%.
 *
 * Limitation: this uses the trainer's own held-out summary, not the blind reward-model win rate
 * of `src/rlhf/evaluate.ts` that `code-rlhf demo` and `eval` compute (the model host's job runners
 * do not run that evaluation yet).
 */
export function decidePromotion(kind: TuneAlgorithm, done: TrainDoneEvent): PromotionDecision {
  if (done.status !== 'completed' && done.status !== 'early-stopped') {
    return { promote: false, reason: `the ${kind} job ended ${done.status}` };
  }
  if (!done.outputPath) return { promote: false, reason: `the ${kind} job produced no adapter` };
  const s = done.summary ?? {};
  if (kind === 'ppo') {
    const before = s.heldOutRewardBefore;
    const after = s.heldOutRewardAfter;
    const kl = s.kl;
    if (!Number.isFinite(before) || !Number.isFinite(after)) {
      return { promote: false, reason: 'no held-out reward to decide on' };
    }
    if (!(after > before)) {
      return {
        promote: false,
        reason: `held-out reward did not rise (${before.toFixed(3)} -> ${after.toFixed(3)})`,
      };
    }
    if (!Number.isFinite(kl) || kl > KL_BUDGET) {
      return { promote: false, reason: `KL ${kl} is outside the budget ${KL_BUDGET}` };
    }
    return {
      promote: true,
      reason: `held-out reward ${before.toFixed(3)} -> ${after.toFixed(3)}, KL ${kl.toFixed(3)}`,
    };
  }
  const accuracy = s.validationAccuracy;
  if (!Number.isFinite(accuracy)) {
    return { promote: false, reason: 'no held-out accuracy to decide on' };
  }
  if (!(accuracy > 0.5)) {
    return {
      promote: false,
      reason: `held-out accuracy ${(100 * accuracy).toFixed(1)}% is not above 50%`,
    };
  }
  return { promote: true, reason: `held-out accuracy ${(100 * accuracy).toFixed(1)}%` };
}

export interface PipelineOptions {
  client: HostChannel;
  log: Logger;
  algorithm: TuneAlgorithm;
  /** Absolute model folder (the one completions use). */
  modelDir: string;
  /** Preference store (JSONL) holding the judgments. */
  dataFile: string;
  /** Folder under which this run's `rm/` and `ppo/` or `dpo/` folders are written. */
  runDir: string;
  /** Prefix of the job ids (unique per run). */
  runId: string;
  signal: AbortSignal;
  /** Extra trainer config per stage (e.g. smaller runs in tests); unknown keys fail the job. */
  overrides?: Partial<Record<TrainingKind, Record<string, unknown>>>;
  /** Called when a stage starts, with the config it was started with. */
  onStage?: (kind: TrainingKind, command: TrainStartCommand) => void;
  onEvent?: (kind: TrainingKind, event: TrainingEvent) => void;
}

export interface PipelineResult {
  /** The `train/done` of each stage that ran, in order. */
  stages: Array<{ kind: TrainingKind; done: TrainDoneEvent }>;
  /** How the whole run ended: the first stage that did not succeed decides. */
  status: TrainDoneEvent['status'];
  error?: string;
  promotion?: PromotionDecision & { adapterPath?: string };
}

const succeeded = (done: TrainDoneEvent) =>
  done.status === 'completed' || done.status === 'early-stopped';

/** Reward model first, then PPO (against it) or DPO; then the promotion decision. */
export async function runTrainPipeline(options: PipelineOptions): Promise<PipelineResult> {
  const stages: PipelineResult['stages'] = [];
  const base = { modelDir: options.modelDir, dataFile: options.dataFile };
  const run = async (kind: TrainingKind, config: Record<string, unknown>) => {
    const command: TrainStartCommand = {
      type: 'train/start',
      jobId: `${options.runId}-${kind}`,
      kind,
      runDir: path.join(options.runDir, kind),
      resume: false,
      config: { ...config, ...(options.overrides?.[kind] ?? {}) },
    };
    options.onStage?.(kind, command);
    const done = await runHostJob(options.client, command, {
      signal: options.signal,
      log: options.log,
      onEvent: (event) => options.onEvent?.(kind, event),
    });
    stages.push({ kind, done });
    return done;
  };
  const failedWith = (done: TrainDoneEvent): PipelineResult => ({
    stages,
    status: done.status,
    ...(done.error ? { error: done.error } : {}),
  });

  if (options.algorithm === 'ppo') {
    const rm = await run('rm', base);
    if (!succeeded(rm)) return failedWith(rm);
    if (!rm.outputPath) {
      return { stages, status: 'failed', error: 'the reward model job produced no output folder' };
    }
    if (options.signal.aborted) return { stages, status: 'cancelled' };
    const ppo = await run('ppo', { ...base, rewardModelDir: rm.outputPath, targetKl: KL_BUDGET });
    if (!succeeded(ppo)) return failedWith(ppo);
    const decision = decidePromotion('ppo', ppo);
    return {
      stages,
      status: ppo.status,
      promotion: { ...decision, ...(ppo.outputPath ? { adapterPath: ppo.outputPath } : {}) },
    };
  }
  // DPO needs no reward model to train; the reward model still runs first so its accuracy on
  // held-out judgments is shown on the dashboard next to DPO's.
  const rm = await run('rm', base);
  if (!succeeded(rm)) return failedWith(rm);
  if (options.signal.aborted) return { stages, status: 'cancelled' };
  const dpo = await run('dpo', base);
  if (!succeeded(dpo)) return failedWith(dpo);
  const decision = decidePromotion('dpo', dpo);
  return {
    stages,
    status: dpo.status,
    promotion: { ...decision, ...(dpo.outputPath ? { adapterPath: dpo.outputPath } : {}) },
  };
}

export const STAGE_NAMES = { rm: 'reward model', ppo: 'PPO', dpo: 'DPO' } as const;

/** Reads `codeRlhf.trainingAlgorithm`; a bad value falls back to PPO and is reported. */
export function readTrainingAlgorithm(value: unknown): {
  algorithm: TuneAlgorithm;
  problem?: string;
} {
  if (value === undefined || value === 'ppo' || value === 'dpo') {
    return { algorithm: (value as TuneAlgorithm | undefined) ?? 'ppo' };
  }
  return {
    algorithm: 'ppo',
    problem: `codeRlhf.trainingAlgorithm is ${JSON.stringify(value)}; allowed: "ppo", "dpo". Using "ppo".`,
  };
}

/** One line saying how a run ended, for the notification and the dashboard. */
export function describeResult(result: PipelineResult): string {
  const parts: string[] = [];
  for (const { kind, done } of result.stages) {
    const s = done.summary ?? {};
    let numbers = '';
    if (kind === 'rm' && Number.isFinite(s.validationAccuracy)) {
      numbers = ` (validation accuracy ${(100 * s.validationAccuracy).toFixed(1)}%)`;
    } else if (kind === 'ppo' && Number.isFinite(s.heldOutRewardAfter)) {
      numbers = ` (held-out reward ${s.heldOutRewardBefore?.toFixed(3)} -> ${s.heldOutRewardAfter.toFixed(3)}, KL ${s.kl?.toFixed(3)})`;
    } else if (kind === 'dpo' && Number.isFinite(s.validationAccuracy)) {
      numbers = ` (held-out accuracy ${(100 * s.validationAccuracy).toFixed(1)}%)`;
    }
    parts.push(`${STAGE_NAMES[kind]} ${done.status}${numbers}`);
  }
  if (result.error) parts.push(`error: ${result.error}`);
  if (result.promotion) {
    parts.push(
      result.promotion.promote
        ? `adapter promoted: ${result.promotion.reason}`
        : `adapter not promoted: ${result.promotion.reason}`,
    );
  }
  return parts.join('; ');
}

/** The promoted adapter as remembered across window reloads (extension global state). */
export interface SavedAdapter {
  name: string;
  path: string;
  /** Model folder the adapter was trained on: it is only valid on top of that model. */
  modelDir: string;
}

/**
 * The saved adapter to use for `modelDir`, or a reason it cannot be used: not saved, saved for
 * another model, malformed, or its folder is gone (`exists` checks the adapter file).
 */
export function restorableAdapter(
  saved: unknown,
  modelDir: string,
  exists: (file: string) => boolean,
): { adapter?: SavedAdapter; problem?: string } {
  if (saved === undefined || saved === null) return {};
  const s = saved as Partial<SavedAdapter>;
  if (typeof s.name !== 'string' || typeof s.path !== 'string' || typeof s.modelDir !== 'string') {
    return { problem: `ignoring a malformed saved adapter: ${JSON.stringify(saved)}` };
  }
  if (s.modelDir !== modelDir) {
    return {
      problem: `adapter ${s.name} was trained on ${s.modelDir}, not ${modelDir}; using the base model`,
    };
  }
  const weights = path.join(s.path, 'adapter_model.safetensors');
  if (!exists(weights)) return { problem: `adapter ${s.name} is gone (${weights} is missing)` };
  return { adapter: { name: s.name, path: s.path, modelDir: s.modelDir } };
}
