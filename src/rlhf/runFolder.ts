/**
 * A training run's folder, checked and locked before any trainer runs. A folder path that cannot
 * be written would otherwise fail with a raw OS error only after the model and data have loaded
 * (a file where the folder should be), or minutes into training (a file where the checkpoint
 * folder should be); an empty path would resolve to the current folder and train into it. And
 * the trainers write their checkpoints, metrics and output under the folder and prune step
 * folders they take for theirs, so two runs in one folder destroy each other's work.
 *
 * The lock is a file `<runDir>/.lock` created with O_EXCL, holding the holder's pid, host and
 * start time. It is held for the whole job (hours, possibly), so there is no waiting for it: a
 * second run is refused at once. A lock whose holder is gone (a crash, a kill) is taken over with
 * a warning; that is judged by whether its pid is alive on this host. Of several runs that find
 * the same stale lock, only the one that creates its take-over marker removes it (see takeOver);
 * a marker is itself a lock of the same kind, taken over the same way when its owner is gone.
 */
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { isAlive } from '../data/fileLock';

export const LOCK_FILE = '.lock';

/**
 * Age after which an unreadable lock file counts as torn (its creator was killed between
 * creating and writing it) rather than still being written.
 */
const TORN_LOCK_GRACE_MS = 10_000;

interface LockInfo {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  started: string;
  nonce: string;
}

export interface RunFolderLock {
  readonly file: string;
  /** Removes the lock file if it is still this holder's; safe to call more than once. */
  release(): void;
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

function parseLock(raw: string): LockInfo | undefined {
  try {
    const value = JSON.parse(raw) as Partial<LockInfo>;
    if (
      // pid 0 and negative pids name process groups: signalling them always "succeeds".
      Number.isSafeInteger(value.pid) &&
      (value.pid as number) > 0 &&
      typeof value.host === 'string' &&
      typeof value.started === 'string' &&
      typeof value.nonce === 'string'
    ) {
      return value as LockInfo;
    }
  } catch {
    // Torn or foreign content: judged by the file's age below.
  }
  return undefined;
}

/** Kind of the file system entry at `file`, or undefined when there is none. */
function entryKind(file: string): 'folder' | 'other' | undefined {
  try {
    return fs.statSync(file).isDirectory() ? 'folder' : 'other';
  } catch (error) {
    // ENOTDIR: a parent is a file; creating the folder then fails, naming it.
    if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return undefined;
    throw error;
  }
}

/**
 * Checks `runDir` before a job loads anything, and creates it: an empty path (which would
 * resolve to the current folder), a path naming a file, or a folder that cannot be created is
 * refused with an error naming it. With `stage` (a trainer's folder name), its checkpoint folder
 * `checkpoints/<stage>` and output folder `<stage>` must be folders or absent; the checkpoint
 * folder is created and test-written, so a read-only or full file system fails here and not
 * minutes into training. Without it, `runDir` itself is test-written.
 */
export function prepareRunFolder(runDir: string, stage?: string): void {
  if (runDir.trim() === '') {
    throw new Error(
      `the run folder is ${JSON.stringify(runDir)}: name the folder the run writes its ` +
        'checkpoints and output in',
    );
  }
  const folders = stage ? ['checkpoints', path.join('checkpoints', stage), stage] : [];
  for (const sub of ['', ...folders]) {
    const dir = path.join(runDir, sub);
    if (entryKind(dir) === 'other') {
      throw new Error(
        `${dir} is a file, not a folder: the run writes in a folder there; ` +
          (sub ? 'move the file away or choose another run folder' : 'choose another run folder'),
      );
    }
  }
  const writeDir = stage ? path.join(runDir, 'checkpoints', stage) : runDir;
  try {
    fs.mkdirSync(writeDir, { recursive: true });
  } catch (error) {
    throw new Error(`cannot create the run folder ${writeDir}: ${(error as Error).message}`);
  }
  const probe = path.join(writeDir, `.write-test-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    fs.writeFileSync(probe, 'code-rlhf write test\n', { flag: 'wx' });
  } catch (error) {
    throw new Error(`cannot write in the run folder ${writeDir}: ${(error as Error).message}`);
  } finally {
    fs.rmSync(probe, { force: true });
  }
}

/** What a lock or take-over marker records about its owner: this process, now. */
function ownerContent(): string {
  const info: LockInfo = {
    pid: process.pid,
    host: os.hostname(),
    started: new Date().toISOString(),
    nonce: randomBytes(8).toString('hex'),
  };
  return JSON.stringify(info) + '\n';
}

/**
 * Creates `file` with O_EXCL holding `content`: true when this call created it, false when it
 * already exists. A file it created but could not write whole is removed before the error is
 * thrown: left empty or torn, it would read as "being created by a run that is starting" to
 * every other run for TORN_LOCK_GRACE_MS.
 */
function createExclusive(file: string, content: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx');
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false;
    throw error;
  }
  try {
    try {
      // One write(2) call, which a full disk may cut short without an error.
      const written = fs.writeSync(fd, content);
      if (written !== Buffer.byteLength(content)) {
        throw new Error(`wrote only ${written} of ${Buffer.byteLength(content)} bytes of ${file}`);
      }
    } finally {
      fs.closeSync(fd);
    }
  } catch (error) {
    fs.rmSync(file, { force: true });
    throw error;
  }
  return true;
}

/**
 * Takes `<runDir>/.lock` (the folder must exist, see prepareRunFolder). A lock held by a live
 * process, or by a process on another host (whose liveness cannot be checked here), is refused
 * naming the folder, the holder and `busyAdvice`; a dead holder's lock is taken over and `warn`
 * says so. Once the lock is taken, take-over markers left beside it by runs killed while taking
 * over are removed (see removeMarkerLeftovers), and `warn` names them. Limitation: a holder's pid
 * reused by an unrelated live process keeps the lock (or a take-over marker) looking held; the
 * refusal says to delete the file when no run uses the folder.
 */
export function lockRunFolder(
  runDir: string,
  busyAdvice: string,
  warn: (message: string) => void,
): RunFolderLock {
  const file = path.join(runDir, LOCK_FILE);
  const content = ownerContent();
  // Two rounds: the second follows the take-over of a stale lock.
  for (let attempt = 0; attempt < 2; attempt++) {
    let created: boolean;
    try {
      created = createExclusive(file, content);
    } catch (error) {
      throw new Error(`cannot lock the run folder ${runDir}: ${(error as Error).message}`);
    }
    if (created) {
      removeMarkerLeftovers(file, warn);
      return holderHandle(file, content);
    }
    const stale = staleLock(file, runDir, busyAdvice);
    if (stale === undefined) continue; // Gone meanwhile: its holder released it.
    const outcome = takeOver(file, stale, warn);
    if (outcome === 'removed') warn(`${file}: took over the lock of ${stale.holder}`);
    if (typeof outcome === 'object') {
      throw new Error(
        `the run folder ${runDir} is being locked by another run that is taking over the lock ` +
          `of ${stale.holder} (${outcome.busy}); ${busyAdvice} (if no run is starting, delete ` +
          `${outcome.busy})`,
      );
    }
  }
  const now = staleLock(file, runDir, busyAdvice);
  throw new Error(
    `cannot lock the run folder ${runDir}: another run took ${file}` +
      (now ? ` (${now.holder})` : '') +
      ` while this one started; ${busyAdvice}`,
  );
}

/** A lock file's content and identity (inode and modification time). */
interface LockFileState {
  raw: string;
  /** Tells this file from any later one at the same path, even one with the same content. */
  id: string;
  mtimeMs: number;
}

/**
 * Reads the lock file (or take-over marker, `noun`) at `file` through one descriptor, so that
 * its content and identity are of the same file; undefined when there is none.
 */
function readLockFile(file: string, noun = 'lock'): LockFileState | undefined {
  let entry: fs.Stats;
  try {
    entry = fs.lstatSync(file);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  // Checked before opening: opening a named pipe for reading would block until a writer comes.
  if (!entry.isFile()) {
    const kind = entry.isDirectory() ? 'a folder' : 'not a regular file';
    throw new Error(
      `the run folder's ${noun} ${file} is ${kind}; allowed: a ${noun} file written by a run. ` +
        'Remove it if no run is using this folder.',
    );
  }
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const stat = fs.fstatSync(fd, { bigint: true });
    const raw = fs.readFileSync(fd, 'utf8');
    return { raw, id: `${stat.ino}-${stat.mtimeNs}`, mtimeMs: Number(stat.mtimeMs) };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Whose lock (or take-over marker) `lock` is: 'starting' when it is unreadable but young (its
 * creator may be writing it), 'held' when its owner may be running (alive on this host, or on
 * another host), 'dead' when it is not (or the file is unreadable and old: a torn write).
 */
type Owner = { state: 'starting' } | { state: 'held' | 'dead'; holder: string };

function judgeOwner(lock: LockFileState): Owner {
  const held = parseLock(lock.raw);
  if (!held) {
    if (Date.now() - lock.mtimeMs < TORN_LOCK_GRACE_MS) return { state: 'starting' };
    return { state: 'dead', holder: `unreadable content ${JSON.stringify(lock.raw.slice(0, 60))}` };
  }
  const holder = `pid ${held.pid} on ${held.host}, since ${held.started}`;
  if (held.host !== os.hostname() || isAlive(held.pid)) return { state: 'held', holder };
  return { state: 'dead', holder: `${holder}, which is no longer running` };
}

/**
 * Reads the lock at `file`: undefined when it is gone; throws the "in use" error when its holder
 * may be running; else returns it with a description of the dead holder.
 */
function staleLock(
  file: string,
  runDir: string,
  busyAdvice: string,
): (LockFileState & { holder: string }) | undefined {
  const lock = readLockFile(file);
  if (lock === undefined) return undefined;
  const owner = judgeOwner(lock);
  if (owner.state === 'starting') {
    throw new Error(
      `the run folder ${runDir} is being locked by another run that is starting (${file}); ` +
        busyAdvice,
    );
  }
  if (owner.state === 'held') {
    throw new Error(
      `the run folder ${runDir} is in use by another training run (${owner.holder}); ` +
        `${busyAdvice} (if no run uses the folder, delete ${file})`,
    );
  }
  return { ...lock, holder: owner.holder };
}

/** The file whose creation (O_EXCL) entitles one run to remove the stale lock `stale`. */
function takeOverMarker(file: string, stale: LockFileState): string {
  return `${file}.takeover-${stale.id}`;
}

/** The names takeOverMarker gives LOCK_FILE's markers, and the markers of those, in the folder. */
const MARKER_NAME = /^\.lock(\.takeover-\d+-\d+)+$/;

/**
 * Levels of take-over markers: a dead owner's marker is taken over through a marker of its own,
 * and so on, down to this level, whose dead markers are refused naming the file to delete. Each
 * level needs a run killed within the microseconds it holds its marker.
 */
const MAX_MARKER_DEPTH = 3;

type TakeOverOutcome = 'removed' | 'changed' | { busy: string };

/**
 * Removes the stale lock `stale` at `file`, and only that one. Every run that found it stale
 * tries to create its marker; the one that does checks that `file` still is that lock (same
 * identity and content) and removes it. A run that read the stale lock before another replaced
 * it finds a different file and removes nothing; it cannot move a live lock aside, even for an
 * instant. Between that check and the removal nothing else can replace the file: its holder is
 * dead, only the marker's owner removes it, and a run removes leftover markers only once it holds
 * the lock, so only once this one is gone (see removeMarkerLeftovers). The marker goes once the
 * stale lock is gone, and a run that creates it later finds another file. Returns 'removed',
 * 'changed' (the lock is gone or replaced: try again) or `busy`, the marker another run holds.
 *
 * The same applies to a marker whose owner died holding it (see claimMarker): `file` is then
 * that marker, `depth` its level.
 */
function takeOver(
  file: string,
  stale: LockFileState,
  warn: (message: string) => void,
  depth = 0,
): TakeOverOutcome {
  const marker = takeOverMarker(file, stale);
  const claim = claimMarker(marker, warn, depth + 1);
  if (claim !== 'claimed') return claim;
  try {
    const now = readLockFile(file, depth === 0 ? 'lock' : 'take-over marker');
    if (now === undefined || now.id !== stale.id || now.raw !== stale.raw) return 'changed';
    fs.rmSync(file, { force: true });
    return 'removed';
  } finally {
    fs.rmSync(marker, { force: true });
  }
}

/**
 * Creates the take-over marker `marker` (at `depth`, 1 for a lock's), holding this process's
 * pid like a lock. A marker whose owner is gone (killed while taking over, or a torn or empty
 * marker past TORN_LOCK_GRACE_MS, as earlier versions wrote them) would otherwise refuse every
 * later run: it is taken over as a stale lock is, through a marker of its own, so that of several
 * runs that find it dead only one replaces it, and none replaces a live run's marker. Returns
 * 'claimed', or `busy`: the marker (of any level) that a run that may be alive holds.
 */
function claimMarker(
  marker: string,
  warn: (message: string) => void,
  depth: number,
): 'claimed' | { busy: string } {
  // Two rounds: the second follows the take-over of a dead owner's marker.
  for (let attempt = 0; attempt < 2; attempt++) {
    if (createExclusive(marker, ownerContent())) return 'claimed';
    const state = readLockFile(marker, 'take-over marker');
    if (state === undefined) continue; // Gone meanwhile: its owner finished.
    const owner = judgeOwner(state);
    if (owner.state !== 'dead' || depth >= MAX_MARKER_DEPTH) return { busy: marker };
    const outcome = takeOver(marker, state, warn, depth);
    if (typeof outcome === 'object') return outcome;
    if (outcome === 'removed') warn(`${marker}: took over the take-over marker of ${owner.holder}`);
  }
  return { busy: marker };
}

/**
 * Removes the take-over markers beside the lock `file`, which this run has just taken. They
 * are leftovers of runs killed while taking over an earlier lock: each names a lock (by inode
 * and time) that is gone now that this run's lock is in its place, and a run that holds one of
 * them finds that lock changed and removes nothing. Best effort: such a marker blocks no run (no
 * lock will have its name), so one that cannot be removed is only warned about.
 */
function removeMarkerLeftovers(file: string, warn: (message: string) => void): void {
  const dir = path.dirname(file);
  const removed: string[] = [];
  const names = fs.readdirSync(dir).filter((n) => MARKER_NAME.test(n));
  for (const name of names.sort()) {
    const marker = path.join(dir, name);
    try {
      if (!fs.lstatSync(marker).isFile()) continue;
      fs.rmSync(marker);
      removed.push(name);
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') {
        warn(
          `${marker}: could not remove this leftover take-over marker: ${(error as Error).message}`,
        );
      }
    }
  }
  if (removed.length > 0) {
    warn(
      `${dir}: removed ${removed.length} take-over marker${removed.length === 1 ? '' : 's'} ` +
        `left by runs that ended while taking over a lock (${removed.join(', ')})`,
    );
  }
}

function holderHandle(file: string, content: string): RunFolderLock {
  let released = false;
  return {
    file,
    release() {
      if (released) return;
      released = true;
      try {
        if (fs.readFileSync(file, 'utf8') === content) fs.rmSync(file, { force: true });
      } catch (error) {
        if (errorCode(error) !== 'ENOENT') throw error;
      }
    },
  };
}
