import { randomBytes } from 'crypto';
import { promises as fsp } from 'fs';
import * as path from 'path';

/**
 * Writes a file by writing a temporary file in the same folder, flushing it, and renaming it over
 * the target, then flushing the folder: readers see the old content or the new, never a mix, and
 * a crash leaves at most a stray `*.tmp-*` file. `chunks` may be a string, a Buffer, or an
 * (async) iterable of strings so large exports need not be held in memory at once.
 */
export async function writeFileAtomic(
  target: string,
  chunks: string | Buffer | Iterable<string> | AsyncIterable<string>,
): Promise<void> {
  const dir = path.dirname(target);
  const temp = path.join(
    dir,
    `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`,
  );
  const handle = await fsp.open(temp, 'wx');
  try {
    if (typeof chunks === 'string' || Buffer.isBuffer(chunks)) {
      await handle.writeFile(chunks);
    } else {
      let batch: string[] = [];
      let size = 0;
      for await (const chunk of chunks as AsyncIterable<string>) {
        batch.push(chunk);
        size += chunk.length;
        if (size > 1 << 20) {
          await handle.write(batch.join(''));
          batch = [];
          size = 0;
        }
      }
      if (batch.length > 0) await handle.write(batch.join(''));
    }
    await handle.sync();
  } catch (error) {
    await handle.close();
    await fsp.rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await fsp.rename(temp, target);
  } catch (error) {
    await fsp.rm(temp, { force: true });
    throw error;
  }
  await syncDir(dir);
}

/** Flushes a folder entry (new or renamed files) to disk; a no-op where folders cannot be opened. */
export async function syncDir(dir: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(dir, 'r');
    await handle.sync();
  } catch {
    // Limitation: Windows cannot open or fsync a directory; rename durability is then up to NTFS.
  } finally {
    await handle?.close();
  }
}
