/**
 * Bradley-Terry preference loss and reward-model evaluation, in plain numbers. The graph
 * version in `rewardModel.ts` computes the same loss; these functions are its reference and
 * score validation sets.
 *
 * For reward difference d = r_chosen - r_rejected - margin and target y (1 for a preference,
 * 0.5 for a tie):  loss = -y log sigma(d) - (1 - y) log sigma(-d).
 * A tie therefore pulls both rewards together (minimum at d = 0, loss ln 2) instead of being
 * turned into a fake win (failure kind D3). Margins follow Llama 2 (Touvron et al. 2023,
 * eq. 2) and apply only to strict preferences.
 */

export interface ScoredPair {
  chosen: number;
  rejected: number;
  /** 1 = chosen preferred, 0.5 = tie. */
  target: number;
  /** Required reward gap for a strict preference; 0 when absent. */
  margin?: number;
}

/** log(sigma(x)) without overflow. */
export function logSigmoid(x: number): number {
  return x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x));
}

export function pairLoss(pair: ScoredPair): number {
  if (!(pair.target >= 0 && pair.target <= 1)) {
    throw new Error(`preference target must be in [0, 1], got ${pair.target}`);
  }
  const margin = pair.target === 0.5 ? 0 : (pair.margin ?? 0);
  const d = pair.chosen - pair.rejected - margin;
  return -pair.target * logSigmoid(d) - (1 - pair.target) * logSigmoid(-d);
}

export interface PairEvaluation {
  /** Mean loss over all pairs (ties included). */
  loss: number;
  /** Fraction of strict-preference pairs with r_chosen > r_rejected; NaN with none. */
  accuracy: number;
  /** Strict-preference pairs counted in the accuracy. */
  strictPairs: number;
  /** Strict pairs scored exactly equal: counted as wrong, reported (failure kind D1). */
  equalScores: number;
  /** Pairs labelled as ties, left out of the accuracy. */
  tiePairs: number;
  /** Mean r_chosen - r_rejected over strict pairs. */
  margin: number;
}

export function evaluatePairs(pairs: readonly ScoredPair[]): PairEvaluation {
  let loss = 0;
  let correct = 0;
  let strict = 0;
  let equal = 0;
  let ties = 0;
  let margin = 0;
  for (const pair of pairs) {
    loss += pairLoss(pair);
    if (pair.target === 0.5) {
      ties++;
      continue;
    }
    strict++;
    const d = pair.chosen - pair.rejected;
    margin += d;
    if (d > 0) correct++;
    else if (d === 0) equal++;
  }
  return {
    loss: pairs.length ? loss / pairs.length : Number.NaN,
    accuracy: strict ? correct / strict : Number.NaN,
    strictPairs: strict,
    equalScores: equal,
    tiePairs: ties,
    margin: strict ? margin / strict : Number.NaN,
  };
}
