/**
 * Rankings JSONL, our own interchange format for full judgments. One line per judgment:
 * `{"id", "prompt", "suffix", "messages"?, "completions": [...], "models": [...],
 * "positions": [...], "annotator", "language", "timestamp"}` plus exactly one of
 * `"best": i` (a pick), `"ranking": [[i], [j, k], ...]` (groups best to worst, ties within a
 * group; indices into `completions`) or `"none_good": true`. Skipped judgments and implicit
 * signals are not held.
 */
import type {
  CandidateShown,
  ChatMessage,
  Judgment,
  PreferenceRecord,
} from '../../protocol/records';
import { contentId, importedCandidate, importedJudgment } from '../recordFactory';
import {
  countNote,
  type ExportResult,
  type ImportOptions,
  type ImportResult,
  addRecord,
  importObjectLines,
  LineError,
} from './importResult';

export function exportRankings(records: readonly PreferenceRecord[]): ExportResult {
  const lines: string[] = [];
  let skipped = 0;
  let implicit = 0;
  for (const record of records) {
    if (record.type === 'implicit') {
      implicit++;
      continue;
    }
    const judgment = record.judgment;
    if (judgment.kind === 'skipped') {
      skipped++;
      continue;
    }
    const indexOf = new Map(record.candidates.map((c, i) => [c.id, i]));
    const row: Record<string, unknown> = {
      id: record.id,
      prompt: record.prompt.prefix,
      suffix: record.prompt.suffix,
    };
    if (record.prompt.messages) row.messages = record.prompt.messages;
    row.completions = record.candidates.map((c) => c.text);
    if (record.candidates.some((c) => c.messages)) {
      row.completion_messages = record.candidates.map((c) => c.messages ?? null);
    }
    row.models = record.candidates.map((c) => c.model);
    row.positions = record.candidates.map((c) => c.position);
    if (judgment.kind === 'pick') row.best = indexOf.get(judgment.best);
    else if (judgment.kind === 'ranking')
      row.ranking = judgment.groups.map((g) => g.map((id) => indexOf.get(id)));
    else row.none_good = true;
    row.annotator = record.annotator;
    row.language = record.language;
    row.timestamp = record.timestamp;
    lines.push(JSON.stringify(row));
  }
  return {
    format: 'rankings',
    lines,
    recordsUsed: lines.length,
    notHeld: [
      ...countNote(skipped, 'skipped judgment', 'skipped judgments', 'left out (no preference)'),
      ...countNote(implicit, 'implicit signal', 'implicit signals', 'left out (use --format kto)'),
      'metadata not held: adapter, sampling settings, log-probabilities, file, timing, redaction notes',
    ],
  };
}

function stringArray(value: unknown, key: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new LineError(`key "${key}" must be an array of strings`);
  }
  return value;
}

function index(value: unknown, count: number, key: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= count) {
    throw new LineError(
      `key "${key}" must be an index 0..${count - 1}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

export async function importRankings(
  file: string,
  options: ImportOptions = {},
): Promise<ImportResult> {
  const result: ImportResult = { format: 'rankings', records: [], rejected: [], warnings: [] };
  return importObjectLines(file, result, 'line must hold a JSON object', (o, line) => {
    for (const key of ['prompt', 'suffix'] as const) {
      if (o[key] !== undefined && typeof o[key] !== 'string') {
        throw new LineError(`key "${key}" must be a string, got ${JSON.stringify(o[key])}`);
      }
    }
    const completions = stringArray(o.completions, 'completions');
    if (completions.length < 2) throw new LineError('key "completions" must hold at least 2 texts');
    const models =
      o.models === undefined ? completions.map(() => 'unknown') : stringArray(o.models, 'models');
    const positions = Array.isArray(o.positions) ? (o.positions as unknown[]) : [];
    const messages = Array.isArray(o.completion_messages)
      ? (o.completion_messages as unknown[])
      : [];
    const candidates: CandidateShown[] = completions.map((text, i) =>
      importedCandidate(
        `c${i}`,
        text,
        models[i] ?? 'unknown',
        typeof positions[i] === 'number' ? (positions[i] as number) : null,
        (messages[i] as ChatMessage[] | null) ?? undefined,
      ),
    );
    let judgment: Judgment;
    const kinds = ['best', 'ranking', 'none_good'].filter((k) => o[k] !== undefined);
    if (kinds.length !== 1) {
      throw new LineError(
        `exactly one of "best", "ranking", "none_good" is required, got ${kinds.length}`,
      );
    }
    if (o.best !== undefined) {
      judgment = { kind: 'pick', best: `c${index(o.best, completions.length, 'best')}` };
    } else if (o.ranking !== undefined) {
      if (!Array.isArray(o.ranking) || !o.ranking.every(Array.isArray)) {
        throw new LineError('key "ranking" must be an array of arrays of indices');
      }
      const seen = new Set<number>();
      const groups = (o.ranking as unknown[][]).map((g, gi) =>
        g.map((v, k) => {
          const i = index(v, completions.length, `ranking[${gi}][${k}]`);
          if (seen.has(i))
            throw new LineError(`key "ranking[${gi}][${k}]": index ${i} ranked twice`);
          seen.add(i);
          return `c${i}`;
        }),
      );
      if (groups.some((g) => g.length === 0))
        throw new LineError('key "ranking" has an empty group');
      judgment = { kind: 'ranking', groups };
    } else {
      judgment = { kind: 'none-good' };
    }
    // Without an id, the content and line (as for TRL): a line number alone would collide with
    // the same line of another file, and that file's judgments would be dropped as stored.
    const id = typeof o.id === 'string' && o.id !== '' ? o.id : contentId('rankings', [line, o]);
    addRecord(
      result,
      importedJudgment({
        id,
        origin: 'import:rankings',
        annotator:
          typeof o.annotator === 'string' ? o.annotator : (options.annotator ?? 'imported'),
        prefix: typeof o.prompt === 'string' ? o.prompt : '',
        suffix: typeof o.suffix === 'string' ? o.suffix : '',
        messages: Array.isArray(o.messages) ? (o.messages as ChatMessage[]) : undefined,
        candidates,
        judgment,
        language: typeof o.language === 'string' ? o.language : undefined,
        timestamp: typeof o.timestamp === 'string' ? o.timestamp : undefined,
      }),
      line,
    );
  });
}
