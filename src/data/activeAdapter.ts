/**
 * The active adapter pointer: one small JSON file that names the adapter completions use, or
 * says that they use the base model. Every window of the editor (and anything else that wants to
 * know the completion policy) reads the same file, so a choice made in one window reaches the
 * others; the last writer wins.
 *
 * Format (`<global storage>/training/active-adapter.json`):
 * `{"version": 1, "adapter": {"name", "path", "modelDir", "modelFingerprint"?}}`, or
 * `{"version": 1, "adapter": null}` for the base model. Choosing the base model writes that
 * second form rather than deleting the file: a missing file means "never chosen" (and lets an
 * older version's saved choice be migrated), a written base model means "chosen".
 *
 * Writes go through {@link writeFileAtomic} (temp file, fsync, rename), so a reader sees the old
 * pointer or the new one. A pointer that cannot be parsed anyway (edited by hand, a disk fault)
 * is moved aside as `active-adapter.json.corrupt-<time>`, never deleted, and the base model is
 * used; the caller is told what was wrong and where the file went. So is a file over
 * {@link MAX_POINTER_BYTES}, which is not read whole; a named pipe, device or folder at the
 * pointer's path is left in place unread (reading it could block the window's start).
 */
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from './atomicWrite';

export const ADAPTER_POINTER_VERSION = 1;
export const ADAPTER_POINTER_FILE = 'active-adapter.json';

/** The adapter a pointer names: all a window needs to decide whether it applies to its model. */
export interface AdapterPointer {
  /** Name shown in the status bar and stored in records, e.g. "run-20261204T181500 ppo". */
  name: string;
  /** Adapter folder (PEFT format), absolute. */
  path: string;
  /** Model folder it was trained on, absolute: it only applies on top of that model. */
  modelDir: string;
  /** Fingerprint of the weights it was trained on, when known (older choices lack it). */
  modelFingerprint?: string;
}

/** Validates an adapter value (from a pointer, or from an older version's saved state). */
export function validateAdapterPointer(value: unknown): AdapterPointer | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return `expected an object {name, path, modelDir, modelFingerprint?}, got ${preview(value)}`;
  }
  const v = value as Record<string, unknown>;
  if (typeof v.name !== 'string' || v.name.length === 0) {
    return `"name" is ${preview(v.name)}; allowed: a non-empty string`;
  }
  for (const key of ['path', 'modelDir'] as const) {
    const p = v[key];
    if (typeof p !== 'string' || !path.isAbsolute(p)) {
      return `"${key}" is ${preview(p)}; allowed: an absolute path`;
    }
  }
  if (
    v.modelFingerprint !== undefined &&
    (typeof v.modelFingerprint !== 'string' || v.modelFingerprint.length === 0)
  ) {
    return `"modelFingerprint" is ${preview(v.modelFingerprint)}; allowed: a non-empty string or absent`;
  }
  return {
    name: v.name,
    path: v.path as string,
    modelDir: v.modelDir as string,
    ...(v.modelFingerprint !== undefined ? { modelFingerprint: v.modelFingerprint as string } : {}),
  };
}

/** Parses a pointer file's text: the adapter (null: the base model), or what is wrong. */
export function parseAdapterPointer(text: string): { adapter: AdapterPointer | null } | string {
  const body = text.replace(/^\uFEFF/, '');
  if (body.trim() === '') return 'is empty (a write cut short?)';
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (error) {
    return `is not valid JSON (${(error as Error).message})`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return `holds ${preview(value)}; allowed: a JSON object`;
  }
  const v = value as Record<string, unknown>;
  if (v.version !== ADAPTER_POINTER_VERSION) {
    return `has "version" ${preview(v.version)}; allowed: ${ADAPTER_POINTER_VERSION}`;
  }
  if (!('adapter' in v)) {
    return 'has no "adapter"; allowed: null (the base model) or {name, path, modelDir, modelFingerprint?}';
  }
  if (v.adapter === null) return { adapter: null };
  const adapter = validateAdapterPointer(v.adapter);
  return typeof adapter === 'string' ? `has a bad "adapter": ${adapter}` : { adapter };
}

/** The text written for `adapter` (null: the base model). */
export function formatAdapterPointer(adapter: AdapterPointer | null): string {
  return `${JSON.stringify({ version: ADAPTER_POINTER_VERSION, adapter }, null, 2)}\n`;
}

/** What reading the pointer found. `adapter` is null (base model) unless `kind` is "ok". */
export type PointerRead =
  | { kind: 'missing'; adapter: null }
  | { kind: 'ok'; adapter: AdapterPointer | null }
  /** Unparseable; `problem` names the file, what was wrong and where the file went. */
  | { kind: 'corrupt'; adapter: null; problem: string }
  /** The file is there but cannot be read (a folder, no permission); left in place. */
  | { kind: 'unreadable'; adapter: null; problem: string };

/** The outcome of {@link AdapterPointerFile.open}'s migration of an older version's choice. */
export interface Migration {
  /** Whether the older version's saved value may now be forgotten (written, or superseded). */
  done: boolean;
  /** Why it was not used or not written, to show the user. */
  problem?: string;
}

/**
 * One window's handle on the pointer file. It remembers the content it last read or wrote, so
 * {@link refresh} reports a change only when someone else (another window) wrote the file.
 * Writes and re-reads run one at a time in call order.
 */
export class AdapterPointerFile {
  /** Raw content last read or written; null: the file was missing; undefined: not read yet. */
  private seen: string | null | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly file: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * Reads the pointer at startup. Synchronous on purpose: the adapter must be known before the
   * first completion request, and the file is a few hundred bytes. `legacy` is the choice an
   * older version kept elsewhere (undefined if none): used and written to the pointer once,
   * when no pointer exists yet; `migration` settles when it has been written.
   */
  open(legacy?: unknown): { read: PointerRead; migration?: Promise<Migration> } {
    const read = this.readNow();
    if (legacy === undefined || legacy === null) return { read };
    if (read.kind !== 'missing') {
      // The pointer is the newer record; the older one is superseded, not merged.
      return { read, migration: Promise.resolve({ done: true }) };
    }
    const adapter = validateAdapterPointer(legacy);
    if (typeof adapter === 'string') {
      return {
        read,
        migration: Promise.resolve({
          done: true,
          problem: `ignoring the active adapter saved by an earlier version (${adapter}); using the base model`,
        }),
      };
    }
    const migration = this.enqueue(async (): Promise<Migration> => {
      // Another window may have written the pointer (or migrated the same value) meanwhile.
      if (fs.existsSync(this.file)) return { done: true };
      try {
        await this.writeNow(adapter);
        return { done: true };
      } catch (error) {
        return {
          done: false,
          problem:
            `could not write the active adapter pointer ${this.file} ` +
            `(${(error as Error).message}); adapter ${adapter.name} is used in this window only`,
        };
      }
    });
    return { read: { kind: 'ok', adapter }, migration };
  }

  /** Points at `adapter` (null: the base model), atomically; rejects if it cannot be written. */
  write(adapter: AdapterPointer | null): Promise<void> {
    return this.enqueue(() => this.writeNow(adapter));
  }

  /**
   * Re-reads the pointer; resolves with what it holds if it changed since this handle last read
   * or wrote it (another window chose), undefined if not.
   */
  refresh(): Promise<PointerRead | undefined> {
    return this.enqueue(async () => {
      const before = this.seen;
      const read = this.readNow();
      // A pointer just moved aside is news even though the file is now missing as before.
      return this.seen === before && read.kind !== 'corrupt' ? undefined : read;
    });
  }

  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    const result = this.queue.then(op, op);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async writeNow(adapter: AdapterPointer | null): Promise<void> {
    if (adapter !== null) {
      const problem = validateAdapterPointer(adapter);
      if (typeof problem === 'string') throw new Error(`active adapter: ${problem}`);
    }
    const text = formatAdapterPointer(adapter);
    await fs.promises.mkdir(path.dirname(this.file), { recursive: true });
    await writeFileAtomic(this.file, text);
    this.seen = text;
  }

  private readNow(): PointerRead {
    // A pointer replaced while it is being moved aside is read again (twice at most).
    for (let attempt = 0; ; attempt++) {
      let snapshot: PointerSnapshot;
      try {
        snapshot = readPointerSnapshot(this.file);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        // ENOTDIR: a file where the folder should be; there is no pointer either way.
        if (code === 'ENOENT' || code === 'ENOTDIR') {
          this.seen = null;
          return { kind: 'missing', adapter: null };
        }
        this.seen = `\u0000unreadable ${code ?? (error as Error).message}`;
        return {
          kind: 'unreadable',
          adapter: null,
          problem:
            `the active adapter pointer ${this.file} cannot be read ` +
            `(${(error as Error).message}); it is left as it is; using the base model`,
        };
      }
      if (snapshot.kind === 'special') {
        this.seen = snapshot.key;
        return {
          kind: 'unreadable',
          adapter: null,
          problem:
            `the active adapter pointer ${this.file} cannot be read (it is ${snapshot.what}, ` +
            'not a regular file); it is left as it is; using the base model',
        };
      }
      let parsed: ReturnType<typeof parseAdapterPointer>;
      if (snapshot.kind === 'oversized') {
        parsed =
          `is ${snapshot.size} bytes; allowed: at most ${MAX_POINTER_BYTES} ` +
          '(a pointer is a few hundred)';
      } else {
        try {
          parsed = parseAdapterPointer(
            new TextDecoder('utf-8', { fatal: true }).decode(snapshot.bytes),
          );
        } catch {
          parsed = 'is not valid UTF-8';
        }
      }
      if (typeof parsed !== 'string') {
        this.seen = snapshot.key;
        return { kind: 'ok', adapter: parsed.adapter };
      }
      const where = this.moveAside(snapshot.key);
      if (where === undefined && attempt < 2) continue;
      this.seen = fs.existsSync(this.file) ? snapshot.key : null;
      return {
        kind: 'corrupt',
        adapter: null,
        problem:
          `the active adapter pointer ${this.file} ${parsed}; ` +
          `${where ?? 'it keeps changing and is left in place'}; using the base model`,
      };
    }
  }

  /**
   * Renames the unparseable pointer read as `key` aside; says where it went or why it stayed,
   * or undefined when the file no longer holds it (someone wrote a new pointer: read again).
   */
  private moveAside(key: string): string | undefined {
    const stamp = this.now().toISOString().replace(/[-:.]/g, '');
    let aside = `${this.file}.corrupt-${stamp}`;
    for (let i = 1; fs.existsSync(aside); i++) aside = `${this.file}.corrupt-${stamp}-${i}`;
    try {
      // Limitation: another window could replace the file between this check and the rename;
      // its fresh pointer would then be moved aside (kept, not lost) and this window would use
      // the base model. The gap is microseconds wide and a corrupt pointer is itself rare.
      if (readPointerSnapshot(this.file).key !== key) return undefined;
      fs.renameSync(this.file, aside);
      return `it is kept as ${aside}`;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return 'another window has already moved it aside';
      }
      return `it could not be moved aside (${(error as Error).message}) and is left in place`;
    }
  }
}

/**
 * Largest pointer file read. A pointer is a few hundred bytes (two paths, a name, a digest);
 * anything far bigger is not one, and reading it whole would stall the window's start.
 */
export const MAX_POINTER_BYTES = 64 * 1024;

/**
 * What the pointer path holds. `key` identifies the content for change detection: the bytes
 * themselves, or for a file not read (too big, not a regular file) its identity and size.
 */
type PointerSnapshot =
  | { kind: 'bytes'; bytes: Buffer; key: string }
  | { kind: 'oversized'; size: number; key: string }
  | { kind: 'special'; what: string; key: string };

/**
 * Reads the pointer without ever blocking on it or reading more than {@link MAX_POINTER_BYTES}
 * + 1 bytes: a FIFO, a device (a link to /dev/zero) or a huge file at the pointer's path would
 * otherwise hang the window's start or fill its memory. Opened non-blocking (a FIFO with no
 * writer would block the open itself) and checked with fstat on the same descriptor, so the
 * check and the read see the same file. Throws the file system's error when it cannot be opened.
 */
function readPointerSnapshot(file: string): PointerSnapshot {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  try {
    const stat = fs.fstatSync(fd);
    const identity = `\u0000${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}`;
    if (!stat.isFile()) {
      const what = stat.isDirectory()
        ? 'a folder'
        : stat.isFIFO()
          ? 'a named pipe'
          : stat.isSocket()
            ? 'a socket'
            : 'a device';
      return { kind: 'special', what, key: `${identity} ${what}` };
    }
    // Read in a loop rather than trusting the size: the file may grow while it is read.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(MAX_POINTER_BYTES + 1 - total, 16 * 1024));
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > MAX_POINTER_BYTES) {
        return { kind: 'oversized', size: Math.max(stat.size, total), key: identity };
      }
    }
    const bytes = Buffer.concat(chunks);
    return { kind: 'bytes', bytes, key: bytes.toString('latin1') };
  } finally {
    fs.closeSync(fd);
  }
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
