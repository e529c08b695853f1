import { createHash } from 'node:crypto';

/**
 * Exact and near-duplicate removal.
 *
 * Exact: SHA-256 of the text with line endings and trailing whitespace normalized, so a CRLF
 * copy of a file is the same file. Near: MinHash over 5-token shingles (Broder, "On the
 * resemblance and containment of documents", 1997) with LSH banding (Leskovec, Rajaraman and
 * Ullman, Mining of Massive Datasets, ch. 3): 128 hashes in 32 bands of 4 rows put two files
 * with Jaccard similarity s in a common bucket with probability 1 - (1 - s^4)^32, which is
 * above 0.99 for s >= 0.5; candidates are then kept apart only when their estimated
 * similarity is below `threshold`.
 */
export interface DedupConfig {
  /** Estimated Jaccard similarity at or above which a later file is dropped as a near copy. */
  threshold: number;
  /** Tokens per shingle. */
  shingle: number;
  /** LSH bands; `hashes / bands` rows each. */
  bands: number;
  /** MinHash functions. */
  hashes: number;
}

export const DEFAULT_DEDUP: DedupConfig = { threshold: 0.85, shingle: 5, bands: 32, hashes: 128 };

export function exactKey(text: string): string {
  const normalized = text
    .replace(/\r\n?/g, '\n')
    .replace(/[ \t]+$/gm, '')
    .trim();
  return createHash('sha256').update(normalized).digest('hex');
}

/** Murmur3's 32-bit finalizer: a cheap, well-mixed integer hash. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

const TOKEN = /[A-Za-z_$][\w$]*|\d+|[^\s\w]/g;

/** MinHash signature of a text's token shingles; every hash slot is a uint32. */
export function minHash(text: string, config: DedupConfig = DEFAULT_DEDUP): Uint32Array {
  const tokens = (text.match(TOKEN) ?? []).map(hashString);
  const signature = new Uint32Array(config.hashes).fill(0xffffffff);
  const count = Math.max(1, tokens.length - config.shingle + 1);
  for (let start = 0; start < count; start++) {
    let shingle = 0x9747b28c;
    for (let k = start; k < Math.min(tokens.length, start + config.shingle); k++) {
      shingle = mix32(shingle ^ tokens[k]);
    }
    for (let h = 0; h < config.hashes; h++) {
      const value = mix32(shingle ^ Math.imul(h + 1, 0x9e3779b1));
      if (value < signature[h]) signature[h] = value;
    }
  }
  return signature;
}

export function estimatedJaccard(a: Uint32Array, b: Uint32Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

const MAX_BUCKET = 64;

export type DuplicateVerdict = { duplicate: false } | { duplicate: true; of: number; kind: string };

/**
 * Streams files in a fixed order and reports, for each, whether it repeats an earlier kept
 * file. The first copy always wins, so the result depends only on the input order.
 */
export class Deduplicator {
  private readonly exact = new Map<string, number>();
  private readonly buckets: Map<string, number[]>[];
  private readonly signatures: Uint32Array[] = [];
  private readonly rows: number;

  constructor(private readonly config: DedupConfig = DEFAULT_DEDUP) {
    if (config.hashes % config.bands !== 0) {
      throw new Error(`dedup: hashes ${config.hashes} is not a multiple of bands ${config.bands}`);
    }
    this.rows = config.hashes / config.bands;
    this.buckets = Array.from({ length: config.bands }, () => new Map());
  }

  /** Checks `text`; when it is new, remembers it under the id returned as `of` by later hits. */
  check(text: string, id: number): DuplicateVerdict {
    const key = exactKey(text);
    const exactOf = this.exact.get(key);
    if (exactOf !== undefined) return { duplicate: true, of: exactOf, kind: 'exact duplicate' };
    const signature = minHash(text, this.config);
    const bandKeys: string[] = [];
    const seen = new Set<number>();
    for (let band = 0; band < this.config.bands; band++) {
      const slice = signature.subarray(band * this.rows, (band + 1) * this.rows);
      const bandKey = Array.from(slice).join(',');
      bandKeys.push(bandKey);
      for (const candidate of this.buckets[band].get(bandKey) ?? []) {
        if (seen.has(candidate)) continue;
        seen.add(candidate);
        if (estimatedJaccard(signature, this.signatures[candidate]) >= this.config.threshold) {
          return { duplicate: true, of: candidate, kind: 'near duplicate' };
        }
      }
    }
    this.exact.set(key, id);
    this.signatures[id] = signature;
    bandKeys.forEach((bandKey, band) => {
      const bucket = this.buckets[band].get(bandKey);
      if (bucket === undefined) this.buckets[band].set(bandKey, [id]);
      // A bucket this full holds near-empty files; more members add cost and no recall.
      else if (bucket.length < MAX_BUCKET) bucket.push(id);
    });
    return { duplicate: false };
  }
}
