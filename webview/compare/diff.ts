/**
 * Where candidates differ: a token of one candidate counts as shared when it is part of a
 * longest common subsequence (by token text) with every other candidate; the rest is marked so
 * the eye goes straight to the differences.
 */

/** Longest-common-subsequence match of `a` against `b`: `matched[i]` is true when a[i] is in it. */
export function lcsMatched(a: readonly string[], b: readonly string[]): boolean[] {
  const n = a.length;
  const m = b.length;
  // lengths[i][j] = LCS length of a[i:] and b[j:], flattened [(n + 1) x (m + 1)].
  const width = m + 1;
  const lengths = new Uint32Array((n + 1) * width);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lengths[i * width + j] =
        a[i] === b[j]
          ? lengths[(i + 1) * width + j + 1] + 1
          : Math.max(lengths[(i + 1) * width + j], lengths[i * width + j + 1]);
    }
  }
  const matched = new Array<boolean>(n).fill(false);
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      matched[i] = true;
      i++;
      j++;
    } else if (lengths[(i + 1) * width + j] >= lengths[i * width + j + 1]) {
      i++;
    } else {
      j++;
    }
  }
  return matched;
}

/** For each candidate, which of its tokens are shared with every other candidate. */
export function sharedTokens(candidates: readonly (readonly string[])[]): boolean[][] {
  return candidates.map((tokens, i) => {
    const shared = new Array<boolean>(tokens.length).fill(true);
    candidates.forEach((other, j) => {
      if (i === j) return;
      const matched = lcsMatched(tokens, other);
      matched.forEach((isMatched, t) => {
        if (!isMatched) shared[t] = false;
      });
    });
    return shared;
  });
}
