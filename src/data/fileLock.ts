import { randomBytes } from 'crypto';
import { promises as fsp } from 'fs';
import * as os from 'os';

/** Settings for {@link acquireLock}. */
export interface LockOptions {
  /** Give up after waiting this long for another holder (ms). Default 15000. */
  timeoutMs?: number;
  /**
   * A lock older than this is considered abandoned even if its pid looks alive (pid reuse after
   * a crash or reboot). Holders of long operations call `touch()` to stay fresh. Default 30000.
   */
  staleMs?: number;
}

export class LockTimeoutError extends Error {}

interface LockInfo {
  pid: number;
  host: string;
  nonce: string;
  time: number;
}

/** A held lock. `release()` removes the lock file only if it is still ours. */
export interface LockHandle {
  readonly path: string;
  touch(): Promise<void>;
  release(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A lock file being written by its creator is given this long before it counts as torn. */
const EMPTY_LOCK_GRACE_MS = 2000;
/** The breaker lock only guards a read-compare-unlink; older than this, its holder died. */
const BREAKER_STALE_MS = 5000;

/**
 * Whether process `pid` of this host exists (the store's locks, the run-folder lock and the
 * editor's run records judge their holders by it). Limitation: a reused pid looks alive.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readLock(
  path: string,
): Promise<{ info: LockInfo | null; raw: string; mtimeMs: number } | null> {
  try {
    const [raw, stat] = await Promise.all([fsp.readFile(path, 'utf8'), fsp.stat(path)]);
    let info: LockInfo | null = null;
    try {
      const parsed = JSON.parse(raw) as Partial<LockInfo>;
      if (typeof parsed.pid === 'number' && typeof parsed.nonce === 'string')
        info = parsed as LockInfo;
    } catch {
      info = null;
    }
    return { info, raw, mtimeMs: stat.mtimeMs };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

function isStale(lock: { info: LockInfo | null; mtimeMs: number }, staleMs: number): boolean {
  const age = Date.now() - lock.mtimeMs;
  if (lock.info === null) return age > EMPTY_LOCK_GRACE_MS;
  if (lock.info.host === os.hostname() && !isAlive(lock.info.pid)) return true;
  return age > staleMs;
}

/**
 * Removes a stale lock, but only the exact one judged stale: two waiters that both see the
 * same stale lock must not have the second one delete the fresh lock the first one created.
 * A short-lived breaker file (O_EXCL) serialises the read-compare-unlink.
 */
async function breakStaleLock(path: string, staleRaw: string): Promise<boolean> {
  const breaker = `${path}.break`;
  try {
    const handle = await fsp.open(breaker, 'wx');
    await handle.close();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const stat = await fsp.stat(breaker).catch(() => null);
    // Limitation: a breaker abandoned by a process killed inside this function is removed by age,
    // which assumes no live process spends BREAKER_STALE_MS inside it.
    if (stat && Date.now() - stat.mtimeMs > BREAKER_STALE_MS)
      await fsp.rm(breaker, { force: true });
    return false;
  }
  try {
    const current = await readLock(path);
    if (current && current.raw === staleRaw) {
      await fsp.rm(path, { force: true });
      return true;
    }
    return false;
  } finally {
    await fsp.rm(breaker, { force: true });
  }
}

/**
 * Takes an inter-process lock by creating `path` with O_CREAT|O_EXCL. The file records pid,
 * host, a random nonce and the time; a lock whose pid is dead on this host, or that is older
 * than `staleMs`, is broken. Waits with capped exponential backoff up to `timeoutMs`.
 */
export async function acquireLock(path: string, options: LockOptions = {}): Promise<LockHandle> {
  const timeoutMs = options.timeoutMs ?? 15000;
  const staleMs = options.staleMs ?? 30000;
  const info: LockInfo = {
    pid: process.pid,
    host: os.hostname(),
    nonce: randomBytes(12).toString('hex'),
    time: Date.now(),
  };
  const content = JSON.stringify(info);
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  for (;;) {
    try {
      const handle = await fsp.open(path, 'wx');
      try {
        await handle.writeFile(content);
      } finally {
        await handle.close();
      }
      return makeHandle(path, content);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const existing = await readLock(path);
    // Retry at once after removing a stale lock; otherwise wait (someone else may be breaking it).
    if (existing && isStale(existing, staleMs) && (await breakStaleLock(path, existing.raw))) {
      continue;
    }
    if (Date.now() > deadline) {
      const holder = existing?.info
        ? `pid ${existing.info.pid} on ${existing.info.host}`
        : 'unknown';
      throw new LockTimeoutError(
        `could not lock ${path} within ${timeoutMs} ms; held by ${holder}. ` +
          `If no code-rlhf process is running, delete the lock file.`,
      );
    }
    await sleep(delay + Math.random() * delay);
    delay = Math.min(delay * 2, 8);
  }
}

function makeHandle(path: string, content: string): LockHandle {
  let released = false;
  return {
    path,
    async touch() {
      const now = new Date();
      await fsp.utimes(path, now, now);
    },
    async release() {
      if (released) return;
      released = true;
      const current = await readLock(path);
      if (current && current.raw === content) await fsp.rm(path, { force: true });
    },
  };
}
