/**
 * Training messages between the extension host (or the CLI) and the model host. Commands go
 * to the model host; events come back. Every message is validated on arrival because it crosses
 * a process boundary: a bad field is reported by name with what was allowed.
 */

/**
 * Job kinds: the three trainers, and "gate", the promotion gate that compares a tuned adapter
 * with the previous policy on held-out prompts (reward-model win rate and KL) after training.
 */
export type TrainingKind = 'rm' | 'ppo' | 'dpo' | 'gate';
export const TRAINING_KINDS: readonly TrainingKind[] = ['rm', 'ppo', 'dpo', 'gate'];

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error'];

export type JobStatus = 'completed' | 'cancelled' | 'failed' | 'early-stopped';
export const JOB_STATUSES: readonly JobStatus[] = [
  'completed',
  'cancelled',
  'failed',
  'early-stopped',
];

/** Starts a training job. The model host answers with events carrying the same `jobId`. */
export interface TrainStartCommand {
  type: 'train/start';
  jobId: string;
  kind: TrainingKind;
  /** Folder for this run: checkpoints, metrics.jsonl, run.json. Created if missing. */
  runDir: string;
  /** Continue from the last complete checkpoint in `runDir` instead of starting fresh. */
  resume: boolean;
  /**
   * Trainer config fields (see `src/rlhf/config.ts`); unknown keys are rejected by the trainer,
   * which names them. Kept as a plain JSON object here so the protocol imports nothing.
   */
  config: Record<string, unknown>;
}

/** Asks a running job to stop at the next step boundary; it then reports status "cancelled". */
export interface TrainCancelCommand {
  type: 'train/cancel';
  jobId: string;
}

export type TrainingCommand = TrainStartCommand | TrainCancelCommand;

export interface TrainProgressEvent {
  type: 'train/progress';
  jobId: string;
  /** Phase name, e.g. "rollout", "optimize", "evaluate". */
  phase: string;
  step: number;
  totalSteps: number;
  message?: string;
}

/** One row of metrics, named as in TRL (`objective/kl`, `loss/value_avg`, ...). */
export interface TrainMetricsEvent {
  type: 'train/metrics';
  jobId: string;
  step: number;
  metrics: Record<string, number>;
}

export interface TrainLogEvent {
  type: 'train/log';
  jobId: string;
  level: LogLevel;
  message: string;
  /** ISO 8601 time the record was made in the model host. */
  time: string;
}

export interface TrainCheckpointEvent {
  type: 'train/checkpoint';
  jobId: string;
  step: number;
  /** Folder of the complete checkpoint (written atomically). */
  path: string;
}

export interface TrainDoneEvent {
  type: 'train/done';
  jobId: string;
  status: JobStatus;
  /** Present when status is "failed". */
  error?: string;
  /** Folder holding the final adapter/heads, when the job produced one. */
  outputPath?: string;
  /** Final numbers, e.g. validation accuracy or win rate. */
  summary?: Record<string, number>;
  /** The promotion gate's verdict on the tuned adapter ("gate" jobs that completed). */
  decision?: PromotionVerdict;
  /**
   * Present when the job failed because the trainer refused to resume from its checkpoint (its
   * config or data differ). `restore`: the checkpoint's value of each differing key, when
   * setting those is all it takes to resume; absent when not (the data changed).
   */
  resumeRefused?: { restore?: Record<string, unknown> };
}

/** Whether a tuned adapter may replace the current completion policy, and why. */
export interface PromotionVerdict {
  promote: boolean;
  /** One sentence naming the numbers the verdict rests on. */
  reason: string;
}

export type TrainingEvent =
  TrainProgressEvent | TrainMetricsEvent | TrainLogEvent | TrainCheckpointEvent | TrainDoneEvent;

export class TrainingMessageError extends Error {}

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function where(message: Obj): string {
  return typeof message.type === 'string' ? `${message.type} message` : 'training message';
}

function str(message: Obj, key: string, optional = false): string | undefined {
  const value = message[key];
  if (value === undefined && optional) return undefined;
  if (typeof value !== 'string' || (!optional && value.length === 0)) {
    throw new TrainingMessageError(
      `${where(message)}: "${key}" must be a non-empty string, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function nonNegativeInt(message: Obj, key: string): number {
  const value = message[key];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new TrainingMessageError(
      `${where(message)}: "${key}" must be a non-negative integer, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function oneOf<T extends string>(message: Obj, key: string, allowed: readonly T[]): T {
  const value = message[key];
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new TrainingMessageError(
      `${where(message)}: "${key}" is ${JSON.stringify(value)}; allowed: ${allowed
        .map((a) => JSON.stringify(a))
        .join(', ')}`,
    );
  }
  return value as T;
}

function numberMap(
  message: Obj,
  key: string,
  optional = false,
): Record<string, number> | undefined {
  const value = message[key];
  if (value === undefined && optional) return undefined;
  if (!isObject(value)) {
    throw new TrainingMessageError(`${where(message)}: "${key}" must be an object of numbers`);
  }
  const out: Record<string, number> = {};
  for (const [name, v] of Object.entries(value)) {
    // NaN and Infinity do not survive JSON; a diverged metric arrives as null and is kept as NaN
    // so the dashboard can show it rather than the message being dropped.
    if (v === null) out[name] = Number.NaN;
    else if (typeof v === 'number') out[name] = v;
    else {
      throw new TrainingMessageError(
        `${where(message)}: "${key}.${name}" must be a number, got ${JSON.stringify(v)}`,
      );
    }
  }
  return out;
}

function verdict(message: Obj): PromotionVerdict | undefined {
  const value = message.decision;
  if (value === undefined) return undefined;
  if (
    !isObject(value) ||
    typeof value.promote !== 'boolean' ||
    typeof value.reason !== 'string' ||
    value.reason.length === 0
  ) {
    throw new TrainingMessageError(
      `${where(message)}: "decision" must be {"promote": boolean, "reason": non-empty string}, ` +
        `got ${JSON.stringify(value)}`,
    );
  }
  return { promote: value.promote, reason: value.reason };
}

function refusal(message: Obj): TrainDoneEvent['resumeRefused'] {
  const value = message.resumeRefused;
  if (value === undefined) return undefined;
  if (!isObject(value) || (value.restore !== undefined && !isObject(value.restore))) {
    throw new TrainingMessageError(
      `${where(message)}: "resumeRefused" must be {"restore"?: an object of config values}, ` +
        `got ${JSON.stringify(value)}`,
    );
  }
  return value.restore === undefined ? {} : { restore: { ...value.restore } };
}

/** Validates a command arriving at the model host. */
export function parseTrainingCommand(value: unknown): TrainingCommand {
  if (!isObject(value)) {
    throw new TrainingMessageError(`training command must be an object, got ${typeof value}`);
  }
  switch (value.type) {
    case 'train/start': {
      if (typeof value.resume !== 'boolean') {
        throw new TrainingMessageError(
          `train/start message: "resume" must be a boolean, got ${JSON.stringify(value.resume)}`,
        );
      }
      if (!isObject(value.config)) {
        throw new TrainingMessageError('train/start message: "config" must be an object');
      }
      return {
        type: 'train/start',
        jobId: str(value, 'jobId')!,
        kind: oneOf(value, 'kind', TRAINING_KINDS),
        runDir: str(value, 'runDir')!,
        resume: value.resume,
        config: value.config,
      };
    }
    case 'train/cancel':
      return { type: 'train/cancel', jobId: str(value, 'jobId')! };
    default:
      throw new TrainingMessageError(
        `training command has unknown type ${JSON.stringify(value.type)}; allowed: "train/start", "train/cancel"`,
      );
  }
}

/** Validates an event arriving from the model host. */
export function parseTrainingEvent(value: unknown): TrainingEvent {
  if (!isObject(value)) {
    throw new TrainingMessageError(`training event must be an object, got ${typeof value}`);
  }
  const jobId = str(value, 'jobId')!;
  switch (value.type) {
    case 'train/progress':
      return {
        type: 'train/progress',
        jobId,
        phase: str(value, 'phase')!,
        step: nonNegativeInt(value, 'step'),
        totalSteps: nonNegativeInt(value, 'totalSteps'),
        ...(value.message !== undefined ? { message: str(value, 'message', true)! } : {}),
      };
    case 'train/metrics':
      return {
        type: 'train/metrics',
        jobId,
        step: nonNegativeInt(value, 'step'),
        metrics: numberMap(value, 'metrics')!,
      };
    case 'train/log':
      return {
        type: 'train/log',
        jobId,
        level: oneOf(value, 'level', LOG_LEVELS),
        message: str(value, 'message', true) ?? '',
        time: str(value, 'time')!,
      };
    case 'train/checkpoint':
      return {
        type: 'train/checkpoint',
        jobId,
        step: nonNegativeInt(value, 'step'),
        path: str(value, 'path')!,
      };
    case 'train/done': {
      const status = oneOf(value, 'status', JOB_STATUSES);
      const error = str(value, 'error', true);
      if (status === 'failed' && !error) {
        throw new TrainingMessageError('train/done message: status "failed" needs an "error"');
      }
      const outputPath = str(value, 'outputPath', true);
      const summary = numberMap(value, 'summary', true);
      const decision = verdict(value);
      const resumeRefused = refusal(value);
      return {
        type: 'train/done',
        jobId,
        status,
        ...(error !== undefined ? { error } : {}),
        ...(outputPath !== undefined ? { outputPath } : {}),
        ...(summary !== undefined ? { summary } : {}),
        ...(decision !== undefined ? { decision } : {}),
        ...(resumeRefused !== undefined ? { resumeRefused } : {}),
      };
    }
    default:
      throw new TrainingMessageError(
        `training event has unknown type ${JSON.stringify(value.type)}; allowed: "train/progress", ` +
          '"train/metrics", "train/log", "train/checkpoint", "train/done"',
      );
  }
}

/** True for messages whose type belongs to the training protocol (for a dispatching loop). */
export function isTrainingCommandType(type: unknown): boolean {
  return type === 'train/start' || type === 'train/cancel';
}
