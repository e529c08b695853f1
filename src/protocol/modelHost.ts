/**
 * Messages between the extension host and the model host process (IPC over `process.send`).
 * Every message is validated on arrival on both sides: the other process may be a different
 * build, may have crashed half-way, or may be a CLI driving the host.
 *
 * Every message has a `type`; the model host's loop dispatches on it (see `src/host/loop.ts`).
 * This module defines the request/response part: a `request` carries an `id` and a `method`, and
 * the model host answers it with exactly one `response` of the same id (`ok` true with a
 * result, or false with an error; a cancelled request answers with an error named
 * `AbortError`). The model host may also send `log` records at any time. Other message types
 * (the training commands and events of `./training`) travel over the same channel.
 *
 * Adding a method: add it to `ModelHostMethods` and give it validators in `methodValidators`.
 */

import type { CompletionRequest, GeneratedCandidate, StopReason } from './generation';
import { LOG_LEVELS, type LogLevel } from './training';

/** Loads (or switches to) a model folder; `modelDir` is an absolute path. */
export interface LoadParams {
  modelDir: string;
}
export interface LoadResult {
  /** Human-readable model name from the generator. */
  model: string;
  /** Time spent loading, in milliseconds. */
  loadMs: number;
}

export type CompleteParams = CompletionRequest;
export interface CompleteResult {
  candidates: GeneratedCandidate[];
  /** Wall time inside the model host from request arrival to result, in milliseconds. */
  latencyMs: number;
  /** Model that produced the candidates, as `LoadResult.model`. */
  model: string;
}

/**
 * Reads a PEFT adapter folder over the loaded model, as completions with that `adapterPath`
 * would, without generating: the editor checks an adapter trained elsewhere before it makes it
 * the completion policy. `modelDir` must be the loaded model (absolute paths both).
 */
export interface CheckAdapterParams {
  modelDir: string;
  adapterPath: string;
}
/** The adapter that fits (the same fields as src/generation/api.ts `AdapterSummary`). */
export interface CheckAdapterResult {
  rank: number;
  alpha: number;
  /** Projections it adapts, e.g. ["q_proj", "v_proj"]. */
  targets: string[];
  /** Modules (one projection of one layer) it adapts. */
  modules: number;
}

export type PingParams = Record<string, never>;
export interface PingResult {
  pid: number;
  /** Name of the loaded model, or null when none is loaded. */
  model: string | null;
}

/** Method name -> [params, result]. */
export interface ModelHostMethods {
  load: [LoadParams, LoadResult];
  complete: [CompleteParams, CompleteResult];
  checkAdapter: [CheckAdapterParams, CheckAdapterResult];
  ping: [PingParams, PingResult];
}
export type ModelHostMethod = keyof ModelHostMethods;
export type ParamsOf<M extends ModelHostMethod> = ModelHostMethods[M][0];
export type ResultOf<M extends ModelHostMethod> = ModelHostMethods[M][1];

/** Extension host -> model host (request/response part). */
export type RpcToModelHost =
  { type: 'request'; id: number; method: string; params: unknown } | { type: 'cancel'; id: number };

export type { LogLevel };

export interface ErrorInfo {
  /** Error class name; `AbortError` for a cancelled request. */
  name: string;
  message: string;
}

export type RpcResponse =
  | { type: 'response'; id: number; ok: true; result: unknown }
  | { type: 'response'; id: number; ok: false; error: ErrorInfo };

export interface HostLogRecord {
  type: 'log';
  level: LogLevel;
  component: string;
  message: string;
}

/** Model host -> extension host (request/response part and log records). */
export type RpcFromModelHost = RpcResponse | HostLogRecord;

/** Any message on the channel: it has a string `type`; the receiver dispatches on it. */
export interface TypedMessage {
  type: string;
  [key: string]: unknown;
}

export class ModelHostMessageError extends Error {
  override name = 'ModelHostMessageError';
}

const STOP_REASONS: readonly StopReason[] = [
  'stop-token',
  'stop-string',
  'max-tokens',
  'max-lines',
];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fail(where: string, key: string, expected: string, got: unknown): never {
  const shown = typeof got === 'string' ? JSON.stringify(got.slice(0, 80)) : String(got);
  throw new ModelHostMessageError(`${where}: "${key}" must be ${expected}, got ${shown}`);
}

function object(where: string, value: unknown): Record<string, unknown> {
  if (!isObject(value))
    fail(where, '(message)', 'an object', Array.isArray(value) ? 'array' : value);
  return value;
}

function str(where: string, obj: Record<string, unknown>, key: string): string {
  const value = obj[key];
  if (typeof value !== 'string') fail(where, key, 'a string', value);
  return value;
}

function num(where: string, obj: Record<string, unknown>, key: string, min = -Infinity): number {
  const value = obj[key];
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    fail(where, key, min === -Infinity ? 'a finite number' : `a finite number >= ${min}`, value);
  }
  return value;
}

function int(where: string, obj: Record<string, unknown>, key: string, min: number, max: number) {
  const value = obj[key];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(where, key, `an integer in [${min}, ${max}]`, value);
  }
  return value;
}

function requestId(where: string, obj: Record<string, unknown>): number {
  return int(where, obj, 'id', 0, Number.MAX_SAFE_INTEGER);
}

/** Validates completion request parameters; throws naming the bad key and the allowed range. */
export function parseCompleteParams(value: unknown): CompleteParams {
  const where = 'complete params';
  const obj = object(where, value);
  const params: CompleteParams = {
    prefix: str(where, obj, 'prefix'),
    suffix: str(where, obj, 'suffix'),
    count: int(where, obj, 'count', 1, 64),
    maxNewTokens: int(where, obj, 'maxNewTokens', 1, 4096),
    maxLines: int(where, obj, 'maxLines', 0, 10_000),
    temperature: num(where, obj, 'temperature', 0),
    topK: int(where, obj, 'topK', 0, 1_000_000),
    topP: num(where, obj, 'topP', 0),
    seed: int(where, obj, 'seed', 0, 2 ** 32 - 1),
  };
  if (params.topP > 1) fail(where, 'topP', 'a number in [0, 1]', params.topP);
  if (obj.stopStrings !== undefined) {
    const stops = obj.stopStrings;
    if (!Array.isArray(stops) || !stops.every((s) => typeof s === 'string' && s.length > 0)) {
      fail(where, 'stopStrings', 'an array of non-empty strings', JSON.stringify(stops));
    }
    params.stopStrings = stops as string[];
  }
  if (obj.adapterPath !== undefined) params.adapterPath = str(where, obj, 'adapterPath');
  return params;
}

function parseCandidate(value: unknown, index: number): GeneratedCandidate {
  const where = `complete result candidate ${index}`;
  const obj = object(where, value);
  const tokenIds = obj.tokenIds;
  if (!Array.isArray(tokenIds) || !tokenIds.every((t) => Number.isInteger(t) && t >= 0)) {
    fail(where, 'tokenIds', 'an array of non-negative integers', JSON.stringify(tokenIds));
  }
  const stopReason = obj.stopReason;
  if (!STOP_REASONS.includes(stopReason as StopReason)) {
    fail(where, 'stopReason', `one of ${STOP_REASONS.join(', ')}`, stopReason);
  }
  const logprob = obj.logprob;
  // -Infinity is a legitimate log-probability only in theory; JSON cannot carry it anyway.
  if (typeof logprob !== 'number' || Number.isNaN(logprob)) {
    fail(where, 'logprob', 'a number', logprob);
  }
  return {
    text: str(where, obj, 'text'),
    tokenIds: tokenIds as number[],
    logprob,
    stopReason: stopReason as StopReason,
  };
}

/** Validator pair for each method: params checked by the model host, results by the client. */
export const methodValidators: {
  [M in ModelHostMethod]: {
    params: (value: unknown) => ParamsOf<M>;
    result: (value: unknown) => ResultOf<M>;
  };
} = {
  load: {
    params(value) {
      const obj = object('load params', value);
      const modelDir = str('load params', obj, 'modelDir');
      if (modelDir.length === 0) fail('load params', 'modelDir', 'a non-empty path', '""');
      return { modelDir };
    },
    result(value) {
      const obj = object('load result', value);
      return {
        model: str('load result', obj, 'model'),
        loadMs: num('load result', obj, 'loadMs', 0),
      };
    },
  },
  complete: {
    params: parseCompleteParams,
    result(value) {
      const where = 'complete result';
      const obj = object(where, value);
      if (!Array.isArray(obj.candidates)) fail(where, 'candidates', 'an array', obj.candidates);
      return {
        candidates: obj.candidates.map(parseCandidate),
        latencyMs: num(where, obj, 'latencyMs', 0),
        model: str(where, obj, 'model'),
      };
    },
  },
  checkAdapter: {
    params(value) {
      const where = 'checkAdapter params';
      const obj = object(where, value);
      const modelDir = str(where, obj, 'modelDir');
      const adapterPath = str(where, obj, 'adapterPath');
      if (modelDir.length === 0) fail(where, 'modelDir', 'a non-empty path', '""');
      if (adapterPath.length === 0) fail(where, 'adapterPath', 'a non-empty path', '""');
      return { modelDir, adapterPath };
    },
    result(value) {
      const where = 'checkAdapter result';
      const obj = object(where, value);
      const targets = obj.targets;
      if (!Array.isArray(targets) || !targets.every((t) => typeof t === 'string')) {
        fail(where, 'targets', 'an array of strings', JSON.stringify(targets));
      }
      return {
        rank: int(where, obj, 'rank', 1, Number.MAX_SAFE_INTEGER),
        alpha: num(where, obj, 'alpha', 0),
        targets: targets as string[],
        modules: int(where, obj, 'modules', 1, Number.MAX_SAFE_INTEGER),
      };
    },
  },
  ping: {
    params(value) {
      object('ping params', value);
      return {};
    },
    result(value) {
      const obj = object('ping result', value);
      const model = obj.model;
      if (model !== null && typeof model !== 'string')
        fail('ping result', 'model', 'a string or null', model);
      return { pid: int('ping result', obj, 'pid', 0, Number.MAX_SAFE_INTEGER), model };
    },
  },
};

export function isModelHostMethod(value: unknown): value is ModelHostMethod {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(methodValidators, value);
}

/** Checks that a message is an object with a string `type`; the first step of dispatch. */
export function parseTypedMessage(value: unknown, where: string): TypedMessage {
  const obj = object(where, value);
  if (typeof obj.type !== 'string' || obj.type.length === 0) {
    fail(where, 'type', 'a non-empty string', obj.type);
  }
  return obj as TypedMessage;
}

/** Validates a `request` or `cancel` message; params are checked later by the method's validator. */
export function parseRpcToModelHost(message: TypedMessage): RpcToModelHost {
  const where = `${message.type} message to model host`;
  const id = requestId(where, message);
  if (message.type === 'cancel') return { type: 'cancel', id };
  if (message.type !== 'request') fail(where, 'type', '"request" or "cancel"', message.type);
  return { type: 'request', id, method: str(where, message, 'method'), params: message.params };
}

/** Validates a `response` or `log` message from the model host. */
export function parseRpcFromModelHost(message: TypedMessage): RpcFromModelHost {
  const where = `${message.type} message from model host`;
  if (message.type === 'response') {
    const id = requestId(where, message);
    if (message.ok === true) return { type: 'response', id, ok: true, result: message.result };
    if (message.ok !== false) fail(where, 'ok', 'true or false', message.ok);
    const error = object(`${where} error`, message.error);
    return {
      type: 'response',
      id,
      ok: false,
      error: { name: str(where, error, 'name'), message: str(where, error, 'message') },
    };
  }
  if (message.type !== 'log') fail(where, 'type', '"response" or "log"', message.type);
  const level = message.level;
  if (!LOG_LEVELS.includes(level as LogLevel)) {
    fail(where, 'level', `one of ${LOG_LEVELS.join(', ')}`, level);
  }
  return {
    type: 'log',
    level: level as LogLevel,
    component: str(where, message, 'component'),
    message: str(where, message, 'message'),
  };
}
