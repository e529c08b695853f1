/**
 * Blind A/B judgments of a tuned adapter against the base model: what each judgment says about
 * the two policies, and the running score for one adapter with a 95% Wilson interval.
 */
import type { JudgmentRecord, PreferenceRecord } from '../protocol/records';
import { winRate, type WinRate } from './winRate';

/**
 * Which policy a blind A/B judgment preferred.
 * - `tuned` / `base`: that side's completion was picked, or ranked strictly above the other.
 * - `tie`: "all equal" (T), a ranking with both in one group, or "none good" (N): both bad,
 *   counted as a tie the way Chatbot Arena counts "both are bad".
 * - `no-preference`: skipped, or a ranking that left one side out; not counted.
 */
export type BlindAbOutcome = 'tuned' | 'base' | 'tie' | 'no-preference';

/** Whether `record` is a blind A/B evaluation (never training data). */
export function isEvaluationRecord(record: PreferenceRecord): boolean {
  return record.type === 'judgment' && record.evaluation !== undefined;
}

/** The outcome of one blind A/B record; undefined when the record is not a blind A/B one. */
export function blindAbOutcome(record: JudgmentRecord): BlindAbOutcome | undefined {
  const evaluation = record.evaluation;
  if (evaluation?.kind !== 'blind-ab') return undefined;
  const { baseCandidate: base, tunedCandidate: tuned } = evaluation;
  const judgment = record.judgment;
  switch (judgment.kind) {
    case 'pick':
      if (judgment.best === tuned) return 'tuned';
      if (judgment.best === base) return 'base';
      return 'no-preference';
    case 'ranking': {
      const level = (id: string) => judgment.groups.findIndex((group) => group.includes(id));
      const t = level(tuned);
      const b = level(base);
      if (t < 0 || b < 0) return 'no-preference';
      if (t === b) return 'tie';
      return t < b ? 'tuned' : 'base';
    }
    case 'none-good':
      return 'tie';
    case 'skipped':
      return 'no-preference';
  }
}

/** The score of one adapter against the base so far. */
export interface BlindAbScore extends WinRate {
  /** Adapter folder the score is for. */
  adapterPath: string;
  /** Name of the adapter in its latest record (names can be reused; the path identifies it). */
  adapterName: string | null;
  /** Skipped blind judgments of this adapter: stored, not counted. */
  skipped: number;
}

/**
 * Tallies every blind A/B record of the adapter at `adapterPath`: wins of the tuned adapter,
 * wins of the base, ties (half a win each), and the tuned win rate with its 95% Wilson interval.
 * A record stored twice under one id counts once.
 */
export function blindAbScore(
  records: readonly PreferenceRecord[],
  adapterPath: string,
): BlindAbScore {
  let tunedWins = 0;
  let baseWins = 0;
  let ties = 0;
  let skipped = 0;
  let adapterName: string | null = null;
  const seen = new Set<string>();
  for (const record of records) {
    if (record.type !== 'judgment' || record.evaluation?.adapter.path !== adapterPath) continue;
    if (seen.has(record.id)) continue;
    seen.add(record.id);
    adapterName = record.evaluation.adapter.name;
    const outcome = blindAbOutcome(record);
    if (outcome === 'tuned') tunedWins++;
    else if (outcome === 'base') baseWins++;
    else if (outcome === 'tie') ties++;
    else skipped++;
  }
  return { ...winRate(tunedWins, baseWins, ties), adapterPath, adapterName, skipped };
}
