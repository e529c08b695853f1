/**
 * Unpaired good/bad labels in TRL's KTO form: `{"prompt", "completion", "label": true|false}`
 * (strings, or message lists in the conversational form). From judgments: a pick labels the
 * best good and the others bad; a ranking labels its top group good and its bottom group bad
 * (middle groups are left out); "none good" labels every candidate bad. Implicit signals:
 * accepted is good, rejected is bad, ignored is left out unless `ignoredAsBad`.
 * Imported labels become implicit-signal records (accepted / rejected).
 */
import type {
  CandidateShown,
  ChatMessage,
  PreferenceRecord,
  PromptSnapshot,
} from '../../protocol/records';
import { contentId, importedCandidate, importedImplicit } from '../recordFactory';
import { completionProblem } from './trl';
import {
  countNote,
  type ExportResult,
  type ImportOptions,
  type ImportResult,
  addRecord,
  importObjectLines,
  LineError,
} from './importResult';

export interface KtoExportOptions {
  /** Label ignored inline suggestions as bad (default: leave them out). */
  ignoredAsBad?: boolean;
}

/** One good/bad label of the KTO form: a candidate after a prompt. */
export interface KtoLabel {
  prompt: PromptSnapshot;
  candidate: CandidateShown;
  good: boolean;
}

/**
 * The labels `record` exports as (the rules in the module comment), and how many of its
 * candidates it leaves out: `middle` (middle-ranked), `skipped` (a skipped judgment),
 * `ignored` (an ignored inline suggestion, unless `ignoredAsBad`).
 */
export function ktoLabels(
  record: PreferenceRecord,
  options: KtoExportOptions = {},
): { labels: KtoLabel[]; middle: number; skipped: boolean; ignored: boolean } {
  const labels: KtoLabel[] = [];
  const out = { labels, middle: 0, skipped: false, ignored: false };
  const label = (candidate: CandidateShown, good: boolean) =>
    labels.push({ prompt: record.prompt, candidate, good });
  if (record.type === 'implicit') {
    if (record.outcome === 'ignored' && !options.ignoredAsBad) out.ignored = true;
    else label(record.candidate, record.outcome === 'accepted');
    return out;
  }
  const j = record.judgment;
  const byId = new Map(record.candidates.map((c) => [c.id, c]));
  if (j.kind === 'pick') {
    for (const c of record.candidates) label(c, c.id === j.best);
  } else if (j.kind === 'ranking') {
    j.groups[0].forEach((id) => label(byId.get(id)!, true));
    if (j.groups.length > 1)
      j.groups[j.groups.length - 1].forEach((id) => label(byId.get(id)!, false));
    for (const g of j.groups.slice(1, -1)) out.middle += g.length;
  } else if (j.kind === 'none-good') {
    for (const c of record.candidates) label(c, false);
  } else {
    out.skipped = true;
  }
  return out;
}

export function exportKto(
  records: readonly PreferenceRecord[],
  options: KtoExportOptions = {},
): ExportResult {
  const lines: string[] = [];
  let middle = 0;
  let skipped = 0;
  let ignored = 0;
  let used = 0;
  for (const record of records) {
    const read = ktoLabels(record, options);
    middle += read.middle;
    if (read.skipped) skipped++;
    if (read.ignored) ignored++;
    for (const { prompt, candidate, good } of read.labels) {
      const row: Record<string, unknown> = prompt.messages
        ? {
            prompt: prompt.messages,
            completion: candidate.messages ?? [{ role: 'assistant', content: candidate.text }],
          }
        : { prompt: prompt.prefix, completion: candidate.text };
      if (!prompt.messages && prompt.suffix !== '') row.suffix = prompt.suffix;
      row.label = good;
      lines.push(JSON.stringify(row));
    }
    if (read.labels.length > 0) used++;
  }
  return {
    format: 'kto',
    lines,
    recordsUsed: used,
    notHeld: [
      'preferences between candidates are reduced to good/bad labels (pairs and ties are not held)',
      ...countNote(
        middle,
        'middle-ranked candidate',
        'middle-ranked candidates',
        'left out (neither good nor bad)',
      ),
      ...countNote(skipped, 'skipped judgment', 'skipped judgments', 'left out'),
      ...countNote(
        ignored,
        'ignored inline suggestion',
        'ignored inline suggestions',
        'left out (use --ignored-as-bad)',
      ),
    ],
  };
}

function isMessages(value: unknown): value is ChatMessage[] {
  return (
    Array.isArray(value) &&
    value.every((m) => typeof m?.role === 'string' && typeof m?.content === 'string')
  );
}

export async function importKto(file: string, options: ImportOptions = {}): Promise<ImportResult> {
  const result: ImportResult = { format: 'kto', records: [], rejected: [], warnings: [] };
  return importObjectLines(file, result, 'line must hold a JSON object', (o, line) => {
    if (o.label === undefined)
      throw new LineError('key "label" is missing; allowed: true or false');
    if (typeof o.label !== 'boolean')
      throw new LineError(`key "label" must be true or false, got ${JSON.stringify(o.label)}`);
    let prefix = '';
    let messages: ChatMessage[] | undefined;
    let candidate: CandidateShown;
    if (typeof o.prompt === 'string' && typeof o.completion === 'string') {
      prefix = o.prompt;
      candidate = importedCandidate('c0', o.completion);
    } else if (isMessages(o.prompt) && isMessages(o.completion)) {
      const problem = completionProblem(o.completion, 'completion');
      if (problem !== null) throw new LineError(problem);
      messages = o.prompt;
      candidate = importedCandidate(
        'c0',
        o.completion.map((m) => m.content).join('\n'),
        'unknown',
        null,
        o.completion,
      );
    } else {
      throw new LineError(
        'keys "prompt" and "completion" must both be strings or both be message lists',
      );
    }
    if (o.suffix !== undefined && typeof o.suffix !== 'string') {
      throw new LineError(`key "suffix" must be a string, got ${JSON.stringify(o.suffix)}`);
    }
    const suffix = typeof o.suffix === 'string' ? o.suffix : '';
    addRecord(
      result,
      importedImplicit({
        id: contentId('kto', [line, o]),
        origin: 'import:kto',
        annotator: options.annotator ?? 'imported',
        prefix,
        suffix,
        messages,
        candidate,
        outcome: o.label ? 'accepted' : 'rejected',
      }),
      line,
    );
  });
}
