/**
 * Generalized advantage estimation and advantage whitening over padded batches.
 * Rows are sequences, columns are response-token positions; `mask[b][t]` is 1 for real
 * response tokens (including the closing EOS) and 0 for padding.
 */

export type Matrix = number[][];

export interface GaeResult {
  /** [B, T]; 0 at masked positions. */
  advantages: Matrix;
  /** [B, T] = advantages + values; the value-loss target. 0 at masked positions. */
  returns: Matrix;
}

/**
 * GAE (Schulman et al. 2016, "High-dimensional continuous control using generalized advantage
 * estimation", eq. 16): delta_t = r_t + gamma * V_{t+1} - V_t, A_t = sum_l (gamma*lambda)^l
 * delta_{t+l}. A position whose successor is masked (or the row's end) is terminal:
 * V_{t+1} = 0 and the recursion restarts, so padding never leaks value or reward backwards.
 */
export function computeGae(
  rewards: Matrix,
  values: Matrix,
  mask: Matrix,
  gamma: number,
  lambda: number,
): GaeResult {
  const advantages: Matrix = [];
  const returns: Matrix = [];
  for (let b = 0; b < rewards.length; b++) {
    const T = rewards[b].length;
    if (values[b].length !== T || mask[b].length !== T) {
      throw new Error(
        `computeGae: row ${b} has rewards length ${T}, values ${values[b].length}, mask ${mask[b].length}`,
      );
    }
    const adv = new Array<number>(T).fill(0);
    let lastGae = 0;
    for (let t = T - 1; t >= 0; t--) {
      if (!mask[b][t]) {
        lastGae = 0;
        continue;
      }
      const nextReal = t + 1 < T && mask[b][t + 1] ? 1 : 0;
      const nextValue = nextReal ? values[b][t + 1] : 0;
      const delta = rewards[b][t] + gamma * nextValue - values[b][t];
      lastGae = delta + gamma * lambda * (nextReal ? lastGae : 0);
      adv[t] = lastGae;
    }
    advantages.push(adv);
    returns.push(adv.map((a, t) => (mask[b][t] ? a + values[b][t] : 0)));
  }
  return { advantages, returns };
}

export interface MaskedStats {
  count: number;
  mean: number;
  /** Unbiased variance (Bessel's correction); 0 when count < 2. */
  variance: number;
}

export function maskedStats(values: Matrix, mask: Matrix): MaskedStats {
  let count = 0;
  let sum = 0;
  for (let b = 0; b < values.length; b++) {
    for (let t = 0; t < values[b].length; t++) {
      if (mask[b][t]) {
        count++;
        sum += values[b][t];
      }
    }
  }
  if (count === 0) return { count, mean: 0, variance: 0 };
  const mean = sum / count;
  let sq = 0;
  for (let b = 0; b < values.length; b++) {
    for (let t = 0; t < values[b].length; t++) {
      if (mask[b][t]) sq += (values[b][t] - mean) ** 2;
    }
  }
  return { count, mean, variance: count > 1 ? sq / (count - 1) : 0 };
}

/**
 * Whitens over the real positions: (x - mean) / sqrt(var + eps), as in TRL's masked_whiten.
 * Safe for tiny batches, where TRL divides by zero or by sqrt(1e-8):
 * - 0 real positions: all zeros.
 * - 1 real position, or variance below `minVariance`: there is no spread to normalise, so the
 *   values are only centred (if `shiftMean`) and never multiplied by 1/sqrt(eps) ~ 1e4.
 * Masked positions are 0 in the output.
 */
export function whiten(values: Matrix, mask: Matrix, shiftMean = true, minVariance = 1e-8): Matrix {
  const { count, mean, variance } = maskedStats(values, mask);
  if (count === 0) return values.map((row) => row.map(() => 0));
  const scale = count > 1 && variance >= minVariance ? 1 / Math.sqrt(variance + 1e-8) : 1;
  return values.map((row, b) =>
    row.map((x, t) => {
      if (!mask[b][t]) return 0;
      const centred = (x - mean) * scale;
      return shiftMean ? centred : centred + mean;
    }),
  );
}
