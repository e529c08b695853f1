/**
 * One onnxruntime session runs at a time in the model host (`session.run` blocks the thread and
 * sessions share the base weights), so every piece of model work takes this lock. Interactive
 * work (completions the developer is waiting for) goes before background work (training
 * steps): a training job takes the lock once per step, so a completion request waits for at
 * most one step, never for the whole job.
 */

export type Priority = 'interactive' | 'background';

interface Waiter {
  priority: Priority;
  grant: () => void;
}

export class AbortError extends Error {
  override name = 'AbortError';
  constructor(message = 'cancelled') {
    super(message);
  }
}

export class ModelScheduler {
  private busy = false;
  private readonly waiters: Waiter[] = [];

  /** Number of callers waiting for the lock (not counting the one holding it). */
  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Runs `work` when the lock is free and no interactive caller is ahead of it. Rejects with an
   * AbortError, without running `work`, when `signal` fires while waiting.
   */
  async run<T>(priority: Priority, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.acquire(priority, signal);
    try {
      return await work();
    } finally {
      this.release();
    }
  }

  private acquire(priority: Priority, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(new AbortError());
    if (!this.busy && this.waiters.length === 0) {
      this.busy = true;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        priority,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(new AbortError());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private release(): void {
    const index = this.waiters.findIndex((w) => w.priority === 'interactive');
    const next = this.waiters.splice(index >= 0 ? index : 0, 1)[0];
    if (next) next.grant();
    else this.busy = false;
  }
}
