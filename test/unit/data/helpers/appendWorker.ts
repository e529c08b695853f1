/**
 * Child process for the concurrency and crash tests: appends `count` records through the
 * store API and prints "ack <id>" (synchronously, to a pipe) after each append resolves.
 * Waits for "go" on stdin before starting, so two workers start together.
 * argv: storePath idPrefix first count textBytes mode(sequential|unawaited); ids are
 * idPrefix + first .. idPrefix + (first + count - 1).
 */
import { writeSync } from 'fs';
import { openStore } from '../../../../src/data/store';
import { sampleJudgment } from './records';

async function main(): Promise<void> {
  const [storePath, idPrefix, firstText, countText, bytesText, mode] = process.argv.slice(2);
  const first = Number(firstText);
  const count = Number(countText);
  const textBytes = Number(bytesText);
  const store = await openStore(storePath);
  writeSync(1, 'ready\n');
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  const make = (i: number) => {
    // Vary the size a little so kills land at different points of a line.
    const size = Math.max(16, textBytes - ((i * 37) % 512));
    const record = sampleJudgment(`${idPrefix}${i}`);
    record.candidates[0].text = `# ${idPrefix}${i}\n` + 'x'.repeat(size);
    return record;
  };
  const indices = Array.from({ length: count }, (_, k) => first + k);
  if (mode === 'unawaited') {
    await Promise.all(
      indices.map((i) => store.append(make(i)).then(() => writeSync(1, `ack ${idPrefix}${i}\n`))),
    );
  } else {
    for (const i of indices) {
      await store.append(make(i));
      writeSync(1, `ack ${idPrefix}${i}\n`);
    }
  }
  writeSync(1, 'done\n');
  process.exit(0);
}

main().catch((error: unknown) => {
  writeSync(2, `worker error: ${(error as Error).stack}\n`);
  process.exit(1);
});
