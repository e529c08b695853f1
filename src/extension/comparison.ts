/**
 * One comparison, from the snapshot of the editor to the stored record, without `vscode`:
 * distinct candidates in a random shown order, the mapping from shown positions back to
 * candidate ids, and the judgment record with exactly what was shown.
 */
import type { GeneratedCandidate } from '../protocol/generation';
import {
  RECORD_SCHEMA_VERSION,
  type BlindAbEvaluation,
  type CandidateShown,
  type Judgment,
  type JudgmentRecord,
  type SamplingSettings,
} from '../protocol/records';
import {
  MessageValidationError,
  type ComparisonView,
  type ViewJudgment,
} from '../protocol/webviewMessages';

/** The editor state a request was made from. Candidates belong to exactly this version. */
export interface EditorSnapshot {
  /** Document URI (string form). */
  uri: string;
  /** Document version when the text was read. */
  version: number;
  languageId: string;
  /** Offset of the cursor in the document. */
  offset: number;
  /** Text before the cursor sent to the model, with the document's own line endings. */
  prefix: string;
  /** Text after the cursor sent to the model. */
  suffix: string;
  /** The document's line ending. */
  eol: '\n' | '\r\n';
  /** Workspace folder name and workspace-relative POSIX path, as stored in records. */
  workspace: string | null;
  file: string | null;
  /** Epoch ms when the command ran. */
  requestedAt: number;
  /** File system path of the preference store this snapshot's records go to. */
  storePath: string;
}

/** A comparison shown (or about to be shown) and not yet judged. Persisted across reloads. */
export interface PendingComparison {
  id: string;
  snapshot: EditorSnapshot;
  /** Candidates in shown order: `candidates[p].position === p`. */
  candidates: CandidateShown[];
  generationMs: number;
  /** Epoch ms when the webview reported the candidates visible; null until then. */
  shownAt: number | null;
  /** Set for a blind A/B comparison: which candidate is base, which tuned, and the adapter. */
  blindAb?: BlindAbEvaluation;
}

/** Fisher-Yates permutation of 0..n-1 with the given uniform [0, 1) source. */
export function randomOrder(n: number, random: () => number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

export interface CandidateSource {
  model: string;
  adapter: string | null;
  sampling: SamplingSettings;
}

/**
 * Builds a pending comparison from generated candidates: identical texts are shown once (two
 * equal samples are not two options), at most `limit`, in random order. Candidate ids follow
 * generation order (`c0`, `c1`, ...); `position` is where each was shown.
 */
export function buildComparison(
  id: string,
  snapshot: EditorSnapshot,
  generated: readonly GeneratedCandidate[],
  source: CandidateSource,
  generationMs: number,
  limit: number,
  random: () => number,
): PendingComparison {
  const seen = new Set<string>();
  const distinct = generated.filter((c) => !seen.has(c.text) && !!seen.add(c.text)).slice(0, limit);
  const order = randomOrder(distinct.length, random);
  const candidates = order.map((index, position) => ({
    id: `c${index}`,
    text: distinct[index].text,
    model: source.model,
    adapter: source.adapter,
    sampling: source.sampling,
    logprob: Number.isFinite(distinct[index].logprob) ? distinct[index].logprob : null,
    position,
  }));
  return { id, snapshot, candidates, generationMs, shownAt: null };
}

/** What the webview gets: texts in shown order, no model or adapter names (blind). */
export function comparisonView(pending: PendingComparison): ComparisonView {
  const view: ComparisonView = {
    id: pending.id,
    languageId: pending.snapshot.languageId,
    contextBefore: pending.snapshot.prefix.slice(-4000),
    candidates: pending.candidates.map((c) => c.text),
  };
  // Only the mode: which candidate is base and which is tuned stays in the extension.
  if (pending.blindAb) view.mode = 'blind-ab';
  return view;
}

function candidateAt(pending: PendingComparison, position: number, key: string): string {
  const candidate = pending.candidates[position];
  if (!candidate) {
    throw new MessageValidationError(
      `judgment for ${pending.id}: "${key}" is position ${position}, but only ` +
        `${pending.candidates.length} candidates were shown (0 to ${pending.candidates.length - 1})`,
    );
  }
  return candidate.id;
}

/** Maps a judgment by shown positions to one by candidate ids; throws on a bad position. */
export function toJudgment(pending: PendingComparison, view: ViewJudgment): Judgment {
  switch (view.kind) {
    case 'pick':
      return { kind: 'pick', best: candidateAt(pending, view.best, 'best') };
    case 'ranking':
      return {
        kind: 'ranking',
        groups: view.groups.map((group, g) =>
          group.map((p, i) => candidateAt(pending, p, `groups[${g}][${i}]`)),
        ),
      };
    default:
      return { kind: view.kind };
  }
}

/** The text to insert for a judgment: the pick, or the first of the best ranking group. */
export function chosenText(pending: PendingComparison, judgment: Judgment): string | undefined {
  const byId = (id: string) => pending.candidates.find((c) => c.id === id)?.text;
  if (judgment.kind === 'pick') return byId(judgment.best);
  if (judgment.kind === 'ranking') {
    // Within a tie the earliest shown candidate wins: a deterministic, documented choice.
    const top = judgment.groups[0]
      .map((id) => pending.candidates.find((c) => c.id === id)!)
      .sort((a, b) => (a.position ?? 0) - (b.position ?? 0));
    return top[0]?.text;
  }
  return undefined;
}

/**
 * Converts model output to the document's line ending. The record keeps the text exactly as
 * generated; only the inserted copy is converted: `\r\n`, a lone `\r` and `\n` all become `eol`
 * (the same normalization VS Code applies to any text inserted into a document).
 */
export function withLineEndings(text: string, eol: '\n' | '\r\n'): string {
  return text.replace(/\r\n|\r|\n/g, eol);
}

export interface RecordContext {
  annotator: string;
  /** Epoch ms of the decision. */
  decidedAt: number;
}

/** The judgment record: the exact prompt snapshot and every candidate as shown. */
export function judgmentRecord(
  pending: PendingComparison,
  judgment: Judgment,
  context: RecordContext,
): JudgmentRecord {
  const { snapshot } = pending;
  return {
    type: 'judgment',
    v: RECORD_SCHEMA_VERSION,
    // The comparison id: submitting the same comparison twice stores it once.
    id: pending.id,
    timestamp: new Date(context.decidedAt).toISOString(),
    annotator: context.annotator,
    workspace: snapshot.workspace,
    file: snapshot.file,
    language: snapshot.languageId || 'unknown',
    origin: 'vscode',
    prompt: { prefix: snapshot.prefix, suffix: snapshot.suffix },
    redactions: [],
    candidates: pending.candidates.map((c) => ({ ...c })),
    judgment,
    decisionMs: pending.shownAt === null ? null : Math.max(0, context.decidedAt - pending.shownAt),
    generationMs: Math.round(pending.generationMs),
    meta: { documentVersion: snapshot.version, shownOrder: pending.candidates.map((c) => c.id) },
  };
}
