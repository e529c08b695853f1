import type { PreferenceRecord } from '../../protocol/records';

/** A line or row that was not imported (rejected) or imported with a caveat (warning). */
export interface ImportIssue {
  line: number;
  reason: string;
}

/** What an importer produced from one file. */
export interface ImportResult {
  format: string;
  records: PreferenceRecord[];
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
