/**
 * Content identity of preference pairs, for imports from a format that carries no record ids
 * (TRL): a TRL export of a store, imported into the same store again, must be recognised as
 * already stored even though its records get new ids.
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
import type { ImportResult } from './formats/importResult';
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

function recordPairs(record: PreferenceRecord): string[] {
  if (record.type !== 'judgment') return [];
  return expandJudgment(record).pairs.map((p) => pairIdentity(p.prompt, p.chosen, p.rejected));
}

/**
 * How often each pair identity occurs in `records`, counting the pairs each judgment expands
 * to (the lines a TRL export writes). Blind A/B judgments are left out: no export writes them
 * as training data, so an imported pair that matches one is new training data.
 */
export function storedPairCounts(records: Iterable<PreferenceRecord>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const record of records) {
    if (isEvaluationRecord(record)) continue;
    for (const key of recordPairs(record)) counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
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
  const present = new Set<number>();
  imported.forEach((record, i) => {
    const keys = recordPairs(record);
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
 * Removes from `result` the records whose preference the store file at `storePath` already
 * holds (see {@link alreadyStoredPairs}) and returns how many it removed; a missing store holds
 * nothing. Incoming records are compared as the store would write them (redacted). Lines of
 * the store that do not parse are ignored here (the append reports a broken store).
 */
export async function dropStoredPairs(result: ImportResult, storePath: string): Promise<number> {
  const exists = await fsp
    .stat(storePath)
    .then((s) => s.isFile())
    .catch(() => false);
  if (!exists || result.records.length === 0) return 0;
  const counts = storedPairCounts((await importRecords(storePath)).records);
  const present = alreadyStoredPairs(result.records.map(redactRecord), counts);
  if (present.size === 0) return 0;
  const lines = result.recordLines?.length === result.records.length ? result.recordLines : null;
  result.records = result.records.filter((_, i) => !present.has(i));
  if (lines) result.recordLines = lines.filter((_, i) => !present.has(i));
  return present.size;
}
