/**
 * Loading a LoRA adapter trained elsewhere (a TRL run on a cluster, `code-rlhf train`) through
 * "Select adapter": the folder is checked, then recorded in the adapter history as "imported".
 * No `vscode` here (unit-tested directly).
 *
 * The adapter is read by the model host over the loaded model, with the same loader that
 * completions use (src/model/lora.ts `loadPeftAdapter`): the extension host never loads
 * weights, and an adapter that passes here is exactly one that completions can apply. Every
 * refusal happens before anything is written: the history and the active adapter stay as they
 * were.
 */
import * as fs from 'fs';
import * as path from 'path';
import { fileURLToPath } from 'url';
import type { CheckAdapterResult } from '../protocol/modelHost';
import { appendAdapterEntry, readAdapterHistory, type AdapterEntry } from './adapterHistory';
import { ModelUnavailableError } from './modelService';

const PEFT_FILES = 'adapter_config.json and adapter_model.safetensors';
const FILE_URI = 'file: URI (e.g. file:///team/adapters/dpo-7)';

/**
 * The folder a command argument names: an absolute path as it is, or a `file:` URI (a
 * keybinding's args is always a string) as the path it encodes, percent-escapes decoded.
 */
export function adapterFolderPath(argument: string): string | { problem: string } {
  if (!/^file:/i.test(argument)) return argument;
  try {
    return fileURLToPath(argument);
  } catch (error) {
    // Another host (file://server/...) on POSIX, an escaped separator (%2F), a malformed URI.
    return {
      problem:
        `adapter folder ${JSON.stringify(argument)} is not a file: URI of a folder on this ` +
        `machine (${(error as Error).message}); allowed: an absolute path or a ${FILE_URI}`,
    };
  }
}

/**
 * Why `dir` is not a PEFT adapter folder, from its files alone (no model needed), or undefined.
 * The loader says the same of a missing file; saying it here first keeps the model host out of
 * a plain wrong pick and names both files a folder needs.
 */
export function adapterFolderProblem(dir: string): string | undefined {
  if (!path.isAbsolute(dir)) {
    return (
      `adapter folder ${JSON.stringify(dir)} is not an absolute path; allowed: an absolute ` +
      `path or a ${FILE_URI}`
    );
  }
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch (error) {
    return `adapter folder ${dir} cannot be read (${(error as Error).message})`;
  }
  if (!stat.isDirectory()) {
    return `${dir} is not a folder; allowed: a PEFT adapter folder holding ${PEFT_FILES}`;
  }
  for (const name of ['adapter_config.json', 'adapter_model.safetensors']) {
    const file = path.join(dir, name);
    if (fs.existsSync(file) && fs.statSync(file).isFile()) continue;
    const bin =
      name === 'adapter_model.safetensors' && fs.existsSync(path.join(dir, 'adapter_model.bin'));
    return (
      `${dir} has no ${name}; a PEFT adapter folder holds ${PEFT_FILES}` +
      (bin ? ' (adapter_model.bin is not read: save with safe_serialization=True)' : '')
    );
  }
  return undefined;
}

/**
 * Where a loaded folder's entry comes from, for the messages after loading it: a folder the
 * history already lists may be an editor run's adapter, gated, rather than an import.
 */
export function describeLoadedEntry(entry: AdapterEntry): string {
  if (entry.algorithm === 'imported') return 'imported, not gated';
  const gate = entry.promoted ? 'promoted by the promotion gate' : 'not promoted by the gate';
  return `trained by ${entry.runId} (${entry.algorithm.toUpperCase()}), ${gate}`;
}

export interface ImportDeps {
  /** The adapter history (JSONL) the entry is appended to. */
  historyFile: string;
  /** The model folder completions use now (absolute). */
  modelDir(): string;
  /**
   * Has the model host read the adapter over `modelDir`; rejects with why it does not fit (the
   * loader's message names the file, the key and what is allowed), or with a
   * ModelUnavailableError when the model cannot be used (then the adapter is not blamed).
   */
  check(adapterDir: string, modelDir: string): Promise<CheckAdapterResult>;
  /** The current weights' fingerprint (src/data/modelFingerprint.ts). */
  fingerprint(modelDir: string): string | undefined;
  now?: () => Date;
}

export type ImportResult =
  | { entry: AdapterEntry; summary: CheckAdapterResult }
  /** Why it was refused; nothing was written. */
  | { problem: string };

/**
 * Checks the adapter folder `argument` (an absolute path or a `file:` URI; symlinks resolved)
 * against the model in use and, if it fits, appends it to the history as "imported" (not
 * promoted: the gate never compared it) with the model's fingerprint.
 * A folder the history already lists for this model and these weights (a run trained in the
 * editor, or an earlier import) is not added again: its entry is returned as it is, so a trained
 * run keeps its gate numbers in the list. The caller makes it the active adapter.
 */
export async function importAdapter(argument: string, deps: ImportDeps): Promise<ImportResult> {
  const dir = adapterFolderPath(argument);
  if (typeof dir !== 'string') return dir;
  const folderProblem = adapterFolderProblem(dir);
  if (folderProblem) return { problem: folderProblem };
  // One folder, one path: a symlink to it, `..` or a trailing separator (which would also give
  // the entry an empty name) would otherwise list it twice. The real path is what is checked and
  // recorded, so the entry keeps naming the adapter that was read if a link is moved later.
  let folder: string;
  try {
    folder = fs.realpathSync(dir);
  } catch (error) {
    return { problem: `adapter folder ${dir} cannot be read (${(error as Error).message})` };
  }
  const modelDir = deps.modelDir();
  const fingerprint = deps.fingerprint(modelDir);
  let summary: CheckAdapterResult;
  try {
    summary = await deps.check(folder, modelDir);
  } catch (error) {
    const message = (error as Error).message;
    if (error instanceof ModelUnavailableError) {
      return { problem: `adapter ${folder} was not checked: ${message}` };
    }
    return { problem: `adapter ${folder} cannot be used with the model ${modelDir}: ${message}` };
  }
  // The check holds for the weights it read; a model switched or rewritten meanwhile voids it.
  if (deps.modelDir() !== modelDir) {
    return {
      problem:
        `the model changed to ${deps.modelDir()} while adapter ${folder} was checked against ` +
        `${modelDir}; load it again`,
    };
  }
  if (deps.fingerprint(modelDir) !== fingerprint) {
    return {
      problem: `the weights in ${modelDir} changed while adapter ${folder} was checked; load it again`,
    };
  }
  // The latest line for a path is the one the list shows (unreadable lines are warned about by
  // the list itself).
  const listed = (await readAdapterHistory(deps.historyFile)).entries
    .filter((e) => e.modelDir === modelDir && realFolder(e.path) === folder)
    .at(-1);
  if (listed && listed.modelFingerprint === fingerprint) return { entry: listed, summary };
  const entry: AdapterEntry = {
    runId: path.basename(folder),
    algorithm: 'imported',
    time: (deps.now?.() ?? new Date()).toISOString(),
    path: folder,
    modelDir,
    ...(fingerprint ? { modelFingerprint: fingerprint } : {}),
    promoted: false,
    reason:
      `LoRA r=${summary.rank}, alpha ${summary.alpha}, ${summary.targets.join(', ')} ` +
      `(${summary.modules} modules); imported, not gated`,
  };
  try {
    await appendAdapterEntry(deps.historyFile, entry);
  } catch (error) {
    return {
      problem:
        `adapter ${folder} fits, but could not be added to the adapter history ` +
        `${deps.historyFile} (${(error as Error).message}); it is not switched on`,
    };
  }
  return { entry, summary };
}

/** `dir` with symlinks resolved, or as it is when it no longer exists. */
function realFolder(dir: string): string {
  try {
    return fs.realpathSync(dir);
  } catch {
    return path.resolve(dir);
  }
}
