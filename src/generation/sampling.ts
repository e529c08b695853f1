/**
 * Logits processing and sampling: temperature, top-k, top-p (nucleus), a seeded PRNG.
 * Same seed and same logits give the same token on every platform (no Math.random).
 */

import { Rng } from '../model/random';

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

/** Checks settings and names the bad field. */
export function validateSampling(settings: SamplingSettings): void {
  const { temperature, topK, topP } = settings;
  if (!(Number.isFinite(temperature) && temperature >= 0)) {
    throw new RangeError(`temperature must be a finite number >= 0, got ${temperature}`);
  }
  if (!(Number.isInteger(topK) && topK >= 0)) {
    throw new RangeError(`topK must be an integer >= 0 (0 = off), got ${topK}`);
  }
  if (!(topP > 0 && topP <= 1))
    throw new RangeError(`topP must be in (0, 1] (1 = off), got ${topP}`);
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
    throw new RangeError(
      `logits have no finite maximum (${max}; NaN or infinite values from the model or adapter)`,
    );
  }
  // Log-weights (l - max) / T <= 0 and weights exp of them, computed once. Weights below e^-60
  // relative to the top are 0: they cannot change a sample drawn with 32-bit uniforms.
  const scaled = new Float64Array(allowed);
  const weights = new Float64Array(allowed);
  let sum = 0;
  for (let i = 0; i < allowed; i++) {
    const x = (logits[i] - max) / temperature;
    scaled[i] = x;
    if (x > -60) {
      weights[i] = Math.exp(x);
      sum += weights[i];
    }
  }
  const logZ = Math.log(sum);
  const logprobOf = (id: number) => scaled[id] - logZ;
  if (settings.temperature === 0) return { id: argmax, logprob: logprobOf(argmax) };

  const candidates = nucleusCandidates(weights, scaled, settings);
  if (!candidates) {
    // No filtering: walk the whole vocabulary.
    let u = rng.next() * sum;
    for (let i = 0; i < allowed; i++) {
      u -= weights[i];
      if (u < 0) return { id: i, logprob: logprobOf(i) };
    }
    return { id: argmax, logprob: logprobOf(argmax) };
  }
  let total = 0;
  for (const c of candidates) total += weights[c];
  let u = rng.next() * total;
  for (const c of candidates) {
    u -= weights[c];
    if (u < 0) return { id: c, logprob: logprobOf(c) };
  }
  const last = candidates[candidates.length - 1];
  return { id: last, logprob: logprobOf(last) };
}

/** The ids top-k/top-p keep for these logits (sorted ascending), for tests and tools. */
export function keptIds(logits: Float32Array, settings: SamplingSettings): number[] {
  const temperature = settings.temperature > 0 ? settings.temperature : 1;
  const max = logits.reduce((a, b) => Math.max(a, b), -Infinity);
  const scaled = Float64Array.from(logits, (l) => (l - max) / temperature);
  const weights = scaled.map((x) => (x > -60 ? Math.exp(x) : 0));
  return nucleusCandidates(weights, scaled, settings) ?? Array.from(logits, (_, i) => i);
}

/**
 * The ids top-k and top-p keep, in id order (a fixed order is all sampling needs), or null when
 * neither filter is on. As in transformers' warpers, top-k runs first and top-p then works on
 * the renormalised survivors; ties at the boundary go to lower ids.
 */
function nucleusCandidates(
  weights: Float64Array,
  scaled: Float64Array,
  settings: SamplingSettings,
): number[] | null {
  const allowed = weights.length;
  const k = settings.topK > 0 ? Math.min(settings.topK, allowed) : 0;
  const topP = settings.topP;
  if (k === 0 && topP >= 1) return null;
  let ids: number[] | null = null; // null = every id
  if (k > 0) ids = topPrefix(null, weights, scaled, (count) => count >= k);
  if (topP >= 1) return ids;
  let mass = 0;
  if (ids) for (const id of ids) mass += weights[id];
  else for (let i = 0; i < allowed; i++) mass += weights[i];
  return topPrefix(ids, weights, scaled, (_, cumulative) => cumulative >= topP * mass);
}

/** Buckets per nat of log-weight for `topPrefix` (weights within a bucket differ < 7%). */
const BUCKETS_PER_NAT = 16;
const BUCKETS = 61 * BUCKETS_PER_NAT;

/**
 * The shortest prefix of `ids` (null = all) in descending weight order, ties to lower ids, for
 * which `done(count, cumulativeWeight)` holds, returned in id order. Linear time: ids are
 * counted into log-spaced buckets of their log-weight, and only the bucket where the prefix
 * ends is sorted.
 */
function topPrefix(
  ids: readonly number[] | null,
  weights: Float64Array,
  scaled: Float64Array,
  done: (count: number, cumulative: number) => boolean,
): number[] {
  const n = ids ? ids.length : weights.length;
  const order = new Int32Array(n);
  for (let j = 0; j < n; j++) order[j] = ids ? ids[j] : j;
  const buckets = new Int32Array(n);
  const bucketMass = new Float64Array(BUCKETS);
  const bucketCount = new Int32Array(BUCKETS);
  for (let j = 0; j < n; j++) {
    const id = order[j];
    const b = Math.min(BUCKETS - 1, Math.floor(-scaled[id] * BUCKETS_PER_NAT));
    buckets[j] = b;
    bucketMass[b] += weights[id];
    bucketCount[b]++;
  }
  let count = 0;
  let cumulative = 0;
  let boundary = BUCKETS - 1;
  for (let b = 0; b < BUCKETS; b++) {
    if (bucketCount[b] > 0 && done(count + bucketCount[b], cumulative + bucketMass[b])) {
      boundary = b;
      break;
    }
    count += bucketCount[b];
    cumulative += bucketMass[b];
  }
  // Within the boundary bucket, take members in descending order until the prefix is done.
  const members: number[] = [];
  for (let j = 0; j < n; j++) if (buckets[j] === boundary) members.push(order[j]);
  members.sort((a, b) => scaled[b] - scaled[a] || a - b);
  let taken = 0;
  while (taken < members.length) {
    count++;
    cumulative += weights[members[taken++]];
    if (done(count, cumulative)) break;
  }
  // The last member taken sets the cut: everything above it, and its ties up to lower ids.
  const last = members[taken - 1];
  const out: number[] = [];
  for (let j = 0; j < n; j++) {
    const id = order[j];
    if (buckets[j] < boundary) out.push(id);
    else if (
      buckets[j] === boundary &&
      (scaled[id] > scaled[last] || (scaled[id] === scaled[last] && id <= last))
    ) {
      out.push(id);
    }
  }
  return out;
}
