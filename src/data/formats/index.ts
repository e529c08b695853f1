import * as path from 'path';
import type { PreferenceRecord } from '../../protocol/records';
import { isEvaluationRecord } from '../blindAb';
import { readLines } from '../jsonl';
import { RecordValidationError, parseRecordLine } from '../recordSchema';
import { importArenaCsv } from './copilotArena';
import type { ExportResult, ImportOptions, ImportResult } from './importResult';
import { exportKto, importKto, type KtoExportOptions } from './kto';
import { exportRankings, importRankings } from './rankings';
import { exportTrl, importTrl, type TrlExportOptions } from './trl';

export const IMPORT_FORMATS = ['records', 'trl', 'copilot-arena', 'rankings', 'kto'] as const;
export type ImportFormat = (typeof IMPORT_FORMATS)[number];
export const EXPORT_FORMATS = ['trl', 'rankings', 'kto', 'records'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export class FormatError extends Error {}

/** Reads our own record JSONL (a store file), reporting bad lines by number and key. */
export async function importRecords(file: string): Promise<ImportResult> {
  const result: ImportResult = { format: 'records', records: [], rejected: [], warnings: [] };
  for await (const line of readLines(file, 0, 1, true)) {
    if (line.invalidUtf8) {
      const where = line.terminated ? 'line' : 'unterminated last line (torn write?)';
      result.rejected.push({ line: line.line, reason: `${where} is not valid UTF-8` });
      continue;
    }
    if (line.text.trim() === '') continue;
    try {
      result.records.push(parseRecordLine(line.text, line.line));
      (result.recordLines ??= []).push(line.line);
      if (!line.terminated) {
        result.warnings.push({
          line: line.line,
          reason: 'last line has no newline (torn write?); it parses and was kept',
        });
      }
    } catch (error) {
      if (!(error instanceof RecordValidationError)) throw error;
      const reason = line.terminated
        ? error.message.replace(/^line \d+: /, '')
        : `unterminated last line (torn write): ${error.message.replace(/^line \d+: /, '')}`;
      result.rejected.push({ line: line.line, reason });
    }
  }
  return result;
}

/** Guesses the format from the extension (".csv") or the keys of the first non-blank line. */
export async function detectFormat(file: string): Promise<ImportFormat> {
  if (path.extname(file).toLowerCase() === '.csv') return 'copilot-arena';
  for await (const line of readLines(file)) {
    if (line.text.trim() === '') continue;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line.text) as Record<string, unknown>;
    } catch {
      throw new FormatError(
        `${file}:${line.line}: cannot detect the format: first line is not JSON; pass --format (${IMPORT_FORMATS.join(', ')})`,
      );
    }
    if (o && typeof o === 'object') {
      if ((o.type === 'judgment' || o.type === 'implicit') && 'v' in o) return 'records';
      if ('chosen' in o && 'rejected' in o) return 'trl';
      if ('completions' in o) return 'rankings';
      if ('completion' in o && 'label' in o) return 'kto';
    }
    throw new FormatError(
      `${file}:${line.line}: cannot detect the format from keys ${JSON.stringify(Object.keys(o ?? {}))}; pass --format (${IMPORT_FORMATS.join(', ')})`,
    );
  }
  throw new FormatError(`${file}: file is empty; nothing to import`);
}

/** Imports `file` in `format` ("auto" detects it). */
export async function importFile(
  file: string,
  format: ImportFormat | 'auto',
  options: ImportOptions = {},
): Promise<ImportResult> {
  const actual = format === 'auto' ? await detectFormat(file) : format;
  switch (actual) {
    case 'records':
      return importRecords(file);
    case 'trl':
      return importTrl(file, options);
    case 'copilot-arena':
      return importArenaCsv(file, options);
    case 'rankings':
      return importRankings(file, options);
    case 'kto':
      return importKto(file, options);
    default:
      throw new FormatError(
        `unknown import format ${JSON.stringify(format)}; allowed: auto, ${IMPORT_FORMATS.join(', ')}`,
      );
  }
}

/** Converts records to the lines of an export format, with a note of what it cannot hold. */
export function exportRecords(
  records: readonly PreferenceRecord[],
  format: ExportFormat,
  options: TrlExportOptions & KtoExportOptions = {},
): ExportResult {
  if (format === 'trl' || format === 'rankings' || format === 'kto') {
    // Blind A/B judgments measure an adapter; as training data they would leak the test.
    const training = records.filter((r) => !isEvaluationRecord(r));
    const left = records.length - training.length;
    const result =
      format === 'trl'
        ? exportTrl(training, options)
        : format === 'rankings'
          ? exportRankings(training)
          : exportKto(training, options);
    if (left > 0) {
      result.notHeld.push(
        `${left} blind A/B evaluation judgment${left === 1 ? '' : 's'} left out (not training ` +
          'data; use --format records to keep them)',
      );
    }
    return result;
  }
  switch (format) {
    case 'records':
      return {
        format,
        lines: records.map((r) => JSON.stringify(r)),
        recordsUsed: records.length,
        notHeld: [],
      };
    default:
      throw new FormatError(
        `unknown export format ${JSON.stringify(format)}; allowed: ${EXPORT_FORMATS.join(', ')}`,
      );
  }
}
