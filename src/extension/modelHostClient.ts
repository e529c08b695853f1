/**
 * The extension host's side of the model host: forks the process with the editor's own runtime,
 * sends typed requests, matches responses by id, cancels on abort, and restarts the process
 * after a crash (restoring the loaded model) so an out-of-memory or native abort in onnxruntime
 * never takes the editor down. No `vscode` import: unit tests drive it with real processes.
 */
import { fork, type ChildProcess, type ForkOptions } from 'child_process';
import {
  methodValidators,
  parseRpcFromModelHost,
  parseTypedMessage,
  type LoadParams,
  type ModelHostMethod,
  type ParamsOf,
  type ResultOf,
  type TypedMessage,
} from '../protocol/modelHost';
import type { Logger } from './log';

export class ModelHostError extends Error {
  constructor(
    override readonly name: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ModelHostClientOptions {
  /** Absolute path of the model host script (dist/modelHost.js). */
  modulePath: string;
  log: Logger;
  /** Runtime that runs the script; the editor's own by default. */
  execPath?: string;
  execArgv?: string[];
  env?: NodeJS.ProcessEnv;
  /** Give up restarting after this many crashes within `crashWindowMs`. */
  maxCrashes?: number;
  crashWindowMs?: number;
}

interface Pending {
  method: string;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  cleanup: () => void;
}

export class ModelHostClient {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Map<string, Set<(message: TypedMessage) => void>>();
  private readonly crashTimes: number[] = [];
  private lastLoad: LoadParams | undefined;
  private restoring: Promise<void> | undefined;
  private disposed = false;
  private gaveUp: string | undefined;
  /** Number of times the process was started (1 after the first start). */
  starts = 0;

  constructor(private readonly options: ModelHostClientOptions) {}

  /** Pid of the running model host, if any. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Number of requests waiting for a response. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Sends a request; rejects with an AbortError (and tells the host) when `signal` fires. */
  async request<M extends ModelHostMethod>(
    method: M,
    params: ParamsOf<M>,
    signal?: AbortSignal,
  ): Promise<ResultOf<M>> {
    if (signal?.aborted) throw new ModelHostError('AbortError', 'cancelled');
    const child = this.ensureStarted();
    // After a restart, requests wait until the previous model is loaded again.
    if (this.restoring) await this.restoring;
    if (signal?.aborted) throw new ModelHostError('AbortError', 'cancelled');
    return this.sendRequest(child, method, params, signal);
  }

  private sendRequest<M extends ModelHostMethod>(
    child: ChildProcess,
    method: M,
    params: ParamsOf<M>,
    signal?: AbortSignal,
  ): Promise<ResultOf<M>> {
    const id = this.nextId++;
    return new Promise<ResultOf<M>>((resolve, reject) => {
      const onAbort = () => {
        this.settle(id)?.reject(new ModelHostError('AbortError', `${method} cancelled`));
        if (child.connected) child.send({ type: 'cancel', id });
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        method,
        resolve: (result) => {
          try {
            const checked = methodValidators[method].result(result) as ResultOf<M>;
            if (method === 'load') this.lastLoad = params as LoadParams;
            resolve(checked);
          } catch (error) {
            reject(error);
          }
        },
        reject,
        cleanup: () => signal?.removeEventListener('abort', onAbort),
      });
      if (child.connected) child.send({ type: 'request', id, method, params });
      else
        this.settle(id)?.reject(new ModelHostError('ModelHostCrashedError', 'model host is gone'));
    });
  }

  /** Sends a message of another protocol (e.g. a training command) to the model host. */
  send(message: TypedMessage): void {
    const child = this.ensureStarted();
    child.send(message);
  }

  /** Listens to messages of `type` from the model host (e.g. training events). */
  on(type: string, listener: (message: TypedMessage) => void): { dispose(): void } {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(listener);
    return { dispose: () => set.delete(listener) };
  }

  /** Forgets past crashes and starts again (after the user changed something). */
  resetCrashCount(): void {
    this.crashTimes.length = 0;
    this.gaveUp = undefined;
  }

  dispose(): void {
    this.disposed = true;
    this.rejectAll(new ModelHostError('AbortError', 'model host client disposed'));
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null && child.signalCode === null) child.kill();
  }

  private ensureStarted(): ChildProcess {
    if (this.disposed) throw new ModelHostError('DisposedError', 'model host client is disposed');
    if (this.gaveUp) throw new ModelHostError('ModelHostCrashedError', this.gaveUp);
    if (this.child) return this.child;
    const { modulePath, execPath, execArgv, env } = this.options;
    const forkOptions: ForkOptions = {
      execPath: execPath ?? process.execPath,
      execArgv: execArgv ?? [],
      // The editor's runtime is Electron; this makes it behave as plain Node in the child.
      env: { ...(env ?? process.env), ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    };
    const child = fork(modulePath, [], forkOptions);
    this.child = child;
    this.starts++;
    const log = this.options.log;
    log.info(`model host starting (pid ${child.pid}, ${modulePath})`);
    const pipeLines = (stream: NodeJS.ReadableStream | null, level: 'info' | 'warn') => {
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        for (const line of chunk.split('\n')) if (line.trim()) log[level](`model host: ${line}`);
      });
    };
    pipeLines(child.stdout, 'info');
    pipeLines(child.stderr, 'warn');
    child.on('message', (raw) => this.onMessage(raw));
    child.on('error', (error) => log.error(`model host process error: ${error.message}`));
    child.on('exit', (code, signal) => this.onExit(child, code, signal));
    // Restore the model the previous process had loaded before any queued request runs.
    if (this.lastLoad) {
      const restore = this.lastLoad;
      const restoring = this.sendRequest(child, 'load', restore).then(
        () => log.info(`model host restored model ${restore.modelDir}`),
        (error: Error) =>
          log.error(`model host could not restore ${restore.modelDir}: ${error.message}`),
      );
      this.restoring = restoring;
      void restoring.finally(() => {
        if (this.restoring === restoring) this.restoring = undefined;
      });
    }
    return child;
  }

  private onMessage(raw: unknown): void {
    let message: TypedMessage;
    try {
      message = parseTypedMessage(raw, 'message from model host');
    } catch (error) {
      this.options.log.warn(`dropped model host message: ${(error as Error).message}`);
      return;
    }
    if (message.type === 'response' || message.type === 'log') {
      let parsed;
      try {
        parsed = parseRpcFromModelHost(message);
      } catch (error) {
        this.options.log.warn(`dropped model host message: ${(error as Error).message}`);
        return;
      }
      if (parsed.type === 'log') {
        const level = parsed.level === 'trace' ? 'debug' : parsed.level;
        this.options.log[level](`[model-host:${parsed.component}] ${parsed.message}`);
        return;
      }
      // A response to a request we already gave up on (cancelled) is expected and ignored.
      const pending = this.settle(parsed.id);
      if (!pending) return;
      if (parsed.ok) pending.resolve(parsed.result);
      else pending.reject(new ModelHostError(parsed.error.name, parsed.error.message));
      return;
    }
    const listeners = this.listeners.get(message.type);
    if (!listeners || listeners.size === 0) {
      this.options.log.debug(`model host message of type "${message.type}" has no listener`);
      return;
    }
    for (const listener of listeners) listener(message);
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    this.child = undefined;
    this.restoring = undefined;
    if (this.disposed) return;
    const how = signal ? `signal ${signal}` : `code ${code}`;
    const lost = [...this.pending.values()].map((p) => p.method);
    this.rejectAll(
      new ModelHostError(
        'ModelHostCrashedError',
        `model host exited with ${how}` + (lost.length ? ` while serving ${lost.join(', ')}` : ''),
      ),
    );
    const now = Date.now();
    const windowMs = this.options.crashWindowMs ?? 60_000;
    const maxCrashes = this.options.maxCrashes ?? 3;
    this.crashTimes.push(now);
    while (this.crashTimes.length && this.crashTimes[0] < now - windowMs) this.crashTimes.shift();
    if (this.crashTimes.length >= maxCrashes) {
      this.gaveUp =
        `model host crashed ${this.crashTimes.length} times within ${windowMs / 1000} s ` +
        `(last: ${how}); not restarting. Select a model again or reload the window to retry.`;
      this.options.log.error(this.gaveUp);
      return;
    }
    this.options.log.warn(`model host exited unexpectedly (${how}); restarting it`);
    try {
      this.ensureStarted();
    } catch (error) {
      this.options.log.error(`model host restart failed: ${(error as Error).message}`);
    }
  }

  private settle(id: number): Pending | undefined {
    const pending = this.pending.get(id);
    if (!pending) return undefined;
    this.pending.delete(id);
    pending.cleanup();
    return pending;
  }

  private rejectAll(error: Error): void {
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(error);
  }
}
