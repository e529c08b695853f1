/**
 * A training run's folder, checked before any trainer runs. A folder path that cannot be written
 * would otherwise fail with a raw OS error only after the model and data have loaded (a file
 * where the folder should be), or minutes into training (a file where the checkpoint folder
 * should be); an empty path would resolve to the current folder and train into it.
 */
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
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
