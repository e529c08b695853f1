// The win-rate math lives in src/data so that the extension (which may import data, not rlhf)
// reports blind A/B results with the same formula the trainer's evaluation uses.
import { wilsonInterval, winRate, type WinRate } from '../data/winRate';

export { formatWinRate, wilsonInterval, winRate, type WinRate } from '../data/winRate';

/** Comparisons on one prompt, from the tuned side's view. */
export interface PromptTally {
  wins: number;
  losses: number;
  ties: number;
}

/**
 * Win rate (ties count half) of comparisons made in clusters, K samples per prompt, with a 95%
 * interval over prompts. The K samples of one prompt share the prompt, so they are not K
 * independent trials; a Wilson interval over all of them would be too narrow when prompts
 * differ (one prompt where the tuned adapter always wins counts K times).
 *
 * Method: Wilson's interval with an effective sample size, the way Korn & Graubard (1998,
 * "Confidence intervals for proportions with small expected number of positive counts
 * estimated from survey data", Survey Methodology 24(2)) do it for cluster samples, and as
 * Dean & Pagano (2015, "Evaluating confidence interval methods for binomial proportions in
 * clustered surveys", J. Survey Statistics and Methodology 3(4)) evaluate it for Wilson:
 *
 * 1. p = sum(y_i) / n, where y_i = wins_i + ties_i / 2 on prompt i, n_i its comparisons,
 *    n = sum(n_i), m = prompts;
 * 2. Var(p) by the between-prompt (linearisation) estimator of a ratio over m clusters:
 *    m / (m - 1) * sum((y_i - p n_i)^2) / n^2;
 * 3. n* = p (1 - p) / Var(p), i.e. n over the design effect; capped at n (a design effect
 *    below 1 is not credited) and n* = n when Var(p) = 0 (p = 0 or 1, or every prompt scores
 *    the same);
 * 4. Korn & Graubard's degrees-of-freedom correction for estimating Var(p) from m prompts:
 *    n*_df = n* (t_{n-1} / t_{m-1})^2, with t_d the two-sided 95% quantile of Student's t;
 * 5. Wilson's interval for p n*_df successes out of n*_df.
 *
 * Clusters of one comparison each are independent comparisons: plain Wilson. With one prompt
 * the spread between prompts is unknown and the interval is [0, 1].
 */
export function clusteredWinRate(tallies: readonly PromptTally[]): WinRate {
  const clusters = tallies.filter((c) => c.wins + c.losses + c.ties > 0);
  const sum = (key: keyof PromptTally) => clusters.reduce((a, c) => a + c[key], 0);
  const plain = winRate(sum('wins'), sum('losses'), sum('ties'));
  const m = clusters.length;
  if (clusters.every((c) => c.wins + c.losses + c.ties === 1)) return plain;
  if (m < 2) return { ...plain, low: 0, high: 1, prompts: m, effectiveN: 0 };
  const { n, rate: p } = plain;
  let squares = 0;
  for (const c of clusters) {
    const residual = c.wins + c.ties / 2 - p * (c.wins + c.losses + c.ties);
    squares += residual * residual;
  }
  const variance = ((m / (m - 1)) * squares) / (n * n);
  const designN = variance > 0 ? Math.min(n, (p * (1 - p)) / variance) : n;
  const effectiveN = designN * (tCritical95(n - 1) / tCritical95(m - 1)) ** 2;
  const { low, high } = wilsonInterval(p * effectiveN, effectiveN);
  return { ...plain, low, high, prompts: m, effectiveN };
}

/**
 * The t with P(|T| < t) = 0.95 for Student's t with `df` (a positive integer) degrees of
 * freedom, by bisection on the closed-form CDF for integer df (Abramowitz & Stegun 26.7.3).
 */
export function tCritical95(df: number): number {
  if (!Number.isInteger(df) || df < 1) {
    throw new Error(`degrees of freedom ${df}: allowed are integers >= 1`);
  }
  let lo = 0;
  let hi = 2;
  while (studentTCentral(hi, df) < 0.95) hi *= 2;
  for (let i = 0; i < 100 && hi - lo > 1e-12; i++) {
    const mid = (lo + hi) / 2;
    if (studentTCentral(mid, df) < 0.95) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** P(|T| < t) for Student's t with integer df >= 1 (Abramowitz & Stegun 26.7.3). */
function studentTCentral(t: number, df: number): number {
  const theta = Math.atan(t / Math.sqrt(df));
  const c2 = Math.cos(theta) ** 2;
  const s = Math.sin(theta);
  if (df % 2 === 0) {
    // sin(theta) * (1 + 1/2 c^2 + (1*3)/(2*4) c^4 + ... + (1*3..(df-3))/(2*4..(df-2)) c^(df-2))
    let term = 1;
    let series = 1;
    for (let k = 2; k <= df - 2; k += 2) {
      term *= ((k - 1) / k) * c2;
      series += term;
    }
    return s * series;
  }
  if (df === 1) return (2 * theta) / Math.PI;
  // 2/pi (theta + sin cos (1 + 2/3 c^2 + (2*4)/(3*5) c^4 + ... + (2..(df-3))/(3..(df-2)) c^(df-3)))
  let term = 1;
  let series = 1;
  for (let k = 3; k <= df - 2; k += 2) {
    term *= ((k - 1) / k) * c2;
    series += term;
  }
  return (2 / Math.PI) * (theta + s * Math.cos(theta) * series);
}
