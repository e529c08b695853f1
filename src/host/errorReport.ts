/**
 * How a failed job or command is reported. Errors our code throws for bad input (a flag, config
 * key, setting, file, record or folder) carry a message that names the bad value and what is
 * allowed: that message is the whole report, and a stack trace would only bury it. Errors
 * JavaScript raises for a bug (a TypeError on undefined, a RangeError, ...), a failed internal
 * assertion or invariant, and the engine's graph and feed checks are internal: their stack trace
 * is what a bug report needs. A SettingError (a user-supplied setting out of range) is a
 * RangeError subclass but input, not a bug. `verbose` (the CLI's --verbose) asks for the stack
 * trace of every error.
 */
import { SettingError } from '../model/settingError';

/** Error classes that mean a bug in this code, not bad input. */
const INTERNAL: ReadonlyArray<new (...args: never[]) => Error> = [
  TypeError,
  RangeError,
  ReferenceError,
  EvalError,
  URIError,
];

/**
 * Errors of ours that mean a bug, matched by name (the last two live in src/engine, which the
 * host may not import): a failed assertion, a graph the model code built wrong, a feed that does
 * not match the graph it is given.
 */
const INTERNAL_NAMES: ReadonlySet<string> = new Set([
  'AssertionError',
  'GraphBuildError',
  'InputValidationError',
]);

/** Whether `error` is internal (a bug), not an error thrown for bad input; see the module doc. */
export function isInternalError(error: unknown): boolean {
  if (!(error instanceof Error)) return true;
  if (error instanceof SettingError) return false;
  return INTERNAL.some((kind) => error instanceof kind) || INTERNAL_NAMES.has(error.name);
}

/** The report of `error`: its message, or its stack trace when internal or `verbose`. */
export function describeError(error: unknown, verbose = false): string {
  if (!(error instanceof Error)) return `thrown value ${String(error)}`;
  return verbose || isInternalError(error) ? (error.stack ?? error.message) : error.message;
}
