/**
 * Logits processing and sampling: temperature, top-k, top-p (nucleus), a seeded PRNG.
 * Same seed and same logits give the same token on every platform (no Math.random).
 */

import { Rng } from '../model/random';
import { SettingError } from '../model/settingError';

export { Rng };

export interface SamplingSettings {
  /** 0 means greedy. */
  temperature: number;
  /** 0 means off. */
  topK: number;
  /** 1 means off. */
  topP: number;
}

export interface SampledToken {
  id: number;
  /**
   * log p(id) under softmax(logits / temperature) over the whole vocabulary (temperature 1 for
   * greedy), i.e. before top-k/top-p filtering: the same quantity the log-probs graph computes.
   */
  logprob: number;
}

/**
 * Logits with no finite maximum: NaN or infinite values from the model's or an adapter's weights
 * (a diverged training run), not from this code. Not a RangeError, so error reports print its
 * message without a stack trace (src/host/errorReport.ts): the stack would only point here.
 */
export class NonFiniteLogitsError extends Error {
  override name = 'NonFiniteLogitsError';
}

/** Checks settings and names the bad field. */
export function validateSampling(settings: SamplingSettings): void {
  const { temperature, topK, topP } = settings;
  if (!(Number.isFinite(temperature) && temperature >= 0)) {
    throw new SettingError(`temperature must be a finite number >= 0, got ${temperature}`);
  }
  if (!(Number.isInteger(topK) && topK >= 0)) {
    throw new SettingError(`topK must be an integer >= 0 (0 = off), got ${topK}`);
  }
  if (!(topP > 0 && topP <= 1))
    throw new SettingError(`topP must be in (0, 1] (1 = off), got ${topP}`);
}

/**
 * Scratch buffers reused by every call: a decode step samples K x vocabulary weights, and fresh
 * arrays per call cost more in allocation and garbage collection than the arithmetic. Sampling
 * is synchronous, so one set serves the whole process.
 */
const scratch = {
  scaled: new Float64Array(0),
  weights: new Float64Array(0),
  /** Kept ids in id order (output of the top-k/top-p filter). */
  kept: new Int32Array(0),
  /** Input ids of a filter pass (a copy, so `kept` can be its output). */
  order: new Int32Array(0),
  /** Log-weight bucket of each entry of `order`. */
  buckets: new Int32Array(0),
  /** Members of the boundary bucket, sorted. */
  members: new Int32Array(0),
};

function ensureScratch(n: number): void {
  if (scratch.scaled.length >= n) return;
  scratch.scaled = new Float64Array(n);
  scratch.weights = new Float64Array(n);
  scratch.kept = new Int32Array(n);
  scratch.order = new Int32Array(n);
  scratch.buckets = new Int32Array(n);
  scratch.members = new Int32Array(n);
}

/**
 * Picks one token from `logits` (length = vocabulary). `allowed` limits the choice to the first
 * n ids (checkpoints often pad the embedding past the tokenizer's vocabulary).
 */
export function sampleToken(
  logits: Float32Array,
  settings: SamplingSettings,
  rng: Rng,
  allowed = logits.length,
): SampledToken {
  const temperature = settings.temperature > 0 ? settings.temperature : 1;
  let max = -Infinity;
  let argmax = 0;
  for (let i = 0; i < allowed; i++) {
    if (logits[i] > max) {
      max = logits[i];
      argmax = i;
    }
  }
  if (!Number.isFinite(max)) {
    // NaN everywhere (or +Infinity): a diverged model or adapter. Sampling would silently pick id 0.
    throw new NonFiniteLogitsError(
      `logits have no finite maximum (${max}; NaN or infinite values from the model or adapter)`,
    );
  }
  ensureScratch(allowed);
  const { scaled, weights } = scratch;
  // Log-weights (l - max) / T <= 0 and weights exp of them, computed once. Weights below e^-60
  // relative to the top are 0: they cannot change a sample drawn with 32-bit uniforms.
  let sum = 0;
  for (let i = 0; i < allowed; i++) {
    const x = (logits[i] - max) / temperature;
    scaled[i] = x;
    if (x > -60) {
      const w = Math.exp(x);
      weights[i] = w;
      sum += w;
    } else weights[i] = 0;
  }
  const logZ = Math.log(sum);
  if (settings.temperature === 0) return { id: argmax, logprob: scaled[argmax] - logZ };

  const kept = nucleusCandidates(weights, scaled, allowed, sum, settings);
  if (kept < 0) {
    // No filtering: walk the whole vocabulary.
    let u = rng.next() * sum;
    for (let i = 0; i < allowed; i++) {
      u -= weights[i];
      if (u < 0) return { id: i, logprob: scaled[i] - logZ };
    }
    return { id: argmax, logprob: scaled[argmax] - logZ };
  }
  // Sum and walk in id order: the same order on every run, so the same uniform picks the same id.
  const ids = scratch.kept;
  let total = 0;
  for (let j = 0; j < kept; j++) total += weights[ids[j]];
  let u = rng.next() * total;
  for (let j = 0; j < kept; j++) {
    u -= weights[ids[j]];
    if (u < 0) return { id: ids[j], logprob: scaled[ids[j]] - logZ };
  }
  const last = ids[kept - 1];
  return { id: last, logprob: scaled[last] - logZ };
}

/** The ids top-k/top-p keep for these logits (sorted ascending), for tests and tools. */
export function keptIds(logits: Float32Array, settings: SamplingSettings): number[] {
  const temperature = settings.temperature > 0 ? settings.temperature : 1;
  const max = logits.reduce((a, b) => Math.max(a, b), -Infinity);
  const n = logits.length;
  ensureScratch(n);
  const { scaled, weights } = scratch;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    scaled[i] = (logits[i] - max) / temperature;
    weights[i] = scaled[i] > -60 ? Math.exp(scaled[i]) : 0;
    sum += weights[i];
  }
  const kept = nucleusCandidates(weights, scaled, n, sum, settings);
  return kept < 0 ? Array.from(logits, (_, i) => i) : Array.from(scratch.kept.subarray(0, kept));
}

/**
 * Writes the ids top-k and top-p keep into `scratch.kept`, in id order (a fixed order is all
 * sampling needs), and returns how many; -1 when neither filter is on. `sum` is the total of
 * `weights[0, allowed)` in id order. As in transformers' warpers, top-k runs first and top-p then
 * works on the renormalised survivors; ties at the boundary go to lower ids.
 */
function nucleusCandidates(
  weights: Float64Array,
  scaled: Float64Array,
  allowed: number,
  sum: number,
  settings: SamplingSettings,
): number {
  const k = settings.topK > 0 ? Math.min(settings.topK, allowed) : 0;
  const topP = settings.topP;
  if (k === 0 && topP >= 1) return -1;
  let count = -1; // -1 = every id
  if (k > 0) count = topPrefix(-1, allowed, weights, scaled, k, Infinity);
  if (topP >= 1) return count;
  let mass = sum;
  if (count >= 0) {
    mass = 0;
    for (let j = 0; j < count; j++) mass += weights[scratch.kept[j]];
  }
  return topPrefix(count, allowed, weights, scaled, Infinity, topP * mass);
}

/** Buckets per nat of log-weight for `topPrefix` (weights within a bucket differ < 7%). */
const BUCKETS_PER_NAT = 16;
const BUCKETS = 61 * BUCKETS_PER_NAT;
const bucketMass = new Float64Array(BUCKETS);
const bucketCount = new Int32Array(BUCKETS);

/**
 * The shortest prefix, in descending weight order with ties to lower ids, of the first `count`
 * ids in `scratch.kept` (or of ids 0..allowed-1 when `count` is -1), that holds `maxCount` ids or
 * `maxMass` weight. Writes it to `scratch.kept` in id order and returns its length. Linear time:
 * ids are counted into log-spaced buckets of their log-weight, and only the bucket where the
 * prefix ends is sorted.
 */
function topPrefix(
  count: number,
  allowed: number,
  weights: Float64Array,
  scaled: Float64Array,
  maxCount: number,
  maxMass: number,
): number {
  const all = count < 0;
  const n = all ? allowed : count;
  const { order, buckets, members, kept } = scratch;
  if (!all) order.set(kept.subarray(0, n));
  bucketMass.fill(0);
  bucketCount.fill(0);
  for (let j = 0; j < n; j++) {
    const id = all ? j : order[j];
    // floor(-x * 16), capped at the last bucket; x <= 0, so the product is >= 0.
    const y = -scaled[id] * BUCKETS_PER_NAT;
    const b = y < BUCKETS - 1 ? y | 0 : BUCKETS - 1;
    buckets[j] = b;
    bucketMass[b] += weights[id];
    bucketCount[b]++;
  }
  let taken = 0;
  let cumulative = 0;
  let boundary = BUCKETS - 1;
  for (let b = 0; b < BUCKETS; b++) {
    const c = bucketCount[b];
    if (c > 0 && (taken + c >= maxCount || cumulative + bucketMass[b] >= maxMass)) {
      boundary = b;
      break;
    }
    taken += c;
    cumulative += bucketMass[b];
  }
  // Within the boundary bucket, take members in descending order until the prefix is done.
  let size = 0;
  for (let j = 0; j < n; j++) if (buckets[j] === boundary) members[size++] = all ? j : order[j];
  sortByWeight(members, size, scaled);
  let m = 0;
  while (m < size) {
    taken++;
    cumulative += weights[members[m++]];
    if (taken >= maxCount || cumulative >= maxMass) break;
  }
  // The last member taken sets the cut: everything above it, and its ties up to lower ids.
  const last = members[m - 1];
  const cut = scaled[last];
  let out = 0;
  for (let j = 0; j < n; j++) {
    const b = buckets[j];
    if (b > boundary) continue;
    const id = all ? j : order[j];
    if (b < boundary || scaled[id] > cut || (scaled[id] === cut && id <= last)) kept[out++] = id;
  }
  return out;
}

/**
 * Sorts `ids[0, size)` by log-weight, descending, ties to lower ids (a total order, so any
 * correct sort gives this one result). Boundary buckets are usually a few ids: insertion sort
 * there, the built-in sort for the rare large ones (a flat distribution).
 */
function sortByWeight(ids: Int32Array, size: number, scaled: Float64Array): void {
  if (size > 32) {
    ids.subarray(0, size).sort((a, b) => scaled[b] - scaled[a] || a - b);
    return;
  }
  for (let i = 1; i < size; i++) {
    const id = ids[i];
    const x = scaled[id];
    let j = i - 1;
    while (j >= 0 && (scaled[ids[j]] < x || (scaled[ids[j]] === x && ids[j] > id))) {
      ids[j + 1] = ids[j];
      j--;
    }
    ids[j + 1] = id;
  }
}
