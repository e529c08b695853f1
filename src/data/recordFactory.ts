import { createHash } from 'crypto';
import {
  RECORD_SCHEMA_VERSION,
  type CandidateShown,
  type ChatMessage,
  type ImplicitOutcome,
  type ImplicitSignalRecord,
  type Judgment,
  type JudgmentRecord,
} from '../protocol/records';

/**
 * A stable id from content: importing the same file twice yields the same ids, so the store
 * keeps one copy. `parts` should include the source line so that two identical lines in one
 * file stay two records (and show up as duplicates in `data stats`).
 */
export function contentId(prefix: string, parts: readonly unknown[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(JSON.stringify(part) ?? 'undefined').update('\0');
  return `${prefix}-${hash.digest('hex').slice(0, 24)}`;
}

/** A candidate from imported data: only the text, and the model and position when known. */
export function importedCandidate(
  id: string,
  text: string,
  model = 'unknown',
  position: number | null = null,
  messages?: ChatMessage[],
): CandidateShown {
  const candidate: CandidateShown = {
    id,
    text,
    model,
    adapter: null,
    sampling: null,
    logprob: null,
    position,
  };
  if (messages) candidate.messages = messages;
  return candidate;
}

export interface ImportedJudgmentFields {
  id: string;
  origin: string;
  annotator: string;
  prefix: string;
  suffix?: string;
  messages?: ChatMessage[];
  candidates: CandidateShown[];
  judgment: Judgment;
  language?: string;
  timestamp?: string;
  meta?: Record<string, unknown>;
}

/** Builds a judgment record for imported data (unknown fields set to null / "unknown"). */
export function importedJudgment(fields: ImportedJudgmentFields): JudgmentRecord {
  const record: JudgmentRecord = {
    type: 'judgment',
    v: RECORD_SCHEMA_VERSION,
    id: fields.id,
    timestamp: fields.timestamp ?? new Date().toISOString(),
    annotator: fields.annotator,
    workspace: null,
    file: null,
    language: fields.language ?? 'unknown',
    origin: fields.origin,
    prompt: { prefix: fields.prefix, suffix: fields.suffix ?? '' },
    redactions: [],
    candidates: fields.candidates,
    judgment: fields.judgment,
    decisionMs: null,
    generationMs: null,
  };
  if (fields.messages) record.prompt.messages = fields.messages;
  if (fields.meta && Object.keys(fields.meta).length > 0) record.meta = fields.meta;
  return record;
}

/** Builds an implicit-signal record for imported unpaired labels. */
export function importedImplicit(fields: {
  id: string;
  origin: string;
  annotator: string;
  prefix: string;
  suffix?: string;
  messages?: ChatMessage[];
  candidate: CandidateShown;
  outcome: ImplicitOutcome;
}): ImplicitSignalRecord {
  const record: ImplicitSignalRecord = {
    type: 'implicit',
    v: RECORD_SCHEMA_VERSION,
    id: fields.id,
    timestamp: new Date().toISOString(),
    annotator: fields.annotator,
    workspace: null,
    file: null,
    language: 'unknown',
    origin: fields.origin,
    prompt: { prefix: fields.prefix, suffix: fields.suffix ?? '' },
    redactions: [],
    candidate: fields.candidate,
    outcome: fields.outcome,
    visibleMs: null,
    generationMs: null,
  };
  if (fields.messages) record.prompt.messages = fields.messages;
  return record;
}
