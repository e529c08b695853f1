/**
 * The Copilot Arena battle export (lmarena/copilot-arena `copilot_arena_examples_v1.csv`):
 * columns prefix, suffix, model_a, model_b, acceptedIndex (0 = completion_a chosen,
 * 1 = completion_b), completion_a, completion_b. completion_a is taken as shown at position 0.
 */
import { promises as fsp } from 'fs';
import { contentId, importedCandidate, importedJudgment } from '../recordFactory';
import { parseCsv } from './csv';
import type { ImportOptions, ImportResult } from './importResult';
import { addRecord } from './importResult';

export const ARENA_COLUMNS = [
  'prefix',
  'suffix',
  'model_a',
  'model_b',
  'acceptedIndex',
  'completion_a',
  'completion_b',
] as const;

export class ArenaFormatError extends Error {}

/**
 * Imports the CSV text; malformed rows are reported by line and the rest imported.
 * `invalidUtf8` says the file had bytes that are not UTF-8 (decoded as U+FFFD): rows holding
 * U+FFFD are then rejected rather than stored with the replacement character.
 */
export function importArenaCsvText(
  text: string,
  options: ImportOptions = {},
  invalidUtf8 = false,
): ImportResult {
  const source = options.source ?? 'copilot-arena csv';
  const rows = parseCsv(text);
  const result: ImportResult = { format: 'copilot-arena', records: [], rejected: [], warnings: [] };
  if (rows.length === 0) throw new ArenaFormatError(`${source}: empty file, expected a header row`);
  const header = rows[0].fields.map((h) => h.trim());
  const column = new Map<string, number>();
  for (const name of ARENA_COLUMNS) {
    const index = header.indexOf(name);
    if (index === -1) {
      throw new ArenaFormatError(
        `${source}:1: header lacks column "${name}"; expected columns: ${ARENA_COLUMNS.join(', ')}; got: ${header.join(', ')}`,
      );
    }
    column.set(name, index);
  }
  const get = (fields: string[], name: (typeof ARENA_COLUMNS)[number]) => fields[column.get(name)!];
  let previousMalformed = false;
  for (const row of rows.slice(1)) {
    const { fields, line } = row;
    if (fields.length === 1 && fields[0] === '') {
      previousMalformed = false;
      continue;
    }
    if (row.unclosedQuote) {
      result.rejected.push({
        line,
        reason: 'quoted field never closed; the row runs to the end of the file',
      });
      continue;
    }
    if (fields.length !== header.length) {
      result.rejected.push({
        line,
        reason: `row has ${fields.length} field${fields.length === 1 ? '' : 's'}, expected ${header.length} (unquoted line break or stray quote)`,
      });
      previousMalformed = true;
      continue;
    }
    if (previousMalformed) {
      result.warnings.push({
        line,
        reason: 'row follows a malformed row and may be its continuation (its prefix may be cut)',
      });
    }
    previousMalformed = false;
    if (invalidUtf8 && fields.some((f) => f.includes('\uFFFD'))) {
      result.rejected.push({
        line,
        reason: 'row holds bytes that are not valid UTF-8 (convert the file to UTF-8)',
      });
      continue;
    }
    // 0 or 1, also written as a float ("0.0") by pandas; not "0x1", "1e0" or "-0".
    const index = /^\s*([01])(?:\.0*)?\s*$/.exec(get(fields, 'acceptedIndex'));
    const accepted = index ? Number(index[1]) : NaN;
    if (accepted !== 0 && accepted !== 1) {
      result.rejected.push({
        line,
        reason: `acceptedIndex ${JSON.stringify(get(fields, 'acceptedIndex'))} is not 0 or 1`,
      });
      continue;
    }
    const a = importedCandidate('a', get(fields, 'completion_a'), get(fields, 'model_a'), 0);
    const b = importedCandidate('b', get(fields, 'completion_b'), get(fields, 'model_b'), 1);
    if (a.text === b.text) {
      result.rejected.push({
        line,
        reason: 'completion_a identical to completion_b (no information)',
      });
      continue;
    }
    addRecord(
      result,
      importedJudgment({
        id: contentId('arena', [line, fields]),
        origin: 'import:copilot-arena',
        annotator: options.annotator ?? 'copilot-arena',
        prefix: get(fields, 'prefix'),
        suffix: get(fields, 'suffix'),
        candidates: [a, b],
        judgment: { kind: 'pick', best: accepted === 0 ? 'a' : 'b' },
      }),
      line,
    );
  }
  return result;
}

export async function importArenaCsv(
  file: string,
  options: ImportOptions = {},
): Promise<ImportResult> {
  const bytes = await fsp.readFile(file);
  let text: string;
  let invalidUtf8 = false;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    text = bytes.toString('utf8');
    invalidUtf8 = true;
  }
  return importArenaCsvText(text, { source: file, ...options }, invalidUtf8);
}
