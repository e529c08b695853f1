import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface PackedTarball {
  id: string;
  file: string;
}

/**
 * `npm pack name@spec` into `folder`, returning the resolved `name@version` and tarball path.
 * Install scripts never run: `npm pack` only downloads the registry tarball.
 */
export async function packPackage(
  name: string,
  spec: string,
  folder: string,
): Promise<PackedTarball> {
  const target = `${name}@${spec}`;
  let stdout: string;
  try {
    ({ stdout } = await run(
      'npm',
      ['pack', target, '--json', '--ignore-scripts', '--pack-destination', folder],
      { maxBuffer: 64 * 1024 * 1024 },
    ));
  } catch (error) {
    const detail = (error as { stderr?: string }).stderr ?? String(error);
    throw new Error(`npm pack ${target} failed: ${detail.trim().split('\n').slice(-3).join(' ')}`);
  }
  const parsed = JSON.parse(stdout) as { id: string; filename: string }[];
  if (!Array.isArray(parsed) || parsed.length !== 1) {
    throw new Error(`npm pack ${target}: expected one tarball in the JSON output, got ${stdout}`);
  }
  const file = join(folder, parsed[0].filename);
  if (!existsSync(file)) throw new Error(`npm pack ${target}: ${file} was not written`);
  return { id: parsed[0].id, file };
}

/** Runs `task` over `items` with at most `limit` in flight; results keep the input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
