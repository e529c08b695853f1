/**
 * "Train on my judgments" without `vscode`: runs the reward model and then PPO or DPO as
 * training jobs in the model host (the editor's main thread never trains), forwards their
 * validated events, cancels the running job when the signal fires, and ends with the promotion
 * gate, a model-host job that decides whether the tuned adapter replaces the current completion
 * policy. Unit tests drive it against a real forked model host.
 */
import { randomBytes } from 'crypto';
import * as fs from 'fs';
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
 * Mean per-sequence KL (nats, against the base model) the tuned policy may reach and still be
 * promoted. Sent to PPO as its `targetKl` too, so the adaptive controller and the gate agree.
 */
export const KL_BUDGET = 6;

type HostChannel = Pick<ModelHostClient, 'send' | 'on' | 'request'>;

/** In the error of a job lost with its model host (a crash): the run can be resumed. */
export const JOB_LOST = 'the job was lost';

/**
 * What to do after a job was lost with its model host: run the command again, which offers to
 * resume this run (src/extension/editorRun.ts): the stages that finished are not run again, and
 * the lost stage continues from its last checkpoint, if it wrote one.
 */
function afterLostJob(command: TrainStartCommand): string {
  const again = 'Run "Code RLHF: Train on my judgments" again to resume this run';
  if (command.kind === 'gate') return `${again} (the promotion gate starts over).`;
  if (!holdsCheckpoints(command.runDir)) {
    return `${again} (the ${STAGE_NAMES[command.kind]} starts over: it wrote no checkpoint).`;
  }
  return `${again} from its last checkpoint in ${command.runDir}.`;
}

/**
 * Whether a job's run folder holds a checkpoint: a `checkpoints/<trainer>/step-NNNNNNN` folder
 * (the layout src/rlhf/checkpoint.ts writes). A job lost before its first checkpoint has none.
 */
export function holdsCheckpoints(runDir: string): boolean {
  const root = path.join(runDir, 'checkpoints');
  try {
    return fs
      .readdirSync(root, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .some((trainer) =>
        fs.readdirSync(path.join(root, trainer.name)).some((name) => /^step-\d{7}$/.test(name)),
      );
  } catch {
    // No checkpoints folder (the job never got that far), or one that cannot be read.
    return false;
  }
}

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
        error: `${why}; ${JOB_LOST}. ${afterLostJob(command)}`,
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
 * Whether the tuned adapter becomes the completion policy, from the promotion gate's job. The
 * gate (model host, `src/rlhf/promotionGate.ts`) compares the tuned adapter with the previous
 * policy on held-out prompts and applies the rule of `src/rlhf/promotionRule.ts`: at least 4
 * held-out prompts, mean KL against the base within `KL_BUDGET`, and the lower end of the
 * reward-model win rate's 95% interval above 50%. A gate that did not complete never promotes.
 */
export function decidePromotion(gate: TrainDoneEvent): PromotionDecision {
  if (gate.status === 'failed') {
    return { promote: false, reason: `the promotion gate failed: ${gate.error ?? 'no error'}` };
  }
  if (gate.status !== 'completed') {
    return { promote: false, reason: `the promotion gate ended ${gate.status}` };
  }
  if (!gate.decision) return { promote: false, reason: 'the promotion gate gave no verdict' };
  return { promote: gate.decision.promote, reason: gate.decision.reason };
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
  /**
   * The current completion policy, which the tuned adapter must beat; undefined for the base
   * model. Must be an adapter of `modelDir`.
   */
  baseline?: { name: string; path: string };
  /** Extra trainer config per stage (e.g. smaller runs in tests); unknown keys fail the job. */
  overrides?: Partial<Record<TrainingKind, Record<string, unknown>>>;
  /**
   * Stages an earlier attempt of this run finished (a run resumed after it was lost): not run
   * again; their output is used as if they had just run.
   */
  finished?: Partial<
    Record<
      TrainingKind,
      {
        outputPath: string;
        status?: 'completed' | 'early-stopped';
        summary?: Record<string, number>;
      }
    >
  >;
  /**
   * Continue each stage that runs from the checkpoints its folder already holds (a lost run
   * resumed in its own folder); a stage without any starts from the beginning.
   */
  resume?: boolean;
  /** Called when a stage starts, with the config it was started with. */
  onStage?: (kind: TrainingKind, command: TrainStartCommand) => void;
  onEvent?: (kind: TrainingKind, event: TrainingEvent) => void;
  /** Called when a stage ends, before the next one starts (e.g. to record its output). */
  onStageDone?: (kind: TrainingKind, done: TrainDoneEvent) => void | Promise<void>;
}

export interface PipelineResult {
  /** The `train/done` of each stage that ran, in order. */
  stages: Array<{ kind: TrainingKind; done: TrainDoneEvent }>;
  /**
   * Stages not run again because an earlier attempt of the run finished them (see finished),
   * with how they ended then.
   */
  reused?: Array<{ kind: TrainingKind; done: TrainDoneEvent }>;
  /**
   * Set when a stage resumed from its checkpoints was refused by the trainer's resume check
   * (src/rlhf/resume.ts: its config or data differ from the checkpoint's): the trainer's
   * message, which names each differing key with both values, and the job runner's advice.
   */
  resumeRefused?: string;
  /**
   * With resumeRefused: the checkpoint's value of each differing key of that stage, when setting
   * them back is all it takes to resume; absent when not (the data changed).
   */
  resumeRestore?: Record<string, unknown>;
  /** How the whole run ended: the first stage that did not succeed decides. */
  status: TrainDoneEvent['status'];
  error?: string;
  /** Present once the tuned stage produced an adapter (promoted or not). */
  promotion?: PromotionDecision & {
    adapterPath: string;
    /** The gate's numbers (win rate, interval, KL, prompts), when it ran. */
    evaluation?: Record<string, number>;
  };
}

const succeeded = (done: TrainDoneEvent) =>
  done.status === 'completed' || done.status === 'early-stopped';

/**
 * Reward model first, then PPO (against it) or DPO, then the promotion gate: the tuned adapter
 * against `baseline` on the prompts both stages held out, judged by the new reward model.
 */
export async function runTrainPipeline(options: PipelineOptions): Promise<PipelineResult> {
  const stages: PipelineResult['stages'] = [];
  const reused: NonNullable<PipelineResult['reused']> = [];
  let resumeRefused: string | undefined;
  let resumeRestore: Record<string, unknown> | undefined;
  const base = { modelDir: options.modelDir, dataFile: options.dataFile };
  const run = async (kind: TrainingKind, config: Record<string, unknown>) => {
    const earlier = options.finished?.[kind];
    if (earlier) {
      options.log.info(
        `${options.runId}: ${STAGE_NAMES[kind]} done earlier (${earlier.outputPath})`,
      );
      // As it ended then: an early stop is the run's status, and its numbers are reported.
      const done: TrainDoneEvent = {
        type: 'train/done',
        jobId: `${options.runId}-${kind}`,
        status: earlier.status ?? 'completed',
        outputPath: earlier.outputPath,
        ...(earlier.summary ? { summary: earlier.summary } : {}),
      };
      reused.push({ kind, done });
      return done;
    }
    const runDir = path.join(options.runDir, kind);
    const resume = kind !== 'gate' && options.resume === true && holdsCheckpoints(runDir);
    const command: TrainStartCommand = {
      type: 'train/start',
      jobId: `${options.runId}-${kind}`,
      kind,
      runDir,
      resume,
      config: { ...config, ...(options.overrides?.[kind] ?? {}) },
    };
    options.onStage?.(kind, command);
    const done = await runHostJob(options.client, command, {
      signal: options.signal,
      log: options.log,
      onEvent: (event) => options.onEvent?.(kind, event),
    });
    if (resume && done.status === 'failed' && done.resumeRefused) {
      resumeRefused = done.error;
      resumeRestore = done.resumeRefused.restore;
    }
    stages.push({ kind, done });
    await options.onStageDone?.(kind, done);
    return done;
  };
  const endedWith = (done: TrainDoneEvent): PipelineResult => ({
    stages,
    ...(reused.length > 0 ? { reused } : {}),
    status: done.status,
    ...(done.error ? { error: done.error } : {}),
    ...(resumeRefused ? { resumeRefused } : {}),
    ...(resumeRestore ? { resumeRestore } : {}),
  });

  const rm = await run('rm', base);
  if (!succeeded(rm)) return endedWith(rm);
  if (!rm.outputPath) {
    return {
      ...endedWith(rm),
      status: 'failed',
      error: 'the reward model job produced no output folder',
    };
  }
  if (options.signal.aborted) return { ...endedWith(rm), status: 'cancelled' };
  // DPO needs no reward model to train; the reward model judges its samples in the gate.
  const tuned =
    options.algorithm === 'ppo'
      ? await run('ppo', { ...base, rewardModelDir: rm.outputPath, targetKl: KL_BUDGET })
      : await run('dpo', base);
  if (!succeeded(tuned)) return endedWith(tuned);
  if (!tuned.outputPath) {
    return {
      ...endedWith(tuned),
      status: 'failed',
      error: `the ${options.algorithm} job produced no adapter`,
    };
  }
  const adapterPath = tuned.outputPath;
  if (options.signal.aborted) {
    return {
      ...endedWith(tuned),
      status: 'cancelled',
      promotion: { promote: false, reason: 'cancelled before the promotion gate', adapterPath },
    };
  }
  const gate = await run('gate', {
    modelDir: options.modelDir,
    rewardModelDir: rm.outputPath,
    adapterDir: adapterPath,
    baselineAdapterDir: options.baseline?.path ?? '',
    baselineName: options.baseline ? `adapter ${options.baseline.name}` : 'the base model',
    klBudget: KL_BUDGET,
  });
  const decision = decidePromotion(gate);
  const promotion = {
    ...decision,
    adapterPath,
    ...(gate.summary ? { evaluation: gate.summary } : {}),
  };
  if (gate.status === 'failed' || gate.status === 'cancelled') {
    return { ...endedWith(gate), promotion };
  }
  return { ...endedWith(tuned), status: tuned.status, promotion };
}

export const STAGE_NAMES = {
  rm: 'reward model',
  ppo: 'PPO',
  dpo: 'DPO',
  gate: 'promotion gate',
} as const;

/**
 * Creates the folder of a new run under `trainingDir` (`<global storage>/training`) and returns
 * its id and path. Every window of the editor starts its runs there, and two can start in the
 * same second: the id has the time to the millisecond and a random suffix
 * (`run-20261204T181500.123-3fa9`), and the folder is created exclusively, so a taken id is
 * retried with another suffix rather than shared. `now` and `suffix` are for tests.
 */
export function createRunFolder(
  trainingDir: string,
  now: () => Date = () => new Date(),
  suffix: () => string = () => randomBytes(2).toString('hex'),
): { runId: string; runDir: string } {
  fs.mkdirSync(trainingDir, { recursive: true });
  const tries = 8;
  for (let attempt = 0; attempt < tries; attempt++) {
    const stamp = now().toISOString().replace(/[-:]/g, '').replace(/Z$/, '');
    const runId = `run-${stamp}-${suffix()}`;
    const runDir = path.join(trainingDir, runId);
    try {
      fs.mkdirSync(runDir);
      return { runId, runDir };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  throw new Error(
    `could not create a new run folder in ${trainingDir}: ${tries} run ids were taken`,
  );
}

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
  const parts: string[] = (result.reused ?? []).map(
    ({ kind, done }) =>
      `${STAGE_NAMES[kind]} ${done.status}${stageNumbers(kind, done)}, reused from the ` +
      'interrupted run',
  );
  for (const { kind, done } of result.stages) {
    parts.push(`${STAGE_NAMES[kind]} ${done.status}${stageNumbers(kind, done)}`);
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

/** A stage's headline numbers from its summary, e.g. " (validation accuracy 81.2%)". */
function stageNumbers(kind: TrainingKind, done: TrainDoneEvent): string {
  const s = done.summary ?? {};
  if (kind === 'rm' && Number.isFinite(s.validationAccuracy)) {
    return ` (validation accuracy ${(100 * s.validationAccuracy).toFixed(1)}%)`;
  }
  if (kind === 'ppo' && Number.isFinite(s.heldOutRewardAfter)) {
    return ` (held-out reward ${s.heldOutRewardBefore?.toFixed(3)} -> ${s.heldOutRewardAfter.toFixed(3)}, KL ${s.kl?.toFixed(3)})`;
  }
  if (kind === 'dpo' && Number.isFinite(s.validationAccuracy)) {
    return ` (held-out accuracy ${(100 * s.validationAccuracy).toFixed(1)}%)`;
  }
  if (kind === 'gate' && Number.isFinite(s.prompts)) {
    const k = Number.isFinite(s.comparisons) && s.prompts > 0 ? s.comparisons / s.prompts : 0;
    return k
      ? ` (${s.prompts} held-out prompts x ${k} samples)`
      : ` (${s.prompts} held-out prompts)`;
  }
  return '';
}
