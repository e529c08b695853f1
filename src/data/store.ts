import { randomBytes } from 'crypto';
import { promises as fsp } from 'fs';
import * as path from 'path';
import type { PreferenceRecord } from '../protocol/records';
import { syncDir, writeFileAtomic } from './atomicWrite';
import { acquireLock, type LockOptions } from './fileLock';
import { readLines } from './jsonl';
import { isAbsolutePathLike } from './paths';
import { redactRecord } from './redact';
import { RecordValidationError, parseRecordLine, validateRecord } from './recordSchema';

/** Settings for {@link openStore}. */
export interface StoreOptions {
  /** Redact secrets from every text field before writing (default true). */
  redact?: boolean;
  /** Accept absolute paths in `file`/`workspace` (default false: they are rejected). */
  allowAbsolutePaths?: boolean;
  /** Inter-process lock timing. */
  lock?: LockOptions;
}

/** Outcome of one append. */
export interface AppendResult {
  id: string;
  /** False when a record with this id was already stored (the call was a no-op). */
  written: boolean;
}

/** What {@link PreferenceStore.repair} did to an unterminated last line left by a crash. */
export interface RepairReport {
  /** Bytes after the last newline that were not a complete record. */
  tornBytes: number;
  /** Where those bytes were moved (never deleted), or null when there were none. */
  sideFile: string | null;
  /** True when the tail was a complete valid record missing only its newline (kept in place). */
  completedLine: boolean;
}

/** A durable, append-only JSONL file of preference records shared by processes. */
export interface PreferenceStore {
  readonly path: string;
  /**
   * Validates, redacts and appends one record as a single write of one complete line, flushed
   * to disk before the promise resolves. Safe to call without awaiting: calls are queued in
   * order, and an inter-process lock keeps other windows and the CLI from interleaving.
   * A record whose id is already stored is not written again (`written: false`).
   */
  append(record: PreferenceRecord): Promise<AppendResult>;
  /**
   * Appends many records under one lock and one flush (each still one complete line). All are
   * validated first: one invalid record rejects the whole batch and nothing is written.
   */
  appendMany(records: readonly PreferenceRecord[]): Promise<AppendResult[]>;
  /** All records, validated strictly; throws naming the line of the first bad one. */
  readAll(): Promise<PreferenceRecord[]>;
  /** Number of stored records (distinct ids). */
  count(): Promise<number>;
  /** Moves a torn last line (from a crash) to a side file; runs before every write anyway. */
  repair(): Promise<RepairReport>;
  /**
   * Rewrites the whole file (dedupe, compaction) through temp-file-then-rename under the lock.
   * `transform` gets every record and returns the records to keep.
   */
  rewrite(transform: (records: PreferenceRecord[]) => PreferenceRecord[]): Promise<number>;
}

export class StoreError extends Error {}

interface Index {
  ino: number;
  bytes: number;
  ids: Set<string>;
  nextLine: number;
}

/**
 * Opens (creating its folder if needed) the preference store at `file`. The file itself is
 * created on the first append.
 *
 * Limitation: the first locked call of a handle scans the whole file to learn the stored ids
 * (later calls read only what other processes appended since); the ids are kept in memory.
 * Limitation: on Windows, `rewrite` fails (and leaves the file as it was) if another program
 * holds the file open, because a file cannot be renamed over while open there.
 */
export async function openStore(
  file: string,
  options: StoreOptions = {},
): Promise<PreferenceStore> {
  await fsp.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  // The real path: a store reached through a symlink must share the lock file with handles
  // that use the target, and `rewrite` must replace the target, not the link.
  const storePath = await fsp
    .realpath(file)
    .catch(async () =>
      path.join(await fsp.realpath(path.dirname(path.resolve(file))), path.basename(file)),
    );
  const lockPath = `${storePath}.lock`;
  const redact = options.redact ?? true;
  const index: Index = { ino: -1, bytes: 0, ids: new Set(), nextLine: 1 };
  let queue: Promise<unknown> = Promise.resolve();

  /** Runs `op` after every earlier call of this store, holding the inter-process lock. */
  function locked<T>(op: () => Promise<T>): Promise<T> {
    const run = queue.then(async () => {
      const lock = await acquireLock(lockPath, options.lock);
      try {
        return await op();
      } finally {
        await lock.release();
      }
    });
    queue = run.catch(() => undefined);
    return run;
  }

  /** Brings the id index up to date with what other processes appended; repairs a torn tail. */
  async function syncIndex(): Promise<RepairReport> {
    const report: RepairReport = { tornBytes: 0, sideFile: null, completedLine: false };
    const stat = await fsp.stat(storePath).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw error;
    });
    if (stat === null) {
      Object.assign(index, { ino: -1, bytes: 0, ids: new Set(), nextLine: 1 });
      return report;
    }
    if (stat.ino !== index.ino || stat.size < index.bytes) {
      Object.assign(index, { ino: stat.ino, bytes: 0, ids: new Set(), nextLine: 1 });
    }
    for await (const line of readLines(storePath, index.bytes, index.nextLine, true)) {
      if (!line.terminated) {
        await repairTail(line.start, line.invalidUtf8 ? null : line.text, report);
        break;
      }
      index.bytes = line.end;
      index.nextLine = line.line + 1;
      if (line.invalidUtf8 || line.text.trim() === '') continue;
      const id = idOf(line.text);
      // Limitation: a corrupt line in the middle (not written by this code) is left in place
      // for `data validate` to report; appends continue after it.
      if (id !== null) index.ids.add(id);
    }
    return report;
  }

  /** `text` is null when the torn bytes are not even valid UTF-8 (cut inside a character). */
  async function repairTail(
    start: number,
    text: string | null,
    report: RepairReport,
  ): Promise<void> {
    const handle = await fsp.open(storePath, 'r+');
    try {
      const size = (await handle.stat()).size;
      let record: PreferenceRecord | null = null;
      try {
        record = text === null ? null : parseRecordLine(text, index.nextLine);
      } catch {
        record = null;
      }
      if (record !== null) {
        // The crash hit between the record's last byte and its newline: keep it, finish it.
        await handle.write('\n', size);
        await handle.datasync();
        index.ids.add(record.id);
        index.bytes = size + 1;
        index.nextLine++;
        report.completedLine = true;
        return;
      }
      const torn = Buffer.alloc(size - start);
      await handle.read(torn, 0, torn.length, start);
      const sideFile = `${storePath}.torn-${Date.now()}-${process.pid}-${randomBytes(4).toString('hex')}`;
      await fsp.writeFile(sideFile, torn, { flag: 'wx' });
      const side = await fsp.open(sideFile, 'r');
      await side.sync();
      await side.close();
      await syncDir(path.dirname(storePath));
      await handle.truncate(start);
      await handle.datasync();
      index.bytes = start;
      report.tornBytes = torn.length;
      report.sideFile = sideFile;
    } finally {
      await handle.close();
    }
  }

  function prepare(record: PreferenceRecord): PreferenceRecord {
    const valid = validateRecord(record);
    if (!options.allowAbsolutePaths) {
      for (const key of ['file', 'workspace'] as const) {
        const value = valid[key];
        if (value !== null && isAbsolutePathLike(value)) {
          throw new RecordValidationError(
            key,
            `absolute path ${JSON.stringify(value)} not allowed; store a workspace-relative path ` +
              `(or open the store with allowAbsolutePaths)`,
          );
        }
      }
    }
    return redact ? redactRecord(valid) : valid;
  }

  async function writeLines(records: readonly PreferenceRecord[]): Promise<AppendResult[]> {
    const prepared = records.map(prepare);
    // Serialized before the index changes: a record that cannot be written as JSON must not
    // leave its id marked as stored (a later valid append of it would be dropped).
    const serialized = prepared.map((record) => {
      try {
        return JSON.stringify(record) + '\n';
      } catch (error) {
        throw new RecordValidationError(
          '(record)',
          `id ${JSON.stringify(record.id)} cannot be written as JSON: ${(error as Error).message}`,
        );
      }
    });
    await syncIndex();
    const results: AppendResult[] = [];
    const lines: string[] = [];
    prepared.forEach((record, i) => {
      const written = !index.ids.has(record.id);
      results.push({ id: record.id, written });
      if (written) {
        index.ids.add(record.id);
        lines.push(serialized[i]);
      }
    });
    if (lines.length === 0) return results;
    const created = index.ino === -1;
    const buffer = Buffer.from(lines.join(''), 'utf8');
    let handle: fsp.FileHandle | undefined;
    try {
      // Opened inside the try: a failed open (read-only file, full disk) must also unmark ids.
      handle = await fsp.open(storePath, 'a');
      let offset = 0;
      while (offset < buffer.length) {
        const { bytesWritten } = await handle.write(buffer, offset, buffer.length - offset);
        offset += bytesWritten;
      }
      await handle.datasync();
      const stat = await handle.stat();
      index.ino = stat.ino;
      index.bytes = stat.size;
      index.nextLine += lines.length;
    } catch (error) {
      for (const result of results) if (result.written) index.ids.delete(result.id);
      throw new StoreError(`could not append to ${storePath}: ${(error as Error).message}`);
    } finally {
      await handle?.close();
    }
    if (created) await syncDir(path.dirname(storePath));
    return results;
  }

  async function readStrict(): Promise<PreferenceRecord[]> {
    const records: PreferenceRecord[] = [];
    try {
      for await (const line of readLines(storePath)) {
        if (line.text.trim() === '') continue;
        records.push(parseRecordLine(line.text, line.line, storePath));
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    return records;
  }

  return {
    path: storePath,
    append: (record) => locked(async () => (await writeLines([record]))[0]),
    appendMany: (records) => locked(() => writeLines(records)),
    readAll: () =>
      locked(async () => {
        await syncIndex();
        return readStrict();
      }),
    count: () =>
      locked(async () => {
        await syncIndex();
        return index.ids.size;
      }),
    repair: () => locked(syncIndex),
    rewrite: (transform) =>
      locked(async () => {
        await syncIndex();
        const kept = transform(await readStrict()).map(prepare);
        await writeFileAtomic(
          storePath,
          kept.map((r) => JSON.stringify(r) + '\n'),
        );
        Object.assign(index, { ino: -1, bytes: 0, ids: new Set(), nextLine: 1 });
        await syncIndex();
        return kept.length;
      }),
  };
}

function idOf(text: string): string | null {
  try {
    const value = JSON.parse(text) as { id?: unknown };
    return typeof value.id === 'string' ? value.id : null;
  } catch {
    return null;
  }
}
