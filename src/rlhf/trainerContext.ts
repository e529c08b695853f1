/**
 * What a trainer needs from whoever runs it (the model host's job handler, the CLI, a test):
 * cancellation, the model lock, and channels for progress, metrics, logs and checkpoints.
 * The model host's TrainingJobContext satisfies this interface.
 */

/**
 * Severity of a trainer's log record. The same levels as the protocol's `LogLevel`, declared
 * here because rlhf may not import the protocol; the model host forwards them unchanged.
 */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

export interface TrainerContext {
  signal: AbortSignal;
  /** Runs one unit of model work (under the host's scheduler lock). */
  step<T>(work: () => Promise<T>): Promise<T>;
  progress(phase: string, step: number, totalSteps: number, message?: string): void;
  metrics(step: number, row: Record<string, number>): void;
  log(level: LogLevel, message: string): void;
  checkpoint(step: number, path: string): void;
}

export class CancelledError extends Error {
  override name = 'AbortError';
  constructor() {
    super('training cancelled');
  }
}

export function throwIfCancelled(signal: AbortSignal): void {
  if (signal.aborted) throw new CancelledError();
}

/** A context for headless use: runs work directly and forwards records to callbacks. */
export function directContext(
  options: {
    signal?: AbortSignal;
    onLog?: (level: LogLevel, message: string) => void;
    onMetrics?: (step: number, row: Record<string, number>) => void;
    onProgress?: (phase: string, step: number, total: number, message?: string) => void;
  } = {},
): TrainerContext {
  return {
    signal: options.signal ?? new AbortController().signal,
    step: (work) => work(),
    progress: (phase, step, total, message) => options.onProgress?.(phase, step, total, message),
    metrics: (step, row) => options.onMetrics?.(step, row),
    log: (level, message) => options.onLog?.(level, message),
    checkpoint: () => {},
  };
}
