import type { PreferenceRecord } from '../../protocol/records';
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
