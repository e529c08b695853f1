/**
 * Preference records as stored in the JSONL preference store, one JSON object per line.
 *
 * These types cross process boundaries (extension host, webview, model host, CLI), so they live
 * here; validation, storage and format conversion live in `src/data`. Every record carries
 * `type` and `v` (schema version) so readers can reject what they do not understand.
 */

/**
 * Schema version written by this code. Readers accept versions up to this one.
 *
 * - v1: judgments and implicit signals.
 * - v2: adds the optional `evaluation` field of judgment records (blind A/B judgments). A v2
 *   record without it means exactly what a v1 record means. A v1 reader rejects v2 records
 *   instead of silently training on evaluation judgments it cannot recognize.
 */
export const RECORD_SCHEMA_VERSION = 2;

/** First schema version that allows `JudgmentRecord.evaluation`. */
export const EVALUATION_SCHEMA_VERSION = 2;

/** The text around the cursor when the candidates were generated, byte for byte. */
export interface PromptSnapshot {
  /** Text before the cursor, with the document's original line endings. */
  prefix: string;
  /** Text after the cursor, with the document's original line endings ('' when none). */
  suffix: string;
  /**
   * Chat messages for records imported from conversational datasets (TRL conversational form).
   * When present, `prefix` and `suffix` are '' and the messages are the prompt.
   */
  messages?: ChatMessage[];
}

export interface ChatMessage {
  role: string;
  content: string;
}

/** Sampling settings used for one candidate; null fields were not known (e.g. imported data). */
export interface SamplingSettings {
  temperature: number | null;
  topK: number | null;
  topP: number | null;
  seed: number | null;
  maxNewTokens: number | null;
}

/** One candidate as it was shown to the annotator. */
export interface CandidateShown {
  /** Identifier unique within the record, e.g. "c0"; judgments refer to candidates by it. */
  id: string;
  /** The exact text shown (and inserted if chosen). */
  text: string;
  /** For conversational imports: the assistant messages this candidate consists of. */
  messages?: ChatMessage[];
  /** Model that produced the candidate, e.g. "default" or "codestral-2405". */
  model: string;
  /** Adapter (LoRA) version applied, or null for the base model. */
  adapter: string | null;
  sampling: SamplingSettings | null;
  /** Sum of sampled-token log-probabilities at the sampling temperature, when known. */
  logprob: number | null;
  /** 0-based position the candidate was shown at (left to right / top to bottom); null if unknown. */
  position: number | null;
}

/**
 * What the annotator decided.
 * - `pick`: one best candidate; every other shown candidate is worse.
 * - `ranking`: groups of candidate ids from best to worst; ids in one group are tied.
 *   Candidates not listed are unranked (no pairs are formed with them).
 * - `none-good`: every candidate is bad (no pairs; negative labels).
 * - `skipped`: the annotator declined to judge (no information).
 */
export type Judgment =
  | { kind: 'pick'; best: string }
  | { kind: 'ranking'; groups: string[][] }
  | { kind: 'none-good' }
  | { kind: 'skipped' };

/** A secret pattern that was replaced before the record was written. */
export interface RedactionNote {
  /** Dotted path of the field, e.g. "prompt.prefix" or "candidates[2].text". */
  field: string;
  /** Pattern kind, e.g. "aws-access-key-id", "github-token", "private-key-block". */
  kind: string;
  count: number;
}

/** Fields shared by every record kind. */
export interface RecordBase {
  v: number;
  /** Unique id; submitting the same id twice stores the record once. */
  id: string;
  /** ISO-8601 UTC time the record was made. */
  timestamp: string;
  /** Annotator id (setting; defaults to the OS user name). */
  annotator: string;
  /** Workspace folder name (not its path), or null when no folder was open. */
  workspace: string | null;
  /** File path relative to the workspace folder, POSIX separators; absolute only if configured. */
  file: string | null;
  /** Language id, e.g. "typescript"; "unknown" when not known. */
  language: string;
  /** Where the record came from, e.g. "vscode", "import:trl", "import:copilot-arena". */
  origin: string;
  prompt: PromptSnapshot;
  redactions: RedactionNote[];
  /** Free-form extra fields kept through round trips (e.g. an imported TRL margin). */
  meta?: Record<string, unknown>;
}

/** A LoRA adapter as the extension names it: display name and PEFT folder. */
export interface AdapterRef {
  /** Name shown in the status bar and stored in `CandidateShown.adapter`. */
  name: string;
  /** Absolute path of the adapter folder (PEFT format). */
  path: string;
}

/**
 * A blind A/B judgment (schema v2): one candidate from the base model (adapter off) and one
 * from a tuned adapter, shown unlabeled in random order. It measures the adapter; it is not
 * training data (reward-model and DPO pair building skip records that carry it).
 */
export interface BlindAbEvaluation {
  kind: 'blind-ab';
  /** Id of the candidate the base model produced (its `adapter` is null). */
  baseCandidate: string;
  /** Id of the candidate the tuned adapter produced (its `adapter` is `adapter.name`). */
  tunedCandidate: string;
  /** The tuned adapter that was compared with the base. */
  adapter: AdapterRef;
}

/** Evaluation judgments; allowed kinds: "blind-ab". */
export type Evaluation = BlindAbEvaluation;

/** A comparison the annotator judged. */
export interface JudgmentRecord extends RecordBase {
  type: 'judgment';
  candidates: CandidateShown[];
  judgment: Judgment;
  /**
   * Present when the judgment was an evaluation (schema v2 and later), not a preference to
   * train on. Absent for ordinary comparisons.
   */
  evaluation?: Evaluation;
  /** Milliseconds from candidates visible to the decision; null if unknown. */
  decisionMs: number | null;
  /** Milliseconds the generation took; null if unknown. */
  generationMs: number | null;
}

/** What happened to an inline (ghost-text) suggestion, or an unpaired good/bad label. */
export type ImplicitOutcome = 'accepted' | 'ignored' | 'rejected';

/** An implicit signal: one suggestion shown inline and accepted, ignored or rejected. */
export interface ImplicitSignalRecord extends RecordBase {
  type: 'implicit';
  candidate: CandidateShown;
  outcome: ImplicitOutcome;
  /** Milliseconds the suggestion was visible; null if unknown. */
  visibleMs: number | null;
  generationMs: number | null;
}

export type PreferenceRecord = JudgmentRecord | ImplicitSignalRecord;
