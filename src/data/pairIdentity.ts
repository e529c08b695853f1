/**
 * Content identity of preference pairs (TRL) and of good/bad labels (KTO), for imports from
 * formats that carry no record ids: an export of a store in either format, imported into the
 * same store again, must be recognised as already stored even though its records get new ids.
 */
import { createHash } from 'crypto';
import { promises as fsp } from 'fs';
import type {
  CandidateShown,
  ChatMessage,
  PreferenceRecord,
  PromptSnapshot,
} from '../protocol/records';
import { isEvaluationRecord } from './blindAb';
import { importRecords } from './formats';
import type { ImportIssue, ImportResult } from './formats/importResult';
import { ktoLabels } from './formats/kto';
import { expandJudgment } from './pairs';
import { redactRecord } from './redact';

/** The messages of one side as the TRL export writes them (plain text: one assistant turn). */
function sideMessages(candidate: CandidateShown): ChatMessage[] {
  const messages = candidate.messages ?? [{ role: 'assistant', content: candidate.text }];
  return messages.map((m) => ({ role: m.role, content: m.content }));
}

/**
 * Identity of "chosen was preferred to rejected after this prompt", made of what a TRL line
 * holds: the text before and after the cursor and the two completions, or for a conversational
 * record the prompt messages and each side's messages. Ids, annotator, models, positions,
 * margins and timing are not part of it: TRL drops them, so they cannot tell a re-import from
 * the record it was exported from.
 */
export function pairIdentity(
  prompt: PromptSnapshot,
  chosen: CandidateShown,
  rejected: CandidateShown,
): string {
  const content = prompt.messages
    ? [
        'messages',
        prompt.messages.map((m) => ({ role: m.role, content: m.content })),
        sideMessages(chosen),
        sideMessages(rejected),
      ]
    : ['text', prompt.prefix, prompt.suffix, chosen.text, rejected.text];
  return createHash('sha256').update(JSON.stringify(content)).digest('hex');
}

/**
 * Identity of "this candidate after this prompt is good (or bad)", made of what a KTO line
 * holds: the text before and after the cursor and the completion, or for a conversational
 * record the prompt messages and the completion's messages, and the label. As for pairs, ids,
 * annotator, models and timing are not part of it (KTO drops them).
 */
export function labelIdentity(
  prompt: PromptSnapshot,
  candidate: CandidateShown,
  good: boolean,
): string {
  const content = prompt.messages
    ? [
        'messages',
        prompt.messages.map((m) => ({ role: m.role, content: m.content })),
        sideMessages(candidate),
        good,
      ]
    : ['text', prompt.prefix, prompt.suffix, candidate.text, good];
  return createHash('sha256').update(JSON.stringify(content)).digest('hex');
}

/** Content identities of a record's units: its TRL lines (pairs) or its KTO lines (labels). */
type UnitsOf = (record: PreferenceRecord) => string[];

const recordPairs: UnitsOf = (record) => {
  if (record.type !== 'judgment') return [];
  return expandJudgment(record).pairs.map((p) => pairIdentity(p.prompt, p.chosen, p.rejected));
};

/**
 * The labels a default KTO export writes for the record. An ignored inline suggestion has
 * none: only `--ignored-as-bad` exports it (as bad), and the store holds it as ignored, not
 * rejected, so an imported bad label for it is kept as new data.
 */
const recordLabels: UnitsOf = (record) =>
  ktoLabels(record).labels.map((l) => labelIdentity(l.prompt, l.candidate, l.good));

function storedCounts(records: Iterable<PreferenceRecord>, unitsOf: UnitsOf): Map<string, number> {
  const counts = new Map<string, number>();
  for (const record of records) {
    if (isEvaluationRecord(record)) continue;
    for (const key of unitsOf(record)) counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/**
 * How often each pair identity occurs in `records`, counting the pairs each judgment expands
 * to (the lines a TRL export writes). Blind A/B judgments are left out: no export writes them
 * as training data, so an imported pair that matches one is new training data.
 */
export function storedPairCounts(records: Iterable<PreferenceRecord>): Map<string, number> {
  return storedCounts(records, recordPairs);
}

/**
 * How often each label identity occurs in `records`, counting the labels each record exports
 * as (the lines a KTO export writes); blind A/B judgments are left out, as for pairs.
 */
export function storedLabelCounts(records: Iterable<PreferenceRecord>): Map<string, number> {
  return storedCounts(records, recordLabels);
}

function alreadyStored(
  imported: readonly PreferenceRecord[],
  counts: Map<string, number>,
  unitsOf: UnitsOf,
): Set<number> {
  const present = new Set<number>();
  imported.forEach((record, i) => {
    const keys = unitsOf(record);
    if (keys.length === 0) return;
    const needed = new Map<string, number>();
    for (const key of keys) needed.set(key, (needed.get(key) ?? 0) + 1);
    for (const [key, n] of needed) if ((counts.get(key) ?? 0) < n) return;
    for (const [key, n] of needed) counts.set(key, counts.get(key)! - n);
    present.add(i);
  });
  return present;
}

/**
 * Indexes of the `imported` records whose preference the store already holds, given the
 * store's `storedPairCounts`. Counts are matched as multisets: a pair stored once matches one
 * imported record, so a file that repeats a pair (two annotators agreeing) keeps both votes on
 * its first import, and importing it again adds nothing. A record counts as present only when
 * it has pairs and every one of them is still unmatched in the store; records without pairs
 * (ties, "none good", implicit signals) are never matched by content. `counts` is consumed.
 */
export function alreadyStoredPairs(
  imported: readonly PreferenceRecord[],
  counts: Map<string, number>,
): Set<number> {
  return alreadyStored(imported, counts, recordPairs);
}

/**
 * Indexes of the `imported` records (one label each, as the KTO importer makes them) whose
 * label the store already holds, given the store's `storedLabelCounts`; matched as multisets,
 * as pairs are. `counts` is consumed.
 */
export function alreadyStoredLabels(
  imported: readonly PreferenceRecord[],
  counts: Map<string, number>,
): Set<number> {
  return alreadyStored(imported, counts, recordLabels);
}

/** What {@link dropStoredContent} did. */
export interface StoredContentCheck {
  /** Records removed from the import because the store holds their pair or label. */
  removed: number;
  /**
   * Lines of the store that could not be read (a newer schema version, damage): their pairs or
   * labels are unknown, so nothing was removed and the caller must not append (see below).
   */
  unreadable: ImportIssue[];
}

/**
 * Removes from `result` the records of a TRL or KTO import whose pair or label the store file
 * at `storePath` already holds (see {@link alreadyStoredPairs}, {@link alreadyStoredLabels})
 * and says how many it removed; other formats carry ids and are left alone (the store skips a
 * stored id, even on a line it cannot otherwise read), and a missing store holds nothing.
 * Incoming records are compared as the store would write them (redacted).
 *
 * When some store lines cannot be read, the check is incomplete: a pair or label held only on
 * such a line would be appended again, and TRL and KTO records get new ids, so the duplicate
 * could never be told apart afterwards. Then nothing is removed and the lines are returned in
 * `unreadable`: the CLI refuses the import (the store stays as it is) rather than append
 * possible duplicates; fixing or moving those lines and importing again loses nothing.
 */
export async function dropStoredContent(
  result: ImportResult,
  storePath: string,
): Promise<StoredContentCheck> {
  const unitsOf =
    result.format === 'trl' ? recordPairs : result.format === 'kto' ? recordLabels : null;
  if (unitsOf === null) return { removed: 0, unreadable: [] };
  const exists = await fsp
    .stat(storePath)
    .then((s) => s.isFile())
    .catch(() => false);
  if (!exists || result.records.length === 0) return { removed: 0, unreadable: [] };
  const stored = await importRecords(storePath);
  if (stored.rejected.length > 0) return { removed: 0, unreadable: stored.rejected };
  const counts = storedCounts(stored.records, unitsOf);
  const present = alreadyStored(result.records.map(redactRecord), counts, unitsOf);
  if (present.size === 0) return { removed: 0, unreadable: [] };
  const lines = result.recordLines?.length === result.records.length ? result.recordLines : null;
  result.records = result.records.filter((_, i) => !present.has(i));
  if (lines) result.recordLines = lines.filter((_, i) => !present.has(i));
  return { removed: present.size, unreadable: [] };
}
