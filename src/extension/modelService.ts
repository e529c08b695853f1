/**
 * The active model as the extension sees it: which folder, whether the model host has loaded
 * it, and generation through the model host. Loading starts as soon as the folder is known so
 * the first comparison does not pay for it.
 */
import type { CompletionRequest } from '../protocol/generation';
import type { CheckAdapterResult } from '../protocol/modelHost';
import type { GenerationResult } from './compareController';
import type { Logger } from './log';
import type { ModelHostClient } from './modelHostClient';
import { modelFolderProblems } from './modelFolder';

export type ModelState =
  | { kind: 'loading'; dir: string }
  | { kind: 'ready'; dir: string; model: string }
  | { kind: 'error'; dir: string; message: string };

/** A LoRA adapter applied on top of the model; null means the base model. */
export interface ActiveAdapter {
  /** Name shown in the status bar and stored in records (e.g. the training run's folder). */
  name: string;
  /** Adapter folder in PEFT format, sent to the model host with every request. */
  path: string;
}

/**
 * The model an adapter was to be checked against cannot be used (none selected, another one in
 * use, or it failed to load): the adapter itself was not checked.
 */
export class ModelUnavailableError extends Error {
  override name = 'ModelUnavailableError';
}

export class ModelService {
  private state: ModelState | undefined;
  private activeAdapter: ActiveAdapter | null = null;
  private loading: Promise<string> | undefined;
  private readonly listeners: Array<(state: ModelState) => void> = [];

  constructor(
    private readonly client: ModelHostClient,
    private readonly log: Logger,
  ) {}

  get current(): ModelState | undefined {
    return this.state;
  }

  get adapter(): ActiveAdapter | null {
    return this.activeAdapter;
  }

  /** Switches the adapter used for completions (the trainer promotes one after training). */
  setAdapter(adapter: ActiveAdapter | null): void {
    this.activeAdapter = adapter;
    if (this.state) this.setState(this.state);
  }

  onDidChange(listener: (state: ModelState) => void): void {
    this.listeners.push(listener);
  }

  /** Switches to `dir` (absolute). Resolves with the model name; rejects with the reason. */
  use(dir: string): Promise<string> {
    if (this.state && this.state.dir === dir && this.state.kind !== 'error' && this.loading) {
      return this.loading;
    }
    this.client.resetCrashCount();
    this.setState({ kind: 'loading', dir });
    const problems = modelFolderProblems(dir);
    const loading =
      problems.length > 0
        ? Promise.reject(new Error(`cannot use model folder: ${problems.join('; ')}`))
        : this.client.request('load', { modelDir: dir }).then((r) => r.model);
    this.loading = loading;
    loading.then(
      (model) => {
        if (this.loading !== loading) return;
        this.setState({ kind: 'ready', dir, model });
      },
      (error: Error) => {
        if (this.loading !== loading) return;
        this.log.error(`model ${dir} could not be loaded: ${error.message}`);
        this.setState({ kind: 'error', dir, message: error.message });
      },
    );
    return loading;
  }

  /** Generates with the current model and the active adapter, waiting for loading. */
  generate(request: CompletionRequest, signal: AbortSignal): Promise<GenerationResult> {
    return this.generateWith(request, this.activeAdapter, signal);
  }

  /**
   * Generates with the current model and the given adapter (null: the base model, adapter off),
   * whatever adapter is active; the blind A/B comparison asks for both sides this way.
   */
  async generateWith(
    request: CompletionRequest,
    adapter: ActiveAdapter | null,
    signal: AbortSignal,
  ): Promise<GenerationResult> {
    if (!this.loading || !this.state) throw new Error('no model selected; run "Select model"');
    if (this.state.kind === 'error') {
      // Try again: the folder may have been fixed, or the host crashed earlier.
      void this.use(this.state.dir);
    }
    await this.loading;
    return this.client.request(
      'complete',
      adapter ? { ...request, adapterPath: adapter.path } : request,
      signal,
    );
  }

  /**
   * Has the model host read the adapter folder over `modelDir` (the model in use, once loaded),
   * as completions would. Rejects with the reason it does not fit, or with a
   * ModelUnavailableError when another model is in use or this one failed to load.
   */
  async checkAdapter(adapterPath: string, modelDir: string): Promise<CheckAdapterResult> {
    if (!this.loading || !this.state) {
      throw new ModelUnavailableError('no model selected; run "Select model"');
    }
    if (this.state.dir !== modelDir) {
      throw new ModelUnavailableError(`the model in use is ${this.state.dir}, not ${modelDir}`);
    }
    try {
      await this.loading;
    } catch (error) {
      throw new ModelUnavailableError(
        `the model ${modelDir} failed to load: ${(error as Error).message}`,
      );
    }
    try {
      return await this.client.request('checkAdapter', { modelDir, adapterPath });
    } catch (error) {
      // The model host has another model (or none) loaded: the model was switched while the
      // request travelled. Not the adapter's fault.
      if ((error as Error).name === 'NoModelLoadedError') {
        throw new ModelUnavailableError((error as Error).message);
      }
      throw error;
    }
  }

  private setState(state: ModelState): void {
    this.state = state;
    for (const listener of this.listeners) listener(state);
  }
}
