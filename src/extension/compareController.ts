/**
 * The comparison flow without `vscode`: generate K candidates for an editor snapshot, show
 * them, take the judgment, record it, insert the chosen text and give focus back.
 *
 * Candidates belong to the document version they were generated from. A request overtaken by
 * typing (or by a newer comparison) is aborted, and if the generator still returns, its
 * candidates are dropped: never shown, never persisted, never recorded.
 */
import { blindAbOutcome, type BlindAbOutcome } from '../data/blindAb';
import type { CompletionRequest, GeneratedCandidate } from '../protocol/generation';
import type { AdapterRef, JudgmentRecord, PreferenceRecord } from '../protocol/records';
import type { HostToCompare, ViewJudgment } from '../protocol/webviewMessages';
import {
  blindJudgmentRecord,
  buildBlindComparison,
  generateBlindPair,
  revealText,
  scoreMessage,
  type GenerateWith,
} from './blindCompare';
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
  /** Generates with the active policy (the active adapter, or the base model). */
  generate(request: CompletionRequest, signal: AbortSignal): Promise<GenerationResult>;
  /** Generates with the given adapter, or the base model (null), whatever is active. */
  generateWith: GenerateWith;
  /** The active adapter, or null for the base model. */
  adapter(): AdapterRef | null;
  /** Every record of a store (for the blind A/B score); [] when the store has no file yet. */
  readRecords(storePath: string): Promise<PreferenceRecord[]>;
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

/** What generation produced: a comparison to show, a reason not to, or dropped candidates. */
type Produced =
  { pending: PendingComparison; latencyMs: number } | { problem: string } | { dropped: number };

const NO_ADAPTER =
  'Blind A/B needs a tuned adapter, and none is active: completions use the base model. ' +
  'Run "Code RLHF: Train on my judgments" (a promoted adapter becomes active), then try again.';

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
  compare(snapshot: EditorSnapshot): Promise<PendingComparison | undefined> {
    const { deps } = this;
    const count = deps.settings().candidateCount;
    return this.run(snapshot, `Generating ${count} candidates…`, async (signal, isCurrent) => {
      const request: CompletionRequest = {
        prefix: snapshot.prefix,
        suffix: snapshot.suffix,
        count,
        ...COMPARE_SAMPLING,
        seed: Math.floor(deps.random() * 2 ** 31),
      };
      const started = deps.now();
      let result = await deps.generate(request, signal);
      let candidates = result.candidates;
      // Identical samples are one option (shown once). Only when nothing is left to compare,
      // ask once more with another seed; fewer than K distinct is shown as it is.
      if (isCurrent() && new Set(candidates.map((c) => c.text)).size < 2) {
        const more = await deps.generate({ ...request, seed: request.seed + 1 }, signal);
        candidates = [...candidates, ...more.candidates];
        result = { ...more, candidates };
      }
      const generationMs = deps.now() - started;
      if (!isCurrent()) return { dropped: candidates.length };
      const pending = buildComparison(
        deps.newId(),
        snapshot,
        candidates,
        {
          model: result.model,
          adapter: deps.adapter()?.name ?? null,
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
        return {
          problem:
            'The model produced only one distinct completion here; there is nothing to compare.',
        };
      }
      return { pending, latencyMs: result.latencyMs };
    });
  }

  /**
   * Runs one blind A/B comparison for `snapshot`: one completion from the base model and one
   * from the active adapter, unlabeled, in random order. Without an active adapter it says so
   * and generates nothing (comparing the base with itself would measure nothing).
   */
  compareBlind(snapshot: EditorSnapshot): Promise<PendingComparison | undefined> {
    const { deps } = this;
    const adapter = deps.adapter();
    if (!adapter) {
      this.cancel('a blind A/B comparison was requested');
      deps.revealPanel();
      this.status(NO_ADAPTER, false);
      deps.log.info('blind A/B comparison not started: no tuned adapter is active');
      return Promise.resolve(undefined);
    }
    const busy = `Blind A/B: generating one completion from the base model and one from the tuned adapter…`;
    return this.run(snapshot, busy, async (signal, isCurrent) => {
      const started = deps.now();
      const request = { prefix: snapshot.prefix, suffix: snapshot.suffix, ...COMPARE_SAMPLING };
      const pair = await generateBlindPair(
        deps.generateWith,
        request,
        adapter,
        deps.random,
        signal,
      );
      if (!isCurrent()) return { dropped: 'identical' in pair ? 1 : 2 };
      if ('identical' in pair) {
        return {
          problem:
            'Blind A/B: the base model and the tuned adapter gave the same completion here ' +
            '(twice), so there is nothing to judge; nothing was recorded or counted.',
        };
      }
      const { temperature, topK, topP, maxNewTokens } = COMPARE_SAMPLING;
      const pending = buildBlindComparison(
        deps.newId(),
        snapshot,
        pair,
        adapter,
        { temperature, topK, topP, maxNewTokens },
        deps.now() - started,
        deps.random,
      );
      return { pending, latencyMs: deps.now() - started };
    });
  }

  /**
   * The flow shared by both kinds: one request at a time (a newer one cancels the older), the
   * panel revealed with a busy status, candidates dropped when the document changed meanwhile,
   * the comparison persisted for a window reload and shown.
   */
  private async run(
    snapshot: EditorSnapshot,
    busy: string,
    produce: (signal: AbortSignal, isCurrent: () => boolean) => Promise<Produced>,
  ): Promise<PendingComparison | undefined> {
    const { deps } = this;
    this.cancel('a newer comparison was requested');
    const inFlight: InFlight = { snapshot, controller: new AbortController() };
    this.inFlight = inFlight;
    deps.revealPanel();
    this.status(busy, true);
    try {
      const produced = await produce(inFlight.controller.signal, () => this.isCurrent(inFlight));
      if ('dropped' in produced || !this.isCurrent(inFlight)) {
        const count = 'dropped' in produced ? `${produced.dropped} ` : '';
        deps.log.info(
          `dropped ${count}candidates generated for ${snapshot.uri} ` +
            `v${snapshot.version}: ${inFlight.reason ?? 'the document changed'}`,
        );
        return undefined;
      }
      if ('problem' in produced) {
        this.status(produced.problem, false);
        deps.log.info(
          `nothing to compare at ${snapshot.file ?? snapshot.uri}: ${produced.problem}`,
        );
        return undefined;
      }
      const { pending } = produced;
      // Persisted for a window reload; written in the background, shown at once.
      deps.pending
        .put(pending)
        .catch((error: Error) =>
          deps.log.warn(`could not persist comparison ${pending.id}: ${error.message}`),
        );
      this.show(pending);
      deps.log.info(
        `${pending.blindAb ? 'blind A/B comparison' : 'comparison'} ${pending.id}: ` +
          `${pending.candidates.length} candidates for ` +
          `${snapshot.file ?? snapshot.uri} v${snapshot.version}: generation ` +
          `${pending.generationMs.toFixed(0)} ms (model host ${produced.latencyMs.toFixed(0)} ms), ` +
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
      if (pending.blindAb) void this.postScore(pending);
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
    let outcome: BlindAbOutcome | undefined;
    if (deps.isExcluded(pending.snapshot)) {
      summary = 'Not recorded: this file matches codeRlhf.excludeGlobs.';
      deps.log.info(`judgment for ${comparisonId} not recorded: file excluded`);
    } else {
      try {
        const context = { annotator: deps.annotator(), decidedAt };
        const record = pending.blindAb
          ? blindJudgmentRecord(pending, judgment, context)
          : judgmentRecord(pending, judgment, context);
        const { written } = await deps.record(record, pending.snapshot);
        this.recorded.push(comparisonId);
        summary = `Recorded (${describe(judgment.kind)}).`;
        outcome = blindAbOutcome(record);
        if (outcome) summary += ` ${revealText(pending, outcome)}`;
        deps.log.info(
          `${pending.blindAb ? 'blind A/B judgment' : 'judgment'} ${comparisonId} ` +
            `${written ? 'recorded' : 'was already stored'}: ` +
            `${judgment.kind}${outcome ? ` (${outcome})` : ''}, ` +
            `decided in ${record.decisionMs ?? '?'} ms`,
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
    if (pending.blindAb) await this.postScore(pending, outcome);
    await deps.focusEditor(pending.snapshot);
  }

  /**
   * Sends the adapter's blind A/B score, recomputed from the stored records (so it survives
   * reloads and counts judgments from other windows), to the panel and the log.
   */
  private async postScore(pending: PendingComparison, lastOutcome?: BlindAbOutcome) {
    const { deps } = this;
    if (!pending.blindAb) return;
    const message = await scoreMessage(
      () => deps.readRecords(pending.snapshot.storePath),
      pending.blindAb.adapter,
      deps.log,
      lastOutcome,
    );
    deps.channel.drop((m) => m.type === 'blindScore' || m.type === 'blindScoreError');
    deps.channel.post(message);
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
