/**
 * Blind A/B comparison of the tuned adapter against the base model, without `vscode`: one
 * completion from each policy for the same prompt and sampling settings, shown unlabeled in
 * random order; the record says which candidate came from which policy, and the score of the
 * adapter is recomputed from the store after every judgment.
 */
import { blindAbScore, type BlindAbOutcome, type BlindAbScore } from '../data/blindAb';
import { formatWinRate } from '../data/winRate';
import type { CompletionRequest, GeneratedCandidate } from '../protocol/generation';
import type {
  AdapterRef,
  BlindAbEvaluation,
  CandidateShown,
  Judgment,
  JudgmentRecord,
  PreferenceRecord,
  SamplingSettings,
} from '../protocol/records';
import type { BlindScoreView, HostToCompare } from '../protocol/webviewMessages';
import type { GenerationResult } from './compareController';
import type { Logger } from './log';
import {
  judgmentRecord,
  randomOrder,
  type EditorSnapshot,
  type PendingComparison,
  type RecordContext,
} from './comparison';

/** Candidate ids of the two sides; the webview only ever sees shown positions. */
export const BASE_ID = 'c0';
export const TUNED_ID = 'c1';

/** Generation with an explicit adapter (null: the base model, adapter off). */
export type GenerateWith = (
  request: CompletionRequest,
  adapter: AdapterRef | null,
  signal: AbortSignal,
) => Promise<GenerationResult>;

/** One completion from each policy. */
export interface BlindPair {
  base: GeneratedCandidate;
  tuned: GeneratedCandidate;
  baseSeed: number;
  tunedSeed: number;
  model: string;
}

/**
 * Samples one completion from the base model and one from `adapter`, with the same settings
 * and independent seeds. Two identical texts are no comparison: sample both again once with
 * new seeds; if they are still identical, resolve with `identical` (nothing is shown or
 * counted).
 *
 * Limitation: dropping identical pairs conditions the win rate on the two policies answering
 * differently; on prompts where they agree the adapter is neither better nor worse.
 */
export async function generateBlindPair(
  generateWith: GenerateWith,
  request: Omit<CompletionRequest, 'count' | 'seed'>,
  adapter: AdapterRef,
  random: () => number,
  signal: AbortSignal,
): Promise<BlindPair | { identical: string }> {
  let text = '';
  for (let attempt = 0; attempt < 2; attempt++) {
    const baseSeed = Math.floor(random() * 2 ** 31);
    const tunedSeed = Math.floor(random() * 2 ** 31);
    // The model host answers one request at a time; both are queued at once.
    const [base, tuned] = await Promise.all([
      generateWith({ ...request, count: 1, seed: baseSeed }, null, signal),
      generateWith({ ...request, count: 1, seed: tunedSeed }, adapter, signal),
    ]);
    const b = base.candidates[0];
    const t = tuned.candidates[0];
    if (!b || !t) {
      throw new Error(
        `the model returned ${base.candidates.length} base and ${tuned.candidates.length} ` +
          'tuned candidates; expected 1 each',
      );
    }
    if (b.text !== t.text) return { base: b, tuned: t, baseSeed, tunedSeed, model: base.model };
    text = b.text;
  }
  return { identical: text };
}

/**
 * The pending blind comparison: base is `c0`, tuned is `c1`, shown in a random order (the
 * order is in each candidate's `position` and in the record's `meta.shownOrder`).
 */
export function buildBlindComparison(
  id: string,
  snapshot: EditorSnapshot,
  pair: BlindPair,
  adapter: AdapterRef,
  sampling: Omit<SamplingSettings, 'seed'>,
  generationMs: number,
  random: () => number,
): PendingComparison {
  const sides: CandidateShown[] = [
    candidate(BASE_ID, pair.base, pair.model, null, { ...sampling, seed: pair.baseSeed }),
    candidate(TUNED_ID, pair.tuned, pair.model, adapter.name, {
      ...sampling,
      seed: pair.tunedSeed,
    }),
  ];
  const candidates = randomOrder(2, random).map((side, position) => ({
    ...sides[side],
    position,
  }));
  const blindAb: BlindAbEvaluation = {
    kind: 'blind-ab',
    baseCandidate: BASE_ID,
    tunedCandidate: TUNED_ID,
    adapter: { name: adapter.name, path: adapter.path },
  };
  return { id, snapshot, candidates, generationMs, shownAt: null, blindAb };
}

function candidate(
  id: string,
  generated: GeneratedCandidate,
  model: string,
  adapter: string | null,
  sampling: SamplingSettings,
): CandidateShown {
  return {
    id,
    text: generated.text,
    model,
    adapter,
    sampling,
    logprob: Number.isFinite(generated.logprob) ? generated.logprob : null,
    position: null,
  };
}

/** The stored record of a blind judgment: an ordinary judgment record plus `evaluation`. */
export function blindJudgmentRecord(
  pending: PendingComparison,
  judgment: Judgment,
  context: RecordContext,
): JudgmentRecord {
  if (!pending.blindAb) throw new Error(`comparison ${pending.id} is not a blind A/B comparison`);
  return { ...judgmentRecord(pending, judgment, context), evaluation: { ...pending.blindAb } };
}

/** Shown positions (1-based, as the keys) of the base and tuned candidates. */
export function sidesShown(pending: PendingComparison): { base: number; tuned: number } {
  const at = (id: string) => (pending.candidates.find((c) => c.id === id)?.position ?? -1) + 1;
  return { base: at(BASE_ID), tuned: at(TUNED_ID) };
}

/** What the panel says after a blind judgment was stored: the sides, revealed. */
export function revealText(pending: PendingComparison, outcome: BlindAbOutcome): string {
  const { base, tuned } = sidesShown(pending);
  const name = pending.blindAb?.adapter.name ?? 'the adapter';
  const preferred =
    outcome === 'tuned'
      ? 'You preferred the tuned adapter.'
      : outcome === 'base'
        ? 'You preferred the base model.'
        : outcome === 'tie'
          ? 'Counted as a tie.'
          : 'Not counted (no preference).';
  return `${preferred} Candidate ${tuned} was the tuned adapter (${name}), candidate ${base} the base model.`;
}

/** The score for the panel; NaN (no counted judgment yet) becomes null. */
export function scoreView(
  score: BlindAbScore,
  adapterName: string,
  lastOutcome?: BlindAbOutcome,
): BlindScoreView {
  const finite = (x: number) => (Number.isFinite(x) ? x : null);
  const view: BlindScoreView = {
    adapter: adapterName,
    tunedWins: score.wins,
    baseWins: score.losses,
    ties: score.ties,
    skipped: score.skipped,
    rate: finite(score.rate),
    low: finite(score.low),
    high: finite(score.high),
  };
  if (lastOutcome) view.lastOutcome = lastOutcome;
  return view;
}

/**
 * The panel message with the adapter's score, recomputed from the stored records (so it
 * survives reloads and counts judgments from other windows), or the reason it could not be.
 */
export async function scoreMessage(
  readRecords: () => Promise<PreferenceRecord[]>,
  adapter: AdapterRef,
  log: Logger,
  lastOutcome?: BlindAbOutcome,
): Promise<HostToCompare> {
  try {
    const score = blindAbScore(await readRecords(), adapter.path);
    log.info(
      `blind A/B score of ${adapter.name}: tuned win rate ${formatWinRate(score)}, ` +
        `${score.skipped} skipped`,
    );
    return { type: 'blindScore', score: scoreView(score, adapter.name, lastOutcome) };
  } catch (error) {
    const text = `Could not compute the blind A/B score: ${(error as Error).message}`;
    log.error(text);
    return { type: 'blindScoreError', text };
  }
}
