/**
 * The comparison flow without `vscode`: generate K candidates for an editor snapshot, show
 * them, take the judgment, record it, insert the chosen text and give focus back.
 *
 * Candidates belong to the document version they were generated from. A request overtaken by
 * typing (or by a newer comparison) is aborted, and if the generator still returns, its
 * candidates are dropped: never shown, never persisted, never recorded.
 */
import type { CompletionRequest, GeneratedCandidate } from '../generation/api';
import type { JudgmentRecord } from '../protocol/records';
import type { HostToCompare, ViewJudgment } from '../protocol/webviewMessages';
import {
  buildComparison,
  chosenText,
  comparisonView,
  judgmentRecord,
  toJudgment,
  type EditorSnapshot,
  type PendingComparison,
} from './comparison';
import { COMPARE_SAMPLING, type Settings } from './config';
import type { Logger } from './log';
import type { PendingComparisons } from './pendingComparisons';
import type { WebviewChannel } from './webviewChannel';

export interface GenerationResult {
  candidates: GeneratedCandidate[];
  latencyMs: number;
  model: string;
}

export interface CompareDeps {
  generate(request: CompletionRequest, signal: AbortSignal): Promise<GenerationResult>;
  /** Active adapter name, or null for the base model. */
  adapter(): string | null;
  settings(): Settings;
  /** Current version of a document, or undefined when it is closed. */
  documentVersion(uri: string): number | undefined;
  /** Whether the snapshot's file is excluded from collection (`codeRlhf.excludeGlobs`). */
  isExcluded(snapshot: EditorSnapshot): boolean;
  channel: WebviewChannel<HostToCompare>;
  /** Opens (or reveals) the comparison panel beside the editor. */
  revealPanel(): void;
  pending: PendingComparisons;
  /** Appends the record to the snapshot's store; resolves once it is on disk. */
  record(record: JudgmentRecord, snapshot: EditorSnapshot): Promise<{ written: boolean }>;
  /** Inserts `text` at the snapshot's cursor if the document is still at its version. */
  insert(snapshot: EditorSnapshot, text: string): Promise<boolean>;
  focusEditor(snapshot: EditorSnapshot): Promise<void>;
  annotator(): string;
  log: Logger;
  now(): number;
  random(): number;
  newId(): string;
}

/** Timing of one comparison, for the log and `npm run bench:ui`. */
export interface CompareTiming {
  comparisonId: string;
  /** Command to candidates visible in the webview, ms. */
  commandToVisibleMs: number;
  generationMs: number;
  candidates: number;
}

interface InFlight {
  snapshot: EditorSnapshot;
  controller: AbortController;
  reason?: string;
}

export class CompareController {
  private inFlight: InFlight | undefined;
  /** Id of the comparison last sent to the panel. */
  private shownId: string | undefined;
  /** Comparisons whose judgment is being recorded or was recorded in this session. */
  private readonly judged = new Set<string>();
  private readonly timingListeners: Array<(timing: CompareTiming) => void> = [];
  /** Comparisons recorded, in order (for the end-to-end tests). */
  readonly recorded: string[] = [];

  constructor(private readonly deps: CompareDeps) {}

  /** True while a generation request for a comparison is running. */
  get generating(): boolean {
    return this.inFlight !== undefined;
  }

  onTiming(listener: (timing: CompareTiming) => void): void {
    this.timingListeners.push(listener);
  }

  /** Runs one comparison for `snapshot`. Resolves once it is shown, dropped or failed. */
  async compare(snapshot: EditorSnapshot): Promise<PendingComparison | undefined> {
    const { deps } = this;
    this.cancel('a newer comparison was requested');
    const inFlight: InFlight = { snapshot, controller: new AbortController() };
    this.inFlight = inFlight;
    const settings = deps.settings();
    const count = settings.candidateCount;
    deps.revealPanel();
    this.status(`Generating ${count} candidates…`, true);
    const request: CompletionRequest = {
      prefix: snapshot.prefix,
      suffix: snapshot.suffix,
      count,
      ...COMPARE_SAMPLING,
      seed: Math.floor(deps.random() * 2 ** 31),
    };
    try {
      const started = deps.now();
      let result = await deps.generate(request, inFlight.controller.signal);
      let candidates = result.candidates;
      // Identical samples are one option (shown once). Only when nothing is left to compare,
      // ask once more with another seed; fewer than K distinct is shown as it is.
      if (this.isCurrent(inFlight) && new Set(candidates.map((c) => c.text)).size < 2) {
        const more = await deps.generate(
          { ...request, seed: request.seed + 1 },
          inFlight.controller.signal,
        );
        candidates = [...candidates, ...more.candidates];
        result = { ...more, candidates };
      }
      const generationMs = deps.now() - started;
      if (!this.isCurrent(inFlight)) {
        deps.log.info(
          `dropped ${candidates.length} candidates generated for ${snapshot.uri} ` +
            `v${snapshot.version}: ${inFlight.reason ?? 'the document changed'}`,
        );
        return undefined;
      }
      const pending = buildComparison(
        deps.newId(),
        snapshot,
        candidates,
        {
          model: result.model,
          adapter: deps.adapter(),
          sampling: {
            temperature: request.temperature,
            topK: request.topK,
            topP: request.topP,
            seed: request.seed,
            maxNewTokens: request.maxNewTokens,
          },
        },
        generationMs,
        count,
        deps.random,
      );
      if (pending.candidates.length < 2) {
        this.status(
          'The model produced only one distinct completion here; there is nothing to compare.',
          false,
        );
        return undefined;
      }
      // Persisted for a window reload; written in the background, shown at once.
      deps.pending
        .put(pending)
        .catch((error: Error) =>
          deps.log.warn(`could not persist comparison ${pending.id}: ${error.message}`),
        );
      this.show(pending);
      deps.log.info(
        `comparison ${pending.id}: ${pending.candidates.length} candidates for ` +
          `${snapshot.file ?? snapshot.uri} v${snapshot.version}: generation ` +
          `${generationMs.toFixed(0)} ms (model host ${result.latencyMs.toFixed(0)} ms), ` +
          `${(deps.now() - snapshot.requestedAt).toFixed(0)} ms since the command`,
      );
      return pending;
    } catch (error) {
      const err = error as Error;
      if (err.name === 'AbortError' || inFlight.controller.signal.aborted) {
        deps.log.info(`comparison request cancelled: ${inFlight.reason ?? err.message}`);
        if (this.inFlight === inFlight)
          this.status(`Cancelled: ${inFlight.reason ?? 'stopped'}.`, false);
        return undefined;
      }
      deps.log.error(`comparison failed: ${err.message}`);
      this.status(`Could not generate candidates: ${err.message}`, false);
      return undefined;
    } finally {
      if (this.inFlight === inFlight) this.inFlight = undefined;
    }
  }

  /** A document changed: a request made from an older version of it is cancelled. */
  onDocumentChanged(uri: string, version: number): void {
    const inFlight = this.inFlight;
    if (inFlight && inFlight.snapshot.uri === uri && inFlight.snapshot.version !== version) {
      this.cancel(
        `the document changed while generating (v${inFlight.snapshot.version} -> v${version})`,
      );
    }
  }

  /** Cancels the running request, if any; its candidates will never be shown. */
  cancel(reason: string): void {
    const inFlight = this.inFlight;
    if (!inFlight) return;
    inFlight.reason = reason;
    inFlight.controller.abort();
    this.inFlight = undefined;
  }

  /** The user closed the panel: the comparison on it is abandoned (no record) and forgotten. */
  onPanelClosed(): void {
    const id = this.shownId;
    this.shownId = undefined;
    this.deps.channel.setReplay(undefined);
    if (id === undefined || this.judged.has(id)) return;
    this.deps.log.info(`comparison ${id} abandoned: the panel was closed`);
    this.deps.pending
      .delete(id)
      .catch((error: Error) =>
        this.deps.log.warn(`could not forget comparison ${id}: ${error.message}`),
      );
  }

  /**
   * The comparison to bring back after a window reload when VS Code did not restore the panel
   * itself: the latest one that was on screen, unjudged, and recent.
   */
  unfinished(maxAgeMs: number): PendingComparison | undefined {
    const latest = this.deps.pending.latest();
    if (!latest || latest.shownAt === null || this.judged.has(latest.id)) return undefined;
    return this.deps.now() - latest.shownAt <= maxAgeMs ? latest : undefined;
  }

  /** A revived or re-shown panel: show the comparison it had (or the latest pending one). */
  restore(comparisonId: string | undefined): PendingComparison | undefined {
    const pending =
      (comparisonId !== undefined ? this.deps.pending.get(comparisonId) : undefined) ??
      (comparisonId === undefined ? this.deps.pending.latest() : undefined);
    if (pending && !this.judged.has(pending.id)) {
      this.show(pending);
      this.deps.log.info(`restored comparison ${pending.id} after the panel was recreated`);
      return pending;
    }
    if (comparisonId !== undefined) {
      this.deps.log.info(`comparison ${comparisonId} is no longer pending; nothing to restore`);
    }
    return undefined;
  }

  /** The webview reports the candidates of `comparisonId` on screen. */
  async onRendered(comparisonId: string): Promise<void> {
    const pending = this.deps.pending.get(comparisonId);
    if (!pending || pending.shownAt !== null) return;
    pending.shownAt = this.deps.now();
    await this.deps.pending.put(pending);
    const timing: CompareTiming = {
      comparisonId,
      commandToVisibleMs: pending.shownAt - pending.snapshot.requestedAt,
      generationMs: pending.generationMs,
      candidates: pending.candidates.length,
    };
    this.deps.log.info(
      `comparison ${comparisonId} visible ${timing.commandToVisibleMs.toFixed(0)} ms after the ` +
        `command (generation ${timing.generationMs.toFixed(0)} ms)`,
    );
    for (const listener of this.timingListeners) listener(timing);
  }

  /** The webview sent a judgment. Recorded once per comparison, however often it arrives. */
  async onJudgment(comparisonId: string, view: ViewJudgment): Promise<void> {
    const { deps } = this;
    if (this.judged.has(comparisonId)) {
      deps.log.info(`duplicate judgment for ${comparisonId} ignored`);
      return;
    }
    const pending = deps.pending.get(comparisonId);
    if (!pending) {
      deps.log.warn(`judgment for unknown comparison ${comparisonId} dropped`);
      return;
    }
    let judgment;
    try {
      judgment = toJudgment(pending, view);
    } catch (error) {
      deps.log.warn(`dropped judgment: ${(error as Error).message}`);
      return;
    }
    this.judged.add(comparisonId);
    const decidedAt = deps.now();
    let summary: string;
    if (deps.isExcluded(pending.snapshot)) {
      summary = 'Not recorded: this file matches codeRlhf.excludeGlobs.';
      deps.log.info(`judgment for ${comparisonId} not recorded: file excluded`);
    } else {
      try {
        const record = judgmentRecord(pending, judgment, {
          annotator: deps.annotator(),
          decidedAt,
        });
        const { written } = await deps.record(record, pending.snapshot);
        this.recorded.push(comparisonId);
        summary = `Recorded (${describe(judgment.kind)}).`;
        deps.log.info(
          `judgment ${comparisonId} ${written ? 'recorded' : 'was already stored'}: ` +
            `${judgment.kind}, decided in ${record.decisionMs ?? '?'} ms`,
        );
      } catch (error) {
        // Keep the comparison so the judgment can be given again; nothing is lost.
        this.judged.delete(comparisonId);
        const message = (error as Error).message;
        deps.log.error(`could not record judgment ${comparisonId}: ${message}`);
        this.show(pending);
        this.status(`Could not record the judgment (${message}). Please judge again.`, false);
        return;
      }
    }
    await deps.pending.delete(comparisonId);
    const text = chosenText(pending, judgment);
    if (text !== undefined && deps.settings().insertChosen) {
      const inserted = await deps.insert(pending.snapshot, text);
      if (!inserted) {
        summary += ' The document changed since the comparison, so the text was not inserted.';
      }
    }
    deps.channel.setReplay(undefined);
    deps.channel.drop((m) => m.type === 'comparison' && m.comparison.id === comparisonId);
    deps.channel.post({ type: 'recorded', comparisonId, text: summary });
    await deps.focusEditor(pending.snapshot);
  }

  private isCurrent(inFlight: InFlight): boolean {
    return (
      this.inFlight === inFlight &&
      !inFlight.controller.signal.aborted &&
      this.deps.documentVersion(inFlight.snapshot.uri) === inFlight.snapshot.version
    );
  }

  private show(pending: PendingComparison): void {
    this.shownId = pending.id;
    const message: HostToCompare = { type: 'comparison', comparison: comparisonView(pending) };
    const { channel } = this.deps;
    // A newer comparison supersedes anything not yet delivered.
    channel.drop((m) => m.type === 'comparison' || m.type === 'status');
    channel.setReplay(message);
    channel.post(message);
  }

  private status(text: string, busy: boolean): void {
    const { channel } = this.deps;
    channel.drop((m) => m.type === 'status');
    channel.post({ type: 'status', text, busy });
  }
}

function describe(kind: string): string {
  switch (kind) {
    case 'pick':
      return 'best picked';
    case 'ranking':
      return 'ranking';
    case 'none-good':
      return 'none good';
    default:
      return 'skipped';
  }
}
