/**
 * Atomic checkpoints. A checkpoint is a folder `step-NNNNNNN/` holding its files and a
 * `manifest.json` with each file's SHA-256; it is written under a temporary name, flushed, and
 * renamed into place, and only then does the run's `latest` pointer (itself replaced by
 * rename) move to it. A crash at any moment leaves either the previous checkpoint or the new
 * one, never a half-written folder that resume would trust.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { isAlive } from '../data/fileLock';

function fsyncPath(target: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(target, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Directories cannot be fsynced on every platform (Windows); the rename is still atomic.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** The temporary name writeFileAtomic writes `name` under: `.<name>.<pid>.<ms>.tmp`. */
function atomicTempName(name: string): string {
  return `.${name}.${process.pid}.${Date.now()}.tmp`;
}

/** Writes a file by temp + fsync + rename, so readers see the old or new content only. */
export function writeFileAtomic(filePath: string, data: string | Uint8Array): void {
  const dir = path.dirname(filePath);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, atomicTempName(path.basename(filePath)));
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, filePath);
  fsyncPath(dir);
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export interface CheckpointManifest {
  step: number;
  /** ISO time the checkpoint was completed. */
  time: string;
  files: Record<string, { bytes: number; sha256: string }>;
  /** Trainer state needed to resume (optimizer step, KL coefficient, RNG seed, ...). */
  state: Record<string, unknown>;
}

const POINTER = 'latest';

export function checkpointName(step: number): string {
  return `step-${String(step).padStart(7, '0')}`;
}

/**
 * Writes `files` as checkpoint `step` under `checkpointsDir` and moves the `latest` pointer to
 * it. Returns the checkpoint folder. Keeps the newest `keep` checkpoints.
 */
export function writeCheckpoint(
  checkpointsDir: string,
  step: number,
  files: Record<string, Uint8Array | string>,
  state: Record<string, unknown>,
  keep = 2,
): string {
  fs.mkdirSync(checkpointsDir, { recursive: true });
  // A run's first checkpoint writes the pointer, so step folders without one were written by
  // another run (or its pointer was deleted): writing beside them would replace the one of the
  // same step and prune the rest. The job runners and the demo refuse such a folder before any
  // work (assertCheckpointsFolderFree); this catches any other caller. Limitation: with a
  // pointer there, this cannot tell a fresh run from a resumed one; only the start check can.
  const pointer = path.join(checkpointsDir, POINTER);
  const others = stepFolders(checkpointsDir);
  if (!fs.existsSync(pointer) && others.length > 0) {
    // In no caller's terms (a CLI flag, an editor command): the start check gives those.
    throw new Error(
      `${checkpointsDir} holds ${describeSteps(others)} but no "latest" pointer: checkpoints ` +
        `this run did not write, and it will not replace or prune them; to resume from one, ` +
        `write its name into ${pointer}; or start the run in another folder`,
    );
  }
  const finalDir = path.join(checkpointsDir, checkpointName(step));
  const tmpDir = `${finalDir}.${process.pid}.tmp`;
  fs.rmSync(tmpDir, { recursive: true, force: true });
  fs.mkdirSync(tmpDir);
  const manifest: CheckpointManifest = { step, time: new Date().toISOString(), files: {}, state };
  for (const [name, content] of Object.entries(files)) {
    if (!isFileName(name) || name === 'manifest.json') {
      throw new Error(
        `checkpoint file name ${JSON.stringify(name)} is not allowed; allowed: plain file ` +
          `names (no "/" or "\\\\", not "." or ".."), other than manifest.json`,
      );
    }
    const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    const fd = fs.openSync(path.join(tmpDir, name), 'w');
    try {
      fs.writeSync(fd, bytes);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    manifest.files[name] = { bytes: bytes.length, sha256: sha256(bytes) };
  }
  writeFileAtomic(path.join(tmpDir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  fs.rmSync(finalDir, { recursive: true, force: true });
  fs.renameSync(tmpDir, finalDir);
  fsyncPath(checkpointsDir);
  writeFileAtomic(pointer, checkpointName(step) + '\n');
  pruneCheckpoints(checkpointsDir, keep, checkpointName(step));
  return finalDir;
}

function pruneCheckpoints(checkpointsDir: string, keep: number, current: string): void {
  const names = stepFolders(checkpointsDir);
  const doomed = names.slice(0, Math.max(0, names.length - keep)).filter((n) => n !== current);
  for (const name of doomed) fs.rmSync(path.join(checkpointsDir, name), { recursive: true });
}

/** The `step-NNNNNNN` folders in `checkpointsDir`, oldest first; none when it does not exist. */
function stepFolders(checkpointsDir: string): string[] {
  if (!fs.existsSync(checkpointsDir)) return [];
  return fs
    .readdirSync(checkpointsDir)
    .filter((n) => /^step-\d{7}$/.test(n))
    .sort();
}

function describeSteps(names: readonly string[]): string {
  const shown = names.length > 3 ? [...names.slice(0, 2), '...', names[names.length - 1]] : names;
  return `${names.length} step folder${names.length === 1 ? '' : 's'} (${shown.join(', ')})`;
}

/** What a refusal of `assertCheckpointsFolderFree` tells the user to do, in the caller's terms. */
export interface RunFolderAdvice {
  /** A fresh run beside step folders that a `latest` pointer names (a resume would continue). */
  fresh: string;
  /** Step folders that no `latest` pointer names: a resume would not continue from them. */
  noPointer(pointer: string): string;
}

/**
 * Refuses to start a run in `checkpointsDir` when it holds step folders the run would not
 * continue from: any, for a fresh run; any, for a resumed run when the `latest` pointer is gone
 * (the trainers then start fresh). Such a run would write its own steps beside them, replacing
 * the folder of each step it reaches and pruning the others as it keeps its newest two: data it
 * did not write. `advice` says what to do instead, in the caller's terms (the CLI's flags, the
 * editor's command); without a pointer it never says "resume" alone, since a resume there is
 * refused too.
 * Call it before any work, with the folder the trainer checkpoints to.
 */
export function assertCheckpointsFolderFree(
  checkpointsDir: string,
  resume: boolean,
  advice: RunFolderAdvice,
): void {
  const names = stepFolders(checkpointsDir);
  if (names.length === 0) return;
  const pointer = path.join(checkpointsDir, POINTER);
  const hasPointer = fs.existsSync(pointer);
  if (!resume) {
    throw new Error(
      `${checkpointsDir} already holds ${describeSteps(names)} of an earlier run` +
        (hasPointer ? '' : ' (and no "latest" pointer)') +
        `, which a fresh run there would replace and prune; ` +
        (hasPointer ? advice.fresh : advice.noPointer(pointer)),
    );
  }
  if (!hasPointer) {
    throw new Error(
      `${checkpointsDir} holds ${describeSteps(names)} but no "latest" pointer, so a resumed ` +
        `run would start from scratch and prune them; ${advice.noPointer(pointer)}`,
    );
  }
}

/** The name writeCheckpoint writes checkpoint `step-NNNNNNN` under before renaming it. */
const UNFINISHED = /^step-\d{7}\.\d+\.tmp$/;
/** The name writeFileAtomic writes `latest` under (see atomicTempName); group 1: the pid. */
const POINTER_TEMP = /^\.latest\.(\d+)\.\d+\.tmp$/;

/**
 * Removes the unfinished checkpoints in `checkpointsDir`: the `step-NNNNNNN.<pid>.tmp` folders
 * writeCheckpoint renames into place once written, left behind when its process is killed
 * first. No resume reads them (the `latest` pointer never names one), and no later checkpoint
 * replaces them (the name holds the killed process's pid). `log` names the folders removed; only
 * folders of that name are touched. Removes too the `latest` pointer's temporary files
 * (`.latest.<pid>.<ms>.tmp`, see writeFileAtomic) left by a kill between their write and rename,
 * when that pid is dead or this process's (whose own write failed): a live one's may be in use.
 * Call it only once the run owns the folder: with the run folder's lock held (no other run
 * writes checkpoints there) and after assertCheckpointsFolderFree.
 */
export function removeUnfinishedCheckpoints(
  checkpointsDir: string,
  log: (message: string) => void,
): void {
  if (!fs.existsSync(checkpointsDir)) return;
  const removed: string[] = [];
  const names = fs.readdirSync(checkpointsDir).filter((n) => UNFINISHED.test(n));
  for (const name of names.sort()) {
    const dir = path.join(checkpointsDir, name);
    if (!fs.lstatSync(dir).isDirectory()) continue;
    fs.rmSync(dir, { recursive: true });
    removed.push(name);
  }
  if (removed.length > 0) {
    const [folders, them] = removed.length === 1 ? ['folder', 'it'] : ['folders', 'them'];
    log(
      `${checkpointsDir}: removed ${removed.length} unfinished checkpoint ${folders} ` +
        `(${removed.join(', ')}), left by a run killed while writing ${them}`,
    );
  }
  removePointerLeftovers(checkpointsDir, log);
}

/** The `latest` pointer's temporary files of dead processes (or this one); see above. */
function removePointerLeftovers(checkpointsDir: string, log: (message: string) => void): void {
  const removed: string[] = [];
  for (const name of fs.readdirSync(checkpointsDir).sort()) {
    const pid = POINTER_TEMP.exec(name)?.[1];
    if (pid === undefined) continue;
    // Limitation: a dead run's pid reused by a live process keeps its file here (harmless: no
    // reader looks at it), until that process ends.
    if (Number(pid) !== process.pid && isAlive(Number(pid))) continue;
    const file = path.join(checkpointsDir, name);
    if (!fs.lstatSync(file).isFile()) continue;
    fs.rmSync(file);
    removed.push(name);
  }
  if (removed.length > 0) {
    const [files, them] = removed.length === 1 ? ['file', 'it'] : ['files', 'them'];
    log(
      `${checkpointsDir}: removed ${removed.length} temporary "latest" pointer ${files} ` +
        `(${removed.join(', ')}), left by a run killed before renaming ${them} into place`,
    );
  }
}

/** Checkpoint file names `writeCheckpoint` accepts: plain names in the checkpoint folder. */
function isFileName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !/[/\\]/.test(name);
}

/**
 * Checks a checkpoint's manifest.json before anything in it is trusted: a damaged manifest
 * must fail naming the file, the key and what is allowed, not with a bare JSON or type error
 * deep in a trainer's resume (and a file name must not lead outside the checkpoint folder).
 * `pointer` is the run's `latest` file, which named checkpoint `name`.
 */
function damagedFix(pointer: string, name: string): string {
  return (
    `checkpoint ${name} is damaged: write the name of an older step-* folder into ${pointer}, ` +
    // Not "delete the pointer": no run starts in a folder of step-* folders without a pointer
    // (it would prune them; see assertCheckpointsFolderFree).
    'or train from the start in another run folder'
  );
}

function parseManifest(file: string, pointer: string, name: string): CheckpointManifest {
  const fix = damagedFix(pointer, name);
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`${file}: not valid JSON (${(error as Error).message}); ${fix}`);
  }
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  const bad = (key: string, value: unknown, allowed: string) =>
    new Error(
      `${file}: "${key}" is ${String(JSON.stringify(value)).slice(0, 80)}; allowed: ${allowed}; ` +
        fix,
    );
  if (!isObject(parsed)) throw bad('(top level)', parsed, 'a JSON object');
  const step = Number(name.slice('step-'.length));
  if (parsed.step !== step) throw bad('step', parsed.step, `${step} (the folder's step)`);
  if (typeof parsed.time !== 'string') throw bad('time', parsed.time, 'an ISO time string');
  if (!isObject(parsed.state)) throw bad('state', parsed.state, 'a JSON object');
  if (!isObject(parsed.files)) {
    throw bad('files', parsed.files, 'an object of file name -> {"bytes", "sha256"}');
  }
  for (const [fileName, info] of Object.entries(parsed.files)) {
    if (!isFileName(fileName) || fileName === 'manifest.json') {
      throw bad('files', fileName, 'plain file names in the checkpoint folder, not manifest.json');
    }
    if (
      !isObject(info) ||
      !Number.isSafeInteger(info.bytes) ||
      (info.bytes as number) < 0 ||
      typeof info.sha256 !== 'string' ||
      !/^[0-9a-f]{64}$/.test(info.sha256)
    ) {
      throw bad(
        `files.${fileName}`,
        info,
        '{"bytes": a non-negative integer, "sha256": 64 lowercase hex digits}',
      );
    }
  }
  return parsed as unknown as CheckpointManifest;
}

export interface LoadedCheckpoint {
  dir: string;
  manifest: CheckpointManifest;
  read(name: string): Buffer;
  /**
   * The trainer state's counter `key` (a step, iteration or count): a non-negative integer, or
   * an error naming the manifest, the key and the value. The manifest is not covered by the
   * file digests, and a counter that is missing or of another type would not fail where it is
   * used: `step < total` is simply false for undefined or "x", so the trainer would end at once
   * and output the checkpoint's weights as if training had finished.
   */
  counter(key: string): number;
}

/**
 * Opens the checkpoint `latest` points to, verifying every file against the manifest.
 * Returns undefined when the run has no checkpoint yet; throws naming the file when a
 * checkpoint exists but is damaged (resume must never continue from corrupt state).
 */
export function loadLatestCheckpoint(checkpointsDir: string): LoadedCheckpoint | undefined {
  const pointer = path.join(checkpointsDir, POINTER);
  if (!fs.existsSync(pointer)) return undefined;
  const name = fs.readFileSync(pointer, 'utf8').trim();
  if (!/^step-\d{7}$/.test(name)) {
    throw new Error(
      `${pointer}: expected a checkpoint name like "step-0000010", got ${JSON.stringify(name)}`,
    );
  }
  const dir = path.join(checkpointsDir, name);
  const manifestPath = path.join(dir, 'manifest.json');
  if (!fs.existsSync(manifestPath)) {
    throw new Error(`${pointer} names ${name}, but ${manifestPath} does not exist`);
  }
  const manifest = parseManifest(manifestPath, pointer, name);
  const cache = new Map<string, Buffer>();
  for (const [file, info] of Object.entries(manifest.files)) {
    const filePath = path.join(dir, file);
    if (!fs.existsSync(filePath)) {
      throw new Error(`checkpoint ${dir} lists ${file} in its manifest, but the file is missing`);
    }
    const bytes = fs.readFileSync(filePath);
    if (bytes.length !== info.bytes || sha256(bytes) !== info.sha256) {
      throw new Error(
        `checkpoint file ${filePath} does not match its manifest (${bytes.length} bytes, ` +
          `expected ${info.bytes} with sha256 ${info.sha256.slice(0, 12)}...)`,
      );
    }
    cache.set(file, bytes);
  }
  return {
    dir,
    manifest,
    counter(key: string): number {
      const value = manifest.state[key];
      if (!Number.isSafeInteger(value) || (value as number) < 0) {
        throw new Error(
          `${manifestPath}: "state.${key}" is ${String(JSON.stringify(value)).slice(0, 80)}; ` +
            `allowed: a non-negative integer; ${damagedFix(pointer, name)}`,
        );
      }
      return value as number;
    },
    read(file: string): Buffer {
      const bytes = cache.get(file);
      if (!bytes) {
        throw new Error(
          `checkpoint ${dir} has no file ${JSON.stringify(file)}; it has: ${[...cache.keys()].join(', ')}`,
        );
      }
      return bytes;
    },
  };
}
