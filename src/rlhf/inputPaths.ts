/**
 * Checks of the files and folders a job or command reads, made before any work (before a model
 * loads or a run folder is made). Without them a typo in a path surfaces late and as something
 * else: a missing preference store reads as an empty one ("no training pairs"), a missing
 * adapter as an ENOENT from inside a loader, after the model has loaded.
 */
import * as fs from 'fs';
import * as path from 'path';

/** What an input path must be: a file, a folder, or either (a corpus file or a code folder). */
export type InputKind = 'file' | 'folder' | 'file or folder';

/** What is wrong with `target` as a readable input of `kind`; undefined when nothing is. */
export function inputPathProblem(target: string, kind: InputKind): string | undefined {
  if (target.trim() === '') return 'is empty';
  let stat: fs.Stats;
  try {
    stat = fs.statSync(target);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // ENOTDIR: a path that goes through a file ("store.jsonl/x") does not exist either.
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'does not exist';
    return `cannot be read (${code ?? (error as Error).message})`;
  }
  if (kind === 'file' && stat.isDirectory()) return 'is a folder, not a file';
  if (kind === 'folder' && !stat.isDirectory()) return 'is not a folder';
  if (kind === 'file or folder' && !stat.isDirectory() && !stat.isFile()) {
    return 'is neither a file nor a folder';
  }
  try {
    // A folder is read by listing it (R) and opening what is in it (X).
    const mode = stat.isDirectory() ? fs.constants.R_OK | fs.constants.X_OK : fs.constants.R_OK;
    fs.accessSync(target, mode);
  } catch (error) {
    return `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'no permission'})`;
  }
  return undefined;
}

/** An input path to check: where it came from, and what belongs there. */
export interface InputPath {
  /**
   * Where the path was given, as the caller names it (`--prompts`, `config "dataFile":`); empty
   * for a positional argument, which the path itself names.
   */
  label: string;
  target: string;
  kind: InputKind;
  /** What belongs there, for the message: "a model folder (Hugging Face layout: ...)". */
  expected: string;
  /** A file the folder must hold for the reader to start at all (a model's config.json). */
  holds?: string;
}

/**
 * Throws `makeError` with a message that names the path, where it was given, what is wrong
 * and what is expected, unless `input` is a readable file or folder as it should be.
 */
export function assertInputPath(
  input: InputPath,
  makeError: (message: string) => Error = (message) => new Error(message),
): void {
  const { label, target, kind, expected, holds } = input;
  let problem = inputPathProblem(target, kind);
  if (problem === undefined && holds !== undefined) {
    const inner = inputPathProblem(path.join(target, holds), 'file');
    if (inner !== undefined) {
      problem = inner === 'does not exist' ? `has no ${holds}` : `holds ${holds}, which ${inner}`;
    }
  }
  if (problem === undefined) return;
  const where = [label, problem === 'is empty' ? '' : target].filter((s) => s !== '').join(' ');
  throw makeError(`${where} ${problem}; expected ${expected}`);
}

/** What a model folder holds, for messages. */
export const MODEL_FOLDER = 'a model folder (Hugging Face layout: config.json, tokenizer, weights)';
/** What a PEFT adapter folder holds, for messages. */
export const ADAPTER_FOLDER =
  'a PEFT adapter folder (adapter_config.json and adapter_model.safetensors)';
/** What a reward model folder holds, for messages. */
export const REWARD_MODEL_FOLDER =
  'a reward model folder (the reward-model folder of a "train rm" run: adapter and reward_head.safetensors)';
/** What a preference store is, for messages. */
export const PREFERENCE_STORE =
  'a preference store (the JSONL file of judgments that the editor or "code-rlhf data import" writes)';
