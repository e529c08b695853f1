import type { PreferenceRecord } from '../../protocol/records';
import { readLines } from '../jsonl';
import { RecordValidationError, validateRecord } from '../recordSchema';

/** A line or row that was not imported (rejected) or imported with a caveat (warning). */
export interface ImportIssue {
  line: number;
  reason: string;
}

/** What an importer produced from one file. */
export interface ImportResult {
  format: string;
  records: PreferenceRecord[];
  /** The source line of each record in `records` (same order), when the importer knows it. */
  recordLines?: number[];
  rejected: ImportIssue[];
  warnings: ImportIssue[];
}

/** What an exporter wrote, and what the format could not hold. */
export interface ExportResult {
  format: string;
  lines: string[];
  /** Records that contributed at least one line. */
  recordsUsed: number;
  /** Human-readable notes on what was left out or changed, e.g. "1 tie skipped". */
  notHeld: string[];
}

export interface ImportOptions {
  /** Annotator id for records whose source has none. */
  annotator?: string;
  /** Shown in messages, e.g. the file name. */
  source?: string;
}

/** Renders counts like "3 ties skipped (…)" only when non-zero. */
export function countNote(count: number, singular: string, plural: string, why: string): string[] {
  if (count === 0) return [];
  return [`${count} ${count === 1 ? singular : plural} ${why}`];
}

/**
 * Adds a converted record after checking it against the store schema, so a line whose values
 * convert to an invalid record (a bad timestamp, a fractional position) is rejected with its
 * line number instead of failing the whole import later in the store.
 */
export function addRecord(result: ImportResult, record: PreferenceRecord, line: number): void {
  try {
    result.records.push(validateRecord(record));
    (result.recordLines ??= []).push(line);
  } catch (error) {
    if (!(error instanceof RecordValidationError)) throw error;
    result.rejected.push({ line, reason: `converted record is invalid: ${error.message}` });
  }
}

/** A problem with one line of an imported file: the line is rejected with this message. */
export class LineError extends Error {}

/**
 * Reads a JSONL file of one JSON object per line into `result`, the shared frame of the TRL,
 * rankings and KTO importers: each object goes to `convert` with its line number. A line that is
 * not valid UTF-8, not JSON or not an object (rejected with `notObject`), or that `convert`
 * refuses with a LineError, is rejected with its number and the reason, and the rest are still
 * read; blank lines are skipped.
 */
export async function importObjectLines(
  file: string,
  result: ImportResult,
  notObject: string,
  convert: (o: Record<string, unknown>, line: number) => void,
): Promise<ImportResult> {
  for await (const line of readLines(file, 0, 1, true)) {
    if (line.invalidUtf8) {
      result.rejected.push({ line: line.line, reason: 'line is not valid UTF-8' });
      continue;
    }
    if (line.text.trim() === '') continue;
    try {
      let value: unknown;
      try {
        value = JSON.parse(line.text);
      } catch (error) {
        throw new LineError(`not valid JSON (${(error as Error).message})`);
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new LineError(notObject);
      }
      convert(value as Record<string, unknown>, line.line);
    } catch (error) {
      if (!(error instanceof LineError)) throw error;
      result.rejected.push({ line: line.line, reason: error.message });
    }
  }
  return result;
}
