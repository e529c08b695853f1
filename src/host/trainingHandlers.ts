/**
 * Training jobs in the model host: `train/start` runs a reward-model, PPO or DPO job in this
 * process (the editor's main thread never runs it), `train/cancel` stops it at the next step
 * boundary. Every model step takes the scheduler's lock at background priority, so completion
 * requests are answered between training steps. One job runs at a time: the jobs share the one
 * copy of the base weights.
 *
 * Events go back on the same channel (`train/progress`, `train/metrics`, `train/log`,
 * `train/checkpoint`, `train/done`); exactly one `train/done` answers every accepted
 * `train/start`, and a start that cannot be accepted is answered with `train/done` "failed".
 */
import {
  parseTrainingCommand,
  type JobStatus,
  type LogLevel,
  type PromotionVerdict,
  type TrainStartCommand,
  type TrainingEvent,
  type TrainingKind,
} from '../protocol/training';
import type { TypedMessage } from '../protocol/modelHost';
import { describeError } from './errorReport';
import type { MessageLoop } from './loop';
import { ResumeRefusedError } from '../rlhf/resume';
import type { LogLevel as TrainerLogLevel } from '../rlhf/trainerContext';
import { AbortError, type ModelScheduler } from './scheduler';

// The job kinds and events are this module's API as well as the protocol's: the CLI, which runs
// jobs through runTrainingJob and may not import the protocol, names them from here.
export type { TrainingEvent, TrainingKind };

// rlhf declares its log levels itself (it may not import the protocol) and this module forwards
// them unchanged: the two lists must stay the same, which this fails to compile otherwise.
const sameLogLevels: [LogLevel, TrainerLogLevel] extends [TrainerLogLevel, LogLevel]
  ? true
  : never = true;
void sameLogLevels;

/** What a running job can do; the same interface serves the model host and the CLI. */
export interface TrainingJobContext {
  command: TrainStartCommand;
  signal: AbortSignal;
  /** Runs one unit of model work under the scheduler lock (background priority). */
  step<T>(work: () => Promise<T>): Promise<T>;
  progress(phase: string, step: number, totalSteps: number, message?: string): void;
  metrics(step: number, row: Record<string, number>): void;
  log(level: LogLevel, message: string): void;
  checkpoint(step: number, path: string): void;
}

export interface TrainingJobResult {
  /** "completed" or "early-stopped"; cancellation and failure are reported by the handler. */
  status: Extract<JobStatus, 'completed' | 'early-stopped'>;
  outputPath?: string;
  summary?: Record<string, number>;
  /** The promotion gate's verdict ("gate" jobs). */
  decision?: PromotionVerdict;
}

export type TrainingJobRunner = (ctx: TrainingJobContext) => Promise<TrainingJobResult>;

export type TrainingRunners = Record<TrainingKind, TrainingJobRunner>;

function isAbort(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}

/**
 * Runs one job to its `train/done`, sending events through `emit`. Used by host and CLI. A
 * failure is logged (a `train/log` at level error) as `describeError` words it: the message
 * alone for bad input, the stack trace too for an internal error or with `verbose`; the
 * `train/done` that follows carries the message too, for callers that show only the outcome.
 */
export async function runTrainingJob(
  command: TrainStartCommand,
  runner: TrainingJobRunner,
  emit: (event: TrainingEvent) => void,
  signal: AbortSignal,
  step: <T>(work: () => Promise<T>) => Promise<T>,
  options: { verbose?: boolean } = {},
): Promise<TrainingEvent & { type: 'train/done' }> {
  const { jobId } = command;
  const ctx: TrainingJobContext = {
    command,
    signal,
    step: (work) => {
      if (signal.aborted) return Promise.reject(new AbortError());
      return step(work);
    },
    progress: (phase, s, totalSteps, message) =>
      emit({
        type: 'train/progress',
        jobId,
        phase,
        step: s,
        totalSteps,
        ...(message ? { message } : {}),
      }),
    metrics: (s, metrics) => emit({ type: 'train/metrics', jobId, step: s, metrics }),
    log: (level, message) =>
      emit({ type: 'train/log', jobId, level, message, time: new Date().toISOString() }),
    checkpoint: (s, path) => emit({ type: 'train/checkpoint', jobId, step: s, path }),
  };
  let done: TrainingEvent & { type: 'train/done' };
  try {
    const result = await runner(ctx);
    done = {
      type: 'train/done',
      jobId,
      status: signal.aborted ? 'cancelled' : result.status,
      ...(result.outputPath ? { outputPath: result.outputPath } : {}),
      ...(result.summary ? { summary: result.summary } : {}),
      ...(result.decision && !signal.aborted ? { decision: result.decision } : {}),
    };
  } catch (error) {
    if (isAbort(error) || signal.aborted) {
      // Expected: the user cancelled. The last checkpoint stays for resume.
      done = { type: 'train/done', jobId, status: 'cancelled' };
    } else {
      const err = error as Error;
      ctx.log('error', describeError(err, options.verbose));
      done = {
        type: 'train/done',
        jobId,
        status: 'failed',
        error: err.message,
        // The caller may mend the config and resume, or only start afresh: it needs to know which.
        ...(err instanceof ResumeRefusedError
          ? { resumeRefused: err.restore ? { restore: { ...err.restore } } : {} }
          : {}),
      };
    }
  }
  emit(done);
  return done;
}

export interface TrainingHandlers {
  /** Id of the running job, if any. */
  running(): string | undefined;
  /** Resolves when the running job (if any) has sent its `train/done`. */
  idle(): Promise<void>;
}

export function registerTrainingHandlers(
  loop: MessageLoop,
  scheduler: ModelScheduler,
  runners: TrainingRunners,
): TrainingHandlers {
  const log = loop.logger('training');
  let current:
    { jobId: string; controller: AbortController; finished: Promise<unknown> } | undefined;
  const send = (event: TrainingEvent) => loop.send(event as unknown as TypedMessage);

  loop.register('train/start', (message) => {
    let command: TrainStartCommand;
    try {
      const parsed = parseTrainingCommand(message);
      if (parsed.type !== 'train/start') return;
      command = parsed;
    } catch (error) {
      const jobId = typeof message.jobId === 'string' && message.jobId ? message.jobId : 'unknown';
      log.error(`rejected train/start: ${(error as Error).message}`);
      send({ type: 'train/done', jobId, status: 'failed', error: (error as Error).message });
      return;
    }
    if (current) {
      send({
        type: 'train/done',
        jobId: command.jobId,
        status: 'failed',
        error: `training job "${current.jobId}" is still running; cancel it or wait for it to finish`,
      });
      return;
    }
    const controller = new AbortController();
    log.info(`starting ${command.kind} job ${command.jobId} in ${command.runDir}`);
    const finished = runTrainingJob(
      command,
      runners[command.kind],
      send,
      controller.signal,
      (work) => scheduler.run('background', work, controller.signal),
    ).then((done) => {
      log.info(`job ${command.jobId} ended: ${done.status}`);
      current = undefined;
    });
    current = { jobId: command.jobId, controller, finished };
  });

  loop.register('train/cancel', (message) => {
    let jobId: string;
    try {
      jobId = parseTrainingCommand(message).jobId;
    } catch (error) {
      log.warn(`dropped train/cancel: ${(error as Error).message}`);
      return;
    }
    if (current?.jobId === jobId) current.controller.abort();
    else log.warn(`train/cancel for job "${jobId}", which is not running`);
  });

  return {
    running: () => current?.jobId,
    idle: async () => {
      await current?.finished;
    },
  };
}
