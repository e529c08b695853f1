/** Greatest common divisor of two non-negative integers. */
export function gcd(a: number, b: number): number {
  while (b !== 0) {
    [a, b] = [b, a % b];
  }
  return a;
}

/** Arithmetic mean of a non-empty list. */
export function mean(values: number[]): number {
  if (values.length === 0) throw new Error('mean of an empty list');
  let total = 0;
  for (const value of values) {
    total += value;
  }
  return total / values.length;
}

export function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}
