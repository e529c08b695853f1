/**
 * Every adapter "Train on my judgments" produced, promoted or not, every adapter folder loaded
 * through "Select adapter" (trained elsewhere: a TRL run, `code-rlhf train`), and which one
 * completions use. No `vscode` here (unit-tested directly).
 *
 * The history is an append-only JSONL file (`<global storage>/training/adapters.jsonl`), one
 * adapter per line, appended under an inter-process lock (two windows may train at once) and
 * never rewritten: a corrupt line is reported with its line number and skipped, and the other
 * entries stay readable. The active choice (an adapter or the base model) is the pointer file
 * of src/data/activeAdapter.ts, valid only for the model the adapter was trained on.
 */
import { promises as fsp } from 'fs';
import * as path from 'path';
import type { AdapterPointer } from '../data/activeAdapter';
import { acquireLock } from '../data/fileLock';
import { readLines } from '../data/jsonl';

export const HISTORY_VERSION = 1;

/** How an adapter got into the history: trained in the editor, or loaded from a folder. */
export type AdapterAlgorithm = 'ppo' | 'dpo' | 'imported';
export const ADAPTER_ALGORITHMS: readonly AdapterAlgorithm[] = ['ppo', 'dpo', 'imported'];

/** One adapter as the history remembers it. */
export interface AdapterEntry {
  /** Training run id, e.g. "run-20261204T181500"; for an imported adapter, its folder's name. */
  runId: string;
  /** "imported": loaded from a folder; never seen by the promotion gate. */
  algorithm: AdapterAlgorithm;
  /** ISO 8601 time the run ended, or the adapter was imported. */
  time: string;
  /** Adapter folder (PEFT format). */
  path: string;
  /**
   * Model folder it was trained on (imported: checked against): it only applies on top of that
   * model.
   */
  modelDir: string;
  /**
   * The fingerprint (src/data/modelFingerprint.ts) of the weights in `modelDir` when the run
   * started (imported: when the adapter was checked against them); absent in entries written
   * before it existed (those cannot be checked).
   */
  modelFingerprint?: string;
  /** Whether the promotion gate let it replace the completion policy (imported: false). */
  promoted: boolean;
  /** The gate's reason (or why the gate did not run; imported: what the adapter holds). */
  reason: string;
  /** The gate's numbers, when it compared samples. */
  winRate?: number;
  winRateLow?: number;
  winRateHigh?: number;
  comparisons?: number;
  meanKl?: number;
}

/**
 * The adapter completions use, as the active adapter pointer names it; `modelFingerprint` is
 * the fingerprint (src/data/modelFingerprint.ts) of the weights it was trained on, when known.
 */
export type SavedAdapter = AdapterPointer;

/** The name the status bar and records use for a history entry. */
export function adapterName(entry: Pick<AdapterEntry, 'runId' | 'algorithm'>): string {
  return `${entry.runId} ${entry.algorithm}`;
}

const OPTIONAL_NUMBERS = ['winRate', 'winRateLow', 'winRateHigh', 'comparisons', 'meanKl'] as const;

/** Validates one parsed line; returns the entry or what is wrong with it. */
export function parseAdapterEntry(value: unknown): AdapterEntry | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return `expected a JSON object, got ${JSON.stringify(value)}`;
  }
  const v = value as Record<string, unknown>;
  if (v.version !== HISTORY_VERSION) {
    return `"version" is ${JSON.stringify(v.version)}; allowed: ${HISTORY_VERSION}`;
  }
  for (const key of ['runId', 'time', 'path', 'modelDir', 'reason'] as const) {
    if (typeof v[key] !== 'string' || (v[key] as string).length === 0) {
      return `"${key}" is ${JSON.stringify(v[key])}; allowed: a non-empty string`;
    }
  }
  if (!ADAPTER_ALGORITHMS.includes(v.algorithm as AdapterAlgorithm)) {
    return (
      `"algorithm" is ${JSON.stringify(v.algorithm)}; allowed: ` +
      ADAPTER_ALGORITHMS.map((a) => JSON.stringify(a)).join(', ')
    );
  }
  if (v.algorithm === 'imported' && v.promoted === true) {
    return '"promoted" is true for an imported adapter; allowed: false (the gate never saw it)';
  }
  if (typeof v.promoted !== 'boolean') {
    return `"promoted" is ${JSON.stringify(v.promoted)}; allowed: true, false`;
  }
  if (
    v.modelFingerprint !== undefined &&
    (typeof v.modelFingerprint !== 'string' || v.modelFingerprint.length === 0)
  ) {
    return `"modelFingerprint" is ${JSON.stringify(v.modelFingerprint)}; allowed: a non-empty string or absent`;
  }
  const entry: AdapterEntry = {
    runId: v.runId as string,
    algorithm: v.algorithm as AdapterAlgorithm,
    time: v.time as string,
    path: v.path as string,
    modelDir: v.modelDir as string,
    ...(v.modelFingerprint !== undefined ? { modelFingerprint: v.modelFingerprint } : {}),
    promoted: v.promoted,
    reason: v.reason as string,
  };
  for (const key of OPTIONAL_NUMBERS) {
    const n = v[key];
    if (n === undefined || n === null) continue;
    if (typeof n !== 'number') {
      return `"${key}" is ${JSON.stringify(n)}; allowed: a number or absent`;
    }
    entry[key] = n;
  }
  return entry;
}

export interface HistoryRead {
  /** Valid entries in file order (oldest first). */
  entries: AdapterEntry[];
  /** One line per unreadable line, "<file>:<line>: <what is wrong>". */
  problems: string[];
}

/**
 * Reads the history; a missing file is an empty history. Never throws: bad lines, and a file
 * that cannot be read at all, are reported in `problems`.
 */
export async function readAdapterHistory(file: string): Promise<HistoryRead> {
  const out: HistoryRead = { entries: [], problems: [] };
  try {
    await fsp.access(file);
  } catch {
    return out;
  }
  try {
    for await (const line of readLines(file, 0, 1, true)) {
      if (line.invalidUtf8) {
        out.problems.push(`${file}:${line.line}: not valid UTF-8; line skipped`);
        continue;
      }
      if (line.text.trim() === '') continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line.text);
      } catch (error) {
        out.problems.push(
          `${file}:${line.line}: not valid JSON (${(error as Error).message}); line skipped`,
        );
        continue;
      }
      const entry = parseAdapterEntry(parsed);
      if (typeof entry === 'string')
        out.problems.push(`${file}:${line.line}: ${entry}; line skipped`);
      else out.entries.push(entry);
    }
  } catch (error) {
    // A folder in its place, or no read permission: say so; the entries read so far stay.
    out.problems.push(`${file}: cannot be read (${(error as Error).message})`);
  }
  return out;
}

/**
 * Appends one entry as one line, under a lock so that two windows never interleave. A last
 * line torn by a crash (no newline) is closed first so the new entry starts on its own line.
 */
export async function appendAdapterEntry(file: string, entry: AdapterEntry): Promise<void> {
  const problem = parseAdapterEntry({ version: HISTORY_VERSION, ...entry });
  if (typeof problem === 'string') throw new Error(`adapter history entry: ${problem}`);
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const lock = await acquireLock(`${file}.lock`);
  try {
    let prefix = '';
    try {
      const handle = await fsp.open(file, 'r');
      try {
        const { size } = await handle.stat();
        if (size > 0) {
          const last = Buffer.alloc(1);
          await handle.read(last, 0, 1, size - 1);
          if (last[0] !== 0x0a) prefix = '\n';
        }
      } finally {
        await handle.close();
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const json = JSON.stringify({ version: HISTORY_VERSION, ...entry });
    await fsp.appendFile(file, `${prefix}${json}\n`, 'utf8');
  } finally {
    await lock.release();
  }
}

/**
 * The saved adapter to use for `modelDir`, or a reason it cannot be used: not saved (base
 * model), saved for another model or for earlier weights in the same folder (`fingerprint` is
 * the current fingerprint, src/data/modelFingerprint.ts), malformed, or its folder is gone
 * (`exists` checks the file).
 */
export function restorableAdapter(
  saved: unknown,
  modelDir: string,
  exists: (file: string) => boolean,
  fingerprint?: string,
): { adapter?: SavedAdapter; problem?: string } {
  if (saved === undefined || saved === null) return {};
  const s = saved as Partial<SavedAdapter>;
  if (
    typeof s.name !== 'string' ||
    typeof s.path !== 'string' ||
    typeof s.modelDir !== 'string' ||
    (s.modelFingerprint !== undefined && typeof s.modelFingerprint !== 'string')
  ) {
    return { problem: `ignoring a malformed saved adapter: ${JSON.stringify(saved)}` };
  }
  if (s.modelDir !== modelDir) {
    return {
      problem: `adapter ${s.name} was trained on ${s.modelDir}, not ${modelDir}; using the base model`,
    };
  }
  if (staleWeights(s.modelFingerprint, fingerprint)) {
    return {
      problem:
        `the weights in ${modelDir} changed since adapter ${s.name} was trained on them; ` +
        'using the base model',
    };
  }
  const weights = adapterWeights(s.path);
  if (!exists(weights)) {
    return { problem: `adapter ${s.name} is gone (${weights} is missing); using the base model` };
  }
  return {
    adapter: {
      name: s.name,
      path: s.path,
      modelDir: s.modelDir,
      ...(s.modelFingerprint !== undefined ? { modelFingerprint: s.modelFingerprint } : {}),
    },
  };
}

/** Both fingerprints known and different. An unknown one (older entries) cannot be checked. */
function staleWeights(trainedOn: string | undefined, current: string | undefined): boolean {
  return trainedOn !== undefined && current !== undefined && trainedOn !== current;
}

export function adapterWeights(adapterDir: string): string {
  return path.join(adapterDir, 'adapter_model.safetensors');
}

/** One row of the "Select adapter" list. */
export interface AdapterChoice {
  label: string;
  description: string;
  detail?: string;
  /** What choosing it does: use this adapter, or the base model (null; see `loadFolder`). */
  target: SavedAdapter | null;
  /** The row that asks for an adapter folder to load instead (its `target` is null). */
  loadFolder?: true;
  /** Set when it cannot be chosen (its files are gone); shown as a warning instead. */
  problem?: string;
  active: boolean;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function describeEntry(entry: AdapterEntry): string {
  const numbers: string[] = [];
  if (entry.winRate !== undefined && Number.isFinite(entry.winRate)) {
    const interval =
      entry.winRateLow !== undefined && entry.winRateHigh !== undefined
        ? ` [95% CI ${pct(entry.winRateLow)}-${pct(entry.winRateHigh)}]`
        : '';
    const n = entry.comparisons !== undefined ? `, n=${entry.comparisons}` : '';
    numbers.push(`win rate ${pct(entry.winRate)}${interval}${n}`);
  }
  if (entry.meanKl !== undefined && Number.isFinite(entry.meanKl)) {
    numbers.push(`KL ${entry.meanKl.toFixed(3)}`);
  }
  return [...numbers, `${entry.promoted ? 'promoted' : 'not promoted'}: ${entry.reason}`].join(
    ' · ',
  );
}

/** The last row of the list: load an adapter trained elsewhere. */
export const LOAD_FOLDER_LABEL = '$(folder-opened) Load adapter from folder…';

/**
 * The choices for `modelDir`: the base model, then the adapters trained on it (or imported for
 * it), newest first (a folder listed twice keeps its last line), then "Load adapter from
 * folder…". Adapters of other models are counted, not listed: they do not apply to this model.
 */
export function adapterChoices(
  entries: readonly AdapterEntry[],
  modelDir: string,
  active: SavedAdapter | undefined,
  exists: (file: string) => boolean,
  fingerprint?: string,
): { choices: AdapterChoice[]; otherModels: number } {
  const byPath = new Map<string, AdapterEntry>();
  let otherModels = 0;
  for (const entry of entries) {
    if (entry.modelDir !== modelDir) {
      otherModels++;
      continue;
    }
    byPath.delete(entry.path);
    byPath.set(entry.path, entry);
  }
  const choices: AdapterChoice[] = [
    {
      label: 'Base model',
      description: active ? 'no adapter' : 'no adapter · active',
      target: null,
      active: !active,
    },
  ];
  const listed = [...byPath.values()].reverse();
  // An adapter promoted before the history existed is still offered while it is active.
  if (active && !byPath.has(active.path)) {
    choices.push({
      label: active.name,
      description: 'active · not in the adapter history',
      detail: active.path,
      target: active,
      active: true,
    });
  }
  for (const entry of listed) {
    const name = adapterName(entry);
    const isActive = active?.path === entry.path;
    const missing = !exists(adapterWeights(entry.path));
    const stale = staleWeights(entry.modelFingerprint, fingerprint);
    const imported = entry.algorithm === 'imported';
    const problem = missing
      ? `adapter ${name} is gone (${adapterWeights(entry.path)} is missing)`
      : stale
        ? `adapter ${name} was ${imported ? 'checked against' : 'trained on'} earlier weights ` +
          `in ${modelDir} (the model changed in place since); it does not apply to the current ` +
          'weights'
        : undefined;
    choices.push({
      label: name,
      description: [
        imported ? 'imported, not gated' : entry.algorithm.toUpperCase(),
        entry.time.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC'),
        ...(isActive ? ['active'] : []),
        ...(missing ? ['$(warning) files missing'] : []),
        ...(stale && !missing
          ? [`$(warning) ${imported ? 'checked against' : 'trained on'} earlier weights`]
          : []),
      ].join(' · '),
      // An imported folder is known by where it is; a trained one by its gate's numbers.
      detail: imported ? `${entry.path} · ${entry.reason}` : describeEntry(entry),
      target: {
        name,
        path: entry.path,
        modelDir: entry.modelDir,
        ...(entry.modelFingerprint !== undefined
          ? { modelFingerprint: entry.modelFingerprint }
          : {}),
      },
      active: isActive,
      ...(problem ? { problem } : {}),
    });
  }
  choices.push({
    label: LOAD_FOLDER_LABEL,
    description: 'a PEFT adapter trained elsewhere (TRL, code-rlhf train)',
    detail: 'a folder with adapter_config.json and adapter_model.safetensors',
    target: null,
    loadFolder: true,
    active: false,
  });
  return { choices, otherModels };
}
