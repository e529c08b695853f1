/**
 * Inline (ghost-text) completions without `vscode`: debounced, cancellable, tied to the exact
 * document version, and each suggestion shown gets exactly one implicit record, "accepted"
 * (through the item's command) or "ignored" (a newer suggestion replaced it).
 *
 * Limitation: VS Code's stable API does not say when ghost text is actually displayed or
 * partially accepted (word by word); a suggestion returned to VS Code counts as shown, and a
 * partial accept counts as ignored.
 */
import type { CompletionRequest } from '../protocol/generation';
import {
  RECORD_SCHEMA_VERSION,
  type ImplicitOutcome,
  type ImplicitSignalRecord,
} from '../protocol/records';
import type { EditorSnapshot } from './comparison';
import type { GenerationResult } from './compareController';
import { INLINE_DEBOUNCE_MS, INLINE_SAMPLING, type Settings } from './config';
import type { Logger } from './log';

/** The part of vscode.CancellationToken used here. */
export interface CancellationLike {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: () => void): { dispose(): void };
}

export interface InlineDeps {
  generate(request: CompletionRequest, signal: AbortSignal): Promise<GenerationResult>;
  settings(): Settings;
  documentVersion(uri: string): number | undefined;
  isExcluded(snapshot: EditorSnapshot): boolean;
  record(record: ImplicitSignalRecord, snapshot: EditorSnapshot): Promise<unknown>;
  adapter(): string | null;
  annotator(): string;
  log: Logger;
  now(): number;
  newId(): string;
  debounceMs?: number;
}

export interface InlineSuggestion {
  id: string;
  text: string;
}

interface Shown {
  id: string;
  snapshot: EditorSnapshot;
  text: string;
  logprob: number;
  model: string;
  generationMs: number;
  shownAt: number;
}

export class InlineCompletions {
  private shown: Shown | undefined;
  private readonly settled = new Set<string>();
  private running: AbortController | undefined;

  constructor(private readonly deps: InlineDeps) {}

  /** Generates the suggestion for `snapshot`, or undefined if cancelled, stale or empty. */
  async provide(
    snapshot: EditorSnapshot,
    token: CancellationLike,
  ): Promise<InlineSuggestion | undefined> {
    const { deps } = this;
    if (!deps.settings().inlineSuggestions) return undefined;
    if (!(await this.debounce(token))) return undefined;
    const controller = new AbortController();
    this.running?.abort();
    this.running = controller;
    const subscription = token.onCancellationRequested(() => controller.abort());
    const isStale = () =>
      token.isCancellationRequested || deps.documentVersion(snapshot.uri) !== snapshot.version;
    try {
      if (isStale()) return undefined;
      const started = deps.now();
      const result = await deps.generate(
        { prefix: snapshot.prefix, suffix: snapshot.suffix, count: 1, ...INLINE_SAMPLING, seed: 0 },
        controller.signal,
      );
      // Overtaken by typing (or by a comparison) while generating: never shown or recorded.
      if (isStale() || controller.signal.aborted) return undefined;
      const candidate = result.candidates[0];
      if (!candidate || candidate.text.trim().length === 0) return undefined;
      const current = this.shown;
      if (
        current &&
        !this.settled.has(current.id) &&
        current.snapshot.uri === snapshot.uri &&
        current.snapshot.version === snapshot.version &&
        current.snapshot.offset === snapshot.offset &&
        current.text === candidate.text
      ) {
        // VS Code asked again for the same place (a focus or cursor event) and got the same
        // text: it is the suggestion already on screen, so it keeps its id. A new id would
        // record it as ignored, and a Tab on the ghost text VS Code kept showing would then
        // accept an id that is already settled, leaving no "accepted" record.
        return { id: current.id, text: current.text };
      }
      await this.settle('ignored');
      const shown: Shown = {
        id: deps.newId(),
        snapshot,
        text: candidate.text,
        logprob: candidate.logprob,
        model: result.model,
        generationMs: deps.now() - started,
        shownAt: deps.now(),
      };
      this.shown = shown;
      return { id: shown.id, text: shown.text };
    } catch (error) {
      const err = error as Error;
      if (err.name !== 'AbortError' && !controller.signal.aborted) {
        deps.log.warn(`inline completion failed: ${err.message}`);
      }
      return undefined;
    } finally {
      subscription.dispose();
      if (this.running === controller) this.running = undefined;
    }
  }

  /** Aborts the running inline request (a comparison needs the model host now). */
  cancelRunning(): void {
    this.running?.abort();
    this.running = undefined;
  }

  /** The item's command ran: the suggestion `id` was accepted. */
  async accepted(id: string): Promise<void> {
    if (this.shown?.id !== id) {
      this.deps.log.debug(`inline accept for unknown or settled suggestion ${id}`);
      return;
    }
    await this.settle('accepted');
  }

  /** Records the outcome of the suggestion on screen, once. */
  async settle(outcome: ImplicitOutcome): Promise<void> {
    const shown = this.shown;
    if (!shown || this.settled.has(shown.id)) return;
    this.settled.add(shown.id);
    this.shown = undefined;
    const { deps } = this;
    if (deps.isExcluded(shown.snapshot)) return;
    const { snapshot } = shown;
    const record: ImplicitSignalRecord = {
      type: 'implicit',
      v: RECORD_SCHEMA_VERSION,
      id: shown.id,
      timestamp: new Date(deps.now()).toISOString(),
      annotator: deps.annotator(),
      workspace: snapshot.workspace,
      file: snapshot.file,
      language: snapshot.languageId || 'unknown',
      origin: 'vscode-inline',
      prompt: { prefix: snapshot.prefix, suffix: snapshot.suffix },
      redactions: [],
      candidate: {
        id: 'c0',
        text: shown.text,
        model: shown.model,
        adapter: deps.adapter(),
        sampling: {
          temperature: INLINE_SAMPLING.temperature,
          topK: INLINE_SAMPLING.topK,
          topP: INLINE_SAMPLING.topP,
          seed: 0,
          maxNewTokens: INLINE_SAMPLING.maxNewTokens,
        },
        logprob: Number.isFinite(shown.logprob) ? shown.logprob : null,
        position: 0,
      },
      outcome,
      visibleMs: Math.max(0, deps.now() - shown.shownAt),
      generationMs: Math.round(shown.generationMs),
      meta: { documentVersion: snapshot.version },
    };
    try {
      await deps.record(record, snapshot);
      deps.log.debug(`inline suggestion ${shown.id} ${outcome}`);
    } catch (error) {
      deps.log.error(`could not record inline suggestion ${shown.id}: ${(error as Error).message}`);
    }
  }

  /** Waits the debounce delay; false when cancelled meanwhile (the user kept typing). */
  private debounce(token: CancellationLike): Promise<boolean> {
    const ms = this.deps.debounceMs ?? INLINE_DEBOUNCE_MS;
    if (token.isCancellationRequested) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        subscription.dispose();
        resolve(!token.isCancellationRequested);
      }, ms);
      const subscription = token.onCancellationRequested(() => {
        clearTimeout(timer);
        subscription.dispose();
        resolve(false);
      });
    });
  }
}
