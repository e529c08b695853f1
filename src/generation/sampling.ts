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
  // Unnormalised probabilities at the temperature, computed once: exp((l - max) / T).
  const weights = new Float64Array(allowed);
  let sum = 0;
  for (let i = 0; i < allowed; i++) {
    weights[i] = Math.exp((logits[i] - max) / temperature);
    sum += weights[i];
  }
  const logZ = Math.log(sum);
  const logprobOf = (id: number) => (logits[id] - max) / temperature - logZ;
  if (settings.temperature === 0) return { id: argmax, logprob: logprobOf(argmax) };

  const candidates = nucleusCandidates(weights, sum, settings);
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

/**
 * The ids top-k and top-p keep, in id order (a fixed order is all sampling needs), or null when
 * neither filter is on. As in
 * transformers' warpers, top-k runs first and top-p then works on the renormalised survivors;
 * ties at the boundary are broken towards lower ids. Only ids above a probability threshold are
 * looked at when possible: they are a prefix of the descending order, so if they hold k ids
 * (top-k) or at least topP of the mass (top-p alone), the answer lies among them.
 */
function nucleusCandidates(
  weights: Float64Array,
  sum: number,
  settings: SamplingSettings,
): number[] | null {
  const allowed = weights.length;
  const k = settings.topK > 0 ? Math.min(settings.topK, allowed) : 0;
  const topP = settings.topP;
  if (k === 0 && topP >= 1) return null;
  for (let threshold = 1e-3; ; threshold *= 1e-3) {
    const exhaustive = threshold < 1e-30;
    const ids: number[] = [];
    let mass = 0;
    const cut = threshold * sum;
    for (let i = 0; i < allowed; i++) {
      if (exhaustive || weights[i] >= cut) {
        ids.push(i);
        mass += weights[i];
      }
    }
    const enough = k > 0 ? ids.length >= k : topP < 1 && mass >= topP * sum;
    if (!exhaustive && !enough) continue;
    const topK = k > 0 ? topPrefix(ids, weights, (count) => count >= k) : ids;
    if (topP >= 1) return topK;
    let keptMass = 0;
    for (const id of topK) keptMass += weights[id];
    return topPrefix(topK, weights, (_, cumulative) => cumulative >= topP * keptMass);
  }
}

/**
 * The shortest prefix of `ids` in descending weight order (ties: lower id first) for which
 * `done(count, cumulativeWeight)` holds, returned in id order. Sorts a typed array of weights
 * (native numeric sort) instead of ids with a comparator.
 */
function topPrefix(
  ids: readonly number[],
  weights: Float64Array,
  done: (count: number, cumulative: number) => boolean,
): number[] {
  const values = new Float64Array(ids.length);
  ids.forEach((id, i) => (values[i] = weights[id]));
  values.sort(); // ascending
  let cumulative = 0;
  let count = 0;
  let boundary = -Infinity;
  for (let j = values.length - 1; j >= 0; j--) {
    cumulative += values[j];
    count++;
    if (done(count, cumulative)) {
      boundary = values[j];
      break;
    }
  }
  // Everything above the boundary value, plus as many ties at it as the prefix took.
  let above = 0;
  for (let j = values.length - 1; j >= 0 && values[j] > boundary; j--) above++;
  let ties = count - above;
  const out: number[] = [];
  for (const id of ids) {
    const w = weights[id];
    if (w > boundary) out.push(id);
    else if (w === boundary && ties > 0) {
      out.push(id);
      ties--;
    }
  }
  return out;
}
