/**
 * Win rate with a 95% Wilson score interval (Wilson 1927). Ties count as half a win, so the
 * rate answers "how often would the tuned model be preferred if ties were split by a coin".
 */

export interface WinRate {
  wins: number;
  losses: number;
  ties: number;
  n: number;
  /** (wins + ties / 2) / n; NaN when n = 0. */
  rate: number;
  low: number;
  high: number;
  /**
   * Set when the comparisons come in clusters (several samples per prompt) and the interval is
   * over prompts: the prompts compared, and the effective number of independent comparisons the
   * interval was computed with (see `clusteredWinRate` in src/rlhf/winRate.ts).
   */
  prompts?: number;
  effectiveN?: number;
}

/** Wilson interval for k successes out of n (k may be fractional); z = 1.96 for 95%. */
export function wilsonInterval(k: number, n: number, z = 1.959964): { low: number; high: number } {
  if (n <= 0) return { low: Number.NaN, high: Number.NaN };
  const p = k / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  // At p = 0 or 1 the bound is exactly 0 or 1; rounding would otherwise give 0.9999999999999999.
  return {
    low: k <= 0 ? 0 : Math.max(0, centre - half),
    high: k >= n ? 1 : Math.min(1, centre + half),
  };
}

export function winRate(wins: number, losses: number, ties: number): WinRate {
  const n = wins + losses + ties;
  const k = wins + ties / 2;
  const { low, high } = wilsonInterval(k, n);
  return { wins, losses, ties, n, rate: n ? k / n : Number.NaN, low, high };
}

export function formatWinRate(w: WinRate): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const clusters =
    w.prompts !== undefined && w.effectiveN !== undefined
      ? ` from ${w.prompts} prompts, effective n=${w.effectiveN.toFixed(1)}`
      : '';
  return `${pct(w.rate)} [95% CI ${pct(w.low)}-${pct(w.high)}] (${w.wins} wins, ${w.losses} losses, ${w.ties} ties, n=${w.n}${clusters})`;
}
