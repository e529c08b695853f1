/**
 * Training messages from the extension host to the dashboard webview (the "state" message and
 * the webview's own messages are in webviewMessages.ts). Validated on arrival in the webview:
 * a bad field is named with what was allowed.
 */
import { MessageValidationError } from './webviewMessages';

/** The trainers, and "gate": the promotion gate's evaluation after training. */
export type DashboardStage = 'rm' | 'ppo' | 'dpo' | 'gate';
export const DASHBOARD_STAGES: readonly DashboardStage[] = ['rm', 'ppo', 'dpo', 'gate'];

/** A training run starts (clears the charts). */
export interface TrainingRunMessage {
  type: 'trainingRun';
  runId: string;
  algorithm: 'ppo' | 'dpo';
  /** Where the run's folders are written. */
  runDir: string;
}

/** A stage of the run starts, with the config it was started with. */
export interface TrainingStageMessage {
  type: 'trainingStage';
  runId: string;
  stage: DashboardStage;
  config: Record<string, string | number | boolean>;
}

/** One metrics row of a stage; a diverged value (NaN, Infinity) arrives as null. */
export interface TrainingMetricsMessage {
  type: 'trainingMetrics';
  runId: string;
  stage: DashboardStage;
  step: number;
  metrics: Record<string, number | null>;
}

export interface TrainingProgressMessage {
  type: 'trainingProgress';
  runId: string;
  stage: DashboardStage;
  phase: string;
  step: number;
  totalSteps: number;
}

/** The run ended; `text` says how (and whether the adapter was promoted). */
export interface TrainingEndedMessage {
  type: 'trainingEnded';
  runId: string;
  status: 'completed' | 'cancelled' | 'failed' | 'early-stopped';
  text: string;
}

export type HostToTrainingDashboard =
  | TrainingRunMessage
  | TrainingStageMessage
  | TrainingMetricsMessage
  | TrainingProgressMessage
  | TrainingEndedMessage;

export const TRAINING_DASHBOARD_TYPES = [
  'trainingRun',
  'trainingStage',
  'trainingMetrics',
  'trainingProgress',
  'trainingEnded',
] as const;

/** Metric and config names are short identifiers such as "objective/kl" or "learningRate". */
const NAME = /^[A-Za-z0-9_/.:-]{1,100}$/;
const MAX_ENTRIES = 200;
const MAX_TEXT = 10_000;

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fail(type: string, key: string, expected: string, got: unknown): never {
  let shown: string;
  try {
    shown = JSON.stringify(got) ?? String(got);
  } catch {
    shown = typeof got;
  }
  throw new MessageValidationError(
    `${type} message: "${key}" must be ${expected}, got ${shown.slice(0, 80)}`,
  );
}

function text(type: string, obj: Obj, key: string, max = 1000): string {
  const value = obj[key];
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    fail(type, key, `a non-empty string of at most ${max} characters`, value);
  }
  return value;
}

function count(type: string, obj: Obj, key: string): number {
  const value = obj[key];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    fail(type, key, 'a non-negative integer', value);
  }
  return value;
}

function oneOf<T extends string>(type: string, obj: Obj, key: string, allowed: readonly T[]): T {
  const value = obj[key];
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    fail(type, key, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`, value);
  }
  return value as T;
}

function entries(type: string, obj: Obj, key: string): Array<[string, unknown]> {
  const value = obj[key];
  if (!isObject(value)) fail(type, key, 'an object', value);
  const list = Object.entries(value);
  if (list.length > MAX_ENTRIES) fail(type, key, `an object of at most ${MAX_ENTRIES} keys`, '…');
  for (const [name] of list) {
    if (!NAME.test(name)) fail(type, `${key} key`, `an identifier matching ${NAME}`, name);
  }
  return list;
}

/** Validates a training message for the dashboard; throws naming the bad field. */
export function parseHostToTrainingDashboard(value: unknown): HostToTrainingDashboard {
  if (!isObject(value)) {
    throw new MessageValidationError(`dashboard message must be an object, got ${typeof value}`);
  }
  const type = value.type;
  switch (type) {
    case 'trainingRun':
      return {
        type,
        runId: text(type, value, 'runId', 200),
        algorithm: oneOf(type, value, 'algorithm', ['ppo', 'dpo'] as const),
        runDir: text(type, value, 'runDir', 4096),
      };
    case 'trainingStage': {
      const config: Record<string, string | number | boolean> = {};
      for (const [name, v] of entries(type, value, 'config')) {
        if (typeof v === 'string') config[name] = v.slice(0, 4096);
        else if (typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) {
          config[name] = v;
        } else fail(type, `config.${name}`, 'a string, a finite number or a boolean', v);
      }
      return {
        type,
        runId: text(type, value, 'runId', 200),
        stage: oneOf(type, value, 'stage', DASHBOARD_STAGES),
        config,
      };
    }
    case 'trainingMetrics': {
      const metrics: Record<string, number | null> = {};
      for (const [name, v] of entries(type, value, 'metrics')) {
        if (v === null) metrics[name] = null;
        else if (typeof v === 'number') metrics[name] = Number.isFinite(v) ? v : null;
        else fail(type, `metrics.${name}`, 'a number or null', v);
      }
      return {
        type,
        runId: text(type, value, 'runId', 200),
        stage: oneOf(type, value, 'stage', DASHBOARD_STAGES),
        step: count(type, value, 'step'),
        metrics,
      };
    }
    case 'trainingProgress':
      return {
        type,
        runId: text(type, value, 'runId', 200),
        stage: oneOf(type, value, 'stage', DASHBOARD_STAGES),
        phase: text(type, value, 'phase', 100),
        step: count(type, value, 'step'),
        totalSteps: count(type, value, 'totalSteps'),
      };
    case 'trainingEnded':
      return {
        type,
        runId: text(type, value, 'runId', 200),
        status: oneOf(type, value, 'status', [
          'completed',
          'cancelled',
          'failed',
          'early-stopped',
        ] as const),
        text: text(type, value, 'text', MAX_TEXT),
      };
    default:
      throw new MessageValidationError(
        `dashboard message has unknown type ${JSON.stringify(type)}; allowed: "state", ` +
          TRAINING_DASHBOARD_TYPES.map((t) => JSON.stringify(t)).join(', '),
      );
  }
}
