import { promises as fsp } from 'fs';
import * as path from 'path';
import {
  EXPORT_FORMATS,
  IMPORT_FORMATS,
  computeStats,
  dropStoredContent,
  exportRecords,
  formatStats,
  importFile,
  importRecords,
  isAbsolutePathLike,
  openStore,
  parseRecordLine,
  readLines,
  writeFileAtomic,
  type ExportFormat,
  type ImportFormat,
  type ImportIssue,
  type ImportResult,
  type PreferenceRecord,
} from '../data';
import { PREFERENCE_STORE, assertInputPath } from '../rlhf/inputPaths';
import { UsageError, parseArgs, type CliCommand, type CliIo } from './args';

const HELP = `code-rlhf data: preference datasets

usage:
  code-rlhf data import <file> --out <store.jsonl> [--format F] [--annotator NAME] [--dry-run]
      Append the judgments in <file> to the store. Ids already stored are skipped, and so are
      TRL lines whose pair (prompt, chosen, rejected) and KTO lines whose label (prompt,
      completion, good or bad) the store holds as often as the file does.
      F: auto (default), ${IMPORT_FORMATS.join(', ')}
  code-rlhf data export <store.jsonl> --format F --out <file> [--margins] [--ignored-as-bad] [--force]
      Write the store as F: ${EXPORT_FORMATS.join(', ')}. Prints what the format could not hold.
      --margins adds TRL's "margin" column; --ignored-as-bad labels ignored inline suggestions bad (kto).
  code-rlhf data stats <file> [--format F] [--json]
      Quality report: counts per annotator, language and source; position bias with 95%
      intervals; duplicates; self-consistency; inter-annotator disagreement.
  code-rlhf data validate <file> [--format F]
      Check every line; exits 1 and names the line and key of each problem.
  code-rlhf data repair <store.jsonl>
      Move a torn last line (left by a crash) to a side file next to the store; no byte is deleted.
`;

const MAX_ISSUES_SHOWN = 20;

function printIssues(io: CliIo, label: string, issues: ImportIssue[], source: string): void {
  if (issues.length === 0) return;
  io.err(`${label}: ${issues.length}`);
  for (const issue of issues.slice(0, MAX_ISSUES_SHOWN)) {
    io.err(`  ${source}${issue.line > 0 ? `:${issue.line}` : ''}: ${issue.reason}`);
  }
  if (issues.length > MAX_ISSUES_SHOWN) io.err(`  … and ${issues.length - MAX_ISSUES_SHOWN} more`);
}

function formatOption(
  value: string | true | undefined,
  allowed: readonly string[],
  fallback?: string,
): string {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'string' || !allowed.includes(value)) {
    throw new UsageError(
      `--format ${value === undefined ? 'is required' : JSON.stringify(value) + ' is unknown'}; allowed: ${allowed.join(', ')}`,
    );
  }
  return value;
}

/** Refuses an input file that is missing, a folder or unreadable, naming what belongs there. */
function mustExist(file: string, expected: string): void {
  assertInputPath(
    { label: '', target: file, kind: 'file', expected },
    (message) => new UsageError(message),
  );
}

const IMPORT_INPUT = `a dataset file (${IMPORT_FORMATS.join(', ')})`;

/**
 * Refuses an --out that is a folder, or an existing file whose first line is not a preference
 * record (a TRL dataset given by mistake): appending would mix records into it, and the store's
 * torn-tail repair would move its last line to a side file.
 */
async function assertStoreTarget(out: string): Promise<void> {
  const stat = await fsp.stat(out).catch(() => null);
  if (stat === null) return;
  if (stat.isDirectory()) {
    throw new UsageError(`--out ${out} is a folder; give the path of a store file (.jsonl)`);
  }
  for await (const line of readLines(out, 0, 1, true)) {
    if (line.text.trim() === '' && !line.invalidUtf8) continue;
    try {
      if (line.invalidUtf8) throw new Error('line is not valid UTF-8');
      parseRecordLine(line.text, line.line);
      return;
    } catch (error) {
      const torn = line.terminated ? '' : ' (if a crash tore it, run "code-rlhf data repair")';
      throw new UsageError(
        `${out}:${line.line}: --out is not a preference store (records JSONL): ` +
          `${(error as Error).message.replace(/^line \d+: /, '')}; appending to it refused${torn}`,
      );
    }
  }
}

/** Moves records the store would refuse (absolute paths) into `rejected`, with their lines. */
function rejectAbsolutePaths(result: ImportResult): void {
  const lines = result.recordLines?.length === result.records.length ? result.recordLines : null;
  const kept: PreferenceRecord[] = [];
  const keptLines: number[] = [];
  result.records.forEach((record, i) => {
    const key = (['file', 'workspace'] as const).find((k) => {
      const value = record[k];
      return value !== null && isAbsolutePathLike(value);
    });
    if (key === undefined) {
      kept.push(record);
      keptLines.push(lines?.[i] ?? 0);
      return;
    }
    result.rejected.push({
      line: lines?.[i] ?? 0,
      reason:
        `key "${key}": absolute path ${JSON.stringify(record[key])} not allowed; ` +
        `store a workspace-relative path (record id ${JSON.stringify(record.id)})`,
    });
  });
  result.rejected.sort((a, b) => a.line - b.line);
  result.records = kept;
  if (lines) result.recordLines = keptLines;
}

async function runImport(argv: string[], io: CliIo): Promise<number> {
  const args = parseArgs(argv, ['out', 'format', 'annotator'], ['dry-run']);
  const [input, extra] = args.positional;
  if (!input || extra) throw new UsageError('data import takes exactly one input file');
  const out = args.options.get('out');
  const dryRun = args.options.has('dry-run');
  if (typeof out !== 'string' && !dryRun)
    throw new UsageError('data import needs --out <store.jsonl> (or --dry-run)');
  mustExist(input, IMPORT_INPUT);
  const format = formatOption(args.options.get('format'), ['auto', ...IMPORT_FORMATS], 'auto') as
    ImportFormat | 'auto';
  const annotator = args.options.get('annotator');
  if (typeof out === 'string' && !dryRun) await assertStoreTarget(out);
  const result = await importFile(input, format, {
    source: input,
    annotator: typeof annotator === 'string' ? annotator : undefined,
  });
  rejectAbsolutePaths(result);
  printIssues(io, 'rejected', result.rejected, input);
  printIssues(io, 'warnings', result.warnings, input);
  if (result.records.length === 0 && result.rejected.length > 0) {
    io.err(
      `nothing to import: all ${result.rejected.length} lines/rows of ${input} were rejected as ` +
        `${result.format} (see above); pass --format (${IMPORT_FORMATS.join(', ')}) if that is wrong`,
    );
    return 1;
  }
  const read = result.records.length;
  // TRL and KTO lines carry no ids (the importers derive them from line number and content), so
  // an export of this store, or the same file with lines moved, is recognised by its pairs
  // (TRL) or labels (KTO).
  const unit = result.format === 'kto' ? 'label' : 'pair';
  const check =
    typeof out === 'string' ? await dropStoredContent(result, out) : { removed: 0, unreadable: [] };
  if (check.unreadable.length > 0) {
    printIssues(io, `unreadable lines in the store ${out}`, check.unreadable, String(out));
    io.err(
      `${dryRun ? 'would not import' : 'not importing'}: ${result.format.toUpperCase()} lines ` +
        `carry no ids, so ${input} is checked against ${out} by content, and the lines of ${out} ` +
        `above cannot be read: a ${unit} held only there would be stored twice. ${out} is unchanged; ` +
        `fix or move those lines (code-rlhf data validate ${out}) and import again.`,
    );
    return 1;
  }
  const sameContent = check.removed;
  if (dryRun || typeof out !== 'string') {
    const present =
      sameContent > 0 ? ` (${sameContent} already in ${out} with the same ${unit})` : '';
    io.out(
      `${input} (${result.format}): ${result.records.length} records would be imported${present}, ${result.rejected.length} rejected`,
    );
    return 0;
  }
  if (path.resolve(out) === path.resolve(input))
    throw new UsageError('--out must differ from the input file');
  const store = await openStore(out);
  const appended = await store.appendMany(result.records);
  const written = appended.filter((a) => a.written).length;
  const sameId = result.records.length - written;
  const present =
    result.format === 'trl' || result.format === 'kto'
      ? `${sameContent + sameId} already stored (${sameContent} with the same ${unit}, ${sameId} with the same id)`
      : `${sameId} already stored`;
  io.out(
    `${input} (${result.format}): ${read} records read, ${written} appended to ${out}, ` +
      `${present}, ${result.rejected.length} rejected`,
  );
  return 0;
}

async function runExport(argv: string[], io: CliIo): Promise<number> {
  const args = parseArgs(argv, ['out', 'format'], ['margins', 'ignored-as-bad', 'force']);
  const [input, extra] = args.positional;
  if (!input || extra) throw new UsageError('data export takes exactly one store file');
  const out = args.options.get('out');
  if (typeof out !== 'string') throw new UsageError('data export needs --out <file>');
  const format = formatOption(args.options.get('format'), EXPORT_FORMATS) as ExportFormat;
  mustExist(input, PREFERENCE_STORE);
  // Through symlinks: a link to the store must not be overwritten, a link to a file keeps
  // pointing at the new content, and a device or pipe (/dev/stdout) is written as a stream
  // (renaming a temp file over it would replace the device entry itself).
  const target = await fsp.realpath(out).catch(() => path.resolve(out));
  if (target === (await fsp.realpath(input)))
    throw new UsageError('--out must differ from the store file');
  const existing = await fsp.stat(target).catch(() => null);
  if (existing?.isDirectory()) {
    throw new UsageError(`--out ${out} is a folder; give the path of the file to write`);
  }
  const stream = existing !== null && !existing.isFile();
  if (!args.options.has('force') && existing && !stream) {
    throw new UsageError(`${out} exists; pass --force to replace it`);
  }
  const read = await importRecords(input);
  if (read.rejected.length > 0) {
    printIssues(io, 'invalid lines', read.rejected, input);
    io.err(`not exporting: ${input} has invalid lines (see above; run "code-rlhf data validate")`);
    return 1;
  }
  const result = exportRecords(read.records, format, {
    margins: args.options.has('margins'),
    ignoredAsBad: args.options.has('ignored-as-bad'),
  });
  const lines = result.lines.map((l) => l + '\n');
  if (stream) {
    await fsp.writeFile(target, lines.join(''));
  } else {
    await fsp.mkdir(path.dirname(target), { recursive: true });
    await writeFileAtomic(target, lines);
  }
  // The summary goes to stderr when the data itself may be going to stdout.
  const report = (text: string) => (stream ? io.err(text) : io.out(text));
  report(
    `${out} (${format}): ${result.lines.length} lines from ${result.recordsUsed} of ${read.records.length} records`,
  );
  for (const note of result.notHeld) report(`  note: ${note}`);
  return 0;
}

async function runStats(argv: string[], io: CliIo): Promise<number> {
  const args = parseArgs(argv, ['format'], ['json']);
  const [input, extra] = args.positional;
  if (!input || extra) throw new UsageError('data stats takes exactly one file');
  mustExist(input, IMPORT_INPUT);
  const format = formatOption(args.options.get('format'), ['auto', ...IMPORT_FORMATS], 'auto') as
    ImportFormat | 'auto';
  const result = await importFile(input, format, { source: input });
  printIssues(io, 'rejected', result.rejected, input);
  printIssues(io, 'warnings', result.warnings, input);
  const stats = computeStats(result.records);
  if (args.options.has('json')) {
    io.out(
      JSON.stringify(
        { file: input, format: result.format, rejected: result.rejected, stats },
        null,
        2,
      ),
    );
  } else {
    io.out(`${input} (${result.format}), ${result.rejected.length} rows/lines rejected`);
    io.out(formatStats(stats));
  }
  return 0;
}

async function runValidate(argv: string[], io: CliIo): Promise<number> {
  const args = parseArgs(argv, ['format'], []);
  const [input, extra] = args.positional;
  if (!input || extra) throw new UsageError('data validate takes exactly one file');
  mustExist(input, IMPORT_INPUT);
  const format = formatOption(args.options.get('format'), ['auto', ...IMPORT_FORMATS], 'auto') as
    ImportFormat | 'auto';
  const result = await importFile(input, format, { source: input });
  const issues = [...result.rejected];
  const seen = new Map<string, number>();
  if (result.format === 'records') {
    result.records.forEach((r, i) => {
      if (seen.has(r.id))
        issues.push({
          line: 0,
          reason: `id ${JSON.stringify(r.id)} stored twice (records ${seen.get(r.id)! + 1} and ${i + 1})`,
        });
      seen.set(r.id, i);
    });
  }
  printIssues(io, 'problems', issues, input);
  printIssues(io, 'warnings', result.warnings, input);
  io.out(
    `${input} (${result.format}): ${result.records.length} valid records, ${issues.length} problems`,
  );
  return issues.length === 0 ? 0 : 1;
}

async function runRepair(argv: string[], io: CliIo): Promise<number> {
  const args = parseArgs(argv, [], []);
  const [input, extra] = args.positional;
  if (!input || extra) throw new UsageError('data repair takes exactly one store file');
  mustExist(input, PREFERENCE_STORE);
  const report = await (await openStore(input)).repair();
  if (report.sideFile) {
    io.out(`${input}: moved a torn last line (${report.tornBytes} bytes) to ${report.sideFile}`);
  } else if (report.completedLine) {
    io.out(`${input}: the last record lacked its newline; added it`);
  } else {
    io.out(`${input}: no torn line`);
  }
  return 0;
}

const SUBCOMMANDS: Record<string, (argv: string[], io: CliIo) => Promise<number>> = {
  import: runImport,
  export: runExport,
  stats: runStats,
  validate: runValidate,
  repair: runRepair,
};

export const dataCommand: CliCommand = {
  name: 'data',
  summary: 'import, export, validate and report on preference datasets',
  async run(argv, io) {
    const [sub, ...rest] = argv;
    if (
      sub === undefined ||
      sub === '--help' ||
      sub === '-h' ||
      sub === 'help' ||
      rest.includes('--help') ||
      rest.includes('-h')
    ) {
      io.out(HELP);
      return sub === undefined ? 2 : 0;
    }
    const handler = Object.hasOwn(SUBCOMMANDS, sub) ? SUBCOMMANDS[sub] : undefined;
    if (!handler) {
      throw new UsageError(
        `unknown data subcommand ${JSON.stringify(sub)}; allowed: ${Object.keys(SUBCOMMANDS).join(', ')}`,
      );
    }
    return handler(rest, io);
  },
};
