/**
 * A cheap fingerprint of a model folder's weights, for the two places that must notice weights
 * replaced behind the same path: the editor's adapter history (an adapter only applies over the
 * weights it was trained on) and the trainers' resume check (a run must not continue on other
 * weights). It lives here because both the extension and src/rlhf may import src/data.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

/** Bytes read per sample of a weight file, and samples spread over each file. */
const SAMPLE_BYTES = 4096;
const SAMPLES = 64;

/**
 * A fingerprint of the weights in `modelDir`, so that nothing trained on one set of weights is
 * used with other weights put in the same folder (a model retrained or updated in place has the
 * same path and, for the same architecture, the same safetensors headers). Hashes `config.json`
 * and, for every `*.safetensors` file, its name, size, first and last 64 KiB and 64 samples of
 * 4 KiB spread over it. Undefined when the folder cannot be read or holds no safetensors file.
 *
 * Limitation: sampled, not a hash of every byte (reading gigabytes at every window start or
 * resume is too slow); weights that differ only between the samples (a merge that changed a few
 * tensors of a large model) can give the same fingerprint.
 */
export function modelFingerprint(modelDir: string): string | undefined {
  try {
    const hash = createHash('sha256');
    const config = path.join(modelDir, 'config.json');
    hash.update(fs.existsSync(config) ? fs.readFileSync(config) : Buffer.alloc(0));
    const files = fs
      .readdirSync(modelDir)
      .filter((name) => name.endsWith('.safetensors'))
      .sort();
    if (files.length === 0) return undefined;
    const buffer = Buffer.alloc(65536);
    for (const name of files) {
      const fd = fs.openSync(path.join(modelDir, name), 'r');
      try {
        const size = fs.fstatSync(fd).size;
        hash.update(`\u0000${name}\u0000${size}\u0000`);
        const read = (position: number, length: number) => {
          const n = fs.readSync(fd, buffer, 0, Math.min(length, size - position), position);
          hash.update(buffer.subarray(0, n));
        };
        read(0, buffer.length);
        for (let i = 0; i < SAMPLES; i++) {
          read(Math.max(0, Math.floor(((size - SAMPLE_BYTES) * i) / SAMPLES)), SAMPLE_BYTES);
        }
        read(Math.max(0, size - buffer.length), buffer.length);
      } finally {
        fs.closeSync(fd);
      }
    }
    return hash.digest('hex').slice(0, 32);
  } catch {
    return undefined;
  }
}
