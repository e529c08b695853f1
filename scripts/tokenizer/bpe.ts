/**
 * Byte-pair-encoding training (Sennrich, Haddow and Birch, "Neural Machine Translation of
 * Rare Words with Subword Units", 2016) over byte sequences.
 *
 * Input is a bag of pre-tokens, each a sequence of symbol ids with a count. Each step merges
 * the most frequent adjacent pair (ties: the smaller pair key, so training is deterministic)
 * into a new symbol. Pair counts are kept incrementally: a merge only revisits the words that
 * contain the merged pair, found through a pair -> words index, and a max-heap with lazy
 * deletion yields the next best pair. Training is O(total merges x affected words) instead of
 * rescanning the corpus per merge.
 */

/** Pair key; symbol ids stay below 2^16 so the key is an exact double. */
const pairKey = (left: number, right: number) => left * 65536 + right;

class MaxHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  private better(i: number, j: number): boolean {
    const a = this.counts[i];
    const b = this.counts[j];
    return a > b || (a === b && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.better(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { count: number; key: number } | undefined {
    if (this.counts.length === 0) return undefined;
    const top = { count: this.counts[0], key: this.keys[0] };
    const lastCount = this.counts.pop() as number;
    const lastKey = this.keys.pop() as number;
    if (this.counts.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let best = i;
        if (left < this.counts.length && this.better(left, best)) best = left;
        if (right < this.counts.length && this.better(right, best)) best = right;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

export interface BpeTrainingResult {
  /** Merges in the order learned: `[left, right]` becomes symbol `firstNewId + index`. */
  merges: [number, number][];
  /** Count of the pair at each merge, to show how quickly frequencies fall. */
  mergeCounts: number[];
}

/**
 * Learns `mergeCount` merges (fewer if no pair occurs twice) over `words`.
 *
 * @param words pre-tokens as symbol id arrays; arrays are consumed (rewritten in place)
 * @param counts how many times each pre-token occurred
 * @param firstNewId id given to the first merged symbol
 */
export function trainBpe(
  words: number[][],
  counts: readonly number[],
  firstNewId: number,
  mergeCount: number,
): BpeTrainingResult {
  if (firstNewId + mergeCount >= 65536) {
    throw new Error(`vocabulary of ${firstNewId + mergeCount} symbols exceeds the 65536 limit`);
  }
  const pairCounts = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPairs = (index: number, sign: 1 | -1, touched: Set<number>) => {
    const word = words[index];
    const count = counts[index] * sign;
    for (let i = 0; i + 1 < word.length; i++) {
      const key = pairKey(word[i], word[i + 1]);
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + count);
      touched.add(key);
      if (sign > 0) {
        let where = pairWords.get(key);
        if (where === undefined) pairWords.set(key, (where = new Set()));
        where.add(index);
      }
    }
  };
  const initial = new Set<number>();
  for (let index = 0; index < words.length; index++) addPairs(index, 1, initial);
  const heap = new MaxHeap();
  for (const key of initial) heap.push(pairCounts.get(key) as number, key);

  const merges: [number, number][] = [];
  const mergeCounts: number[] = [];
  while (merges.length < mergeCount) {
    const top = heap.pop();
    if (top === undefined) break;
    const current = pairCounts.get(top.key) ?? 0;
    // Stale heap entry: the pair's count changed after it was pushed.
    if (current !== top.count) continue;
    if (current < 2) break;
    const left = Math.floor(top.key / 65536);
    const right = top.key % 65536;
    const symbol = firstNewId + merges.length;
    merges.push([left, right]);
    mergeCounts.push(current);
    const touched = new Set<number>();
    for (const index of pairWords.get(top.key) ?? []) {
      const word = words[index];
      let found = false;
      for (let i = 0; i + 1 < word.length; i++) {
        if (word[i] === left && word[i + 1] === right) {
          found = true;
          break;
        }
      }
      if (!found) continue;
      addPairs(index, -1, touched);
      let write = 0;
      for (let read = 0; read < word.length; read++) {
        if (read + 1 < word.length && word[read] === left && word[read + 1] === right) {
          word[write++] = symbol;
          read++;
        } else {
          word[write++] = word[read];
        }
      }
      word.length = write;
      addPairs(index, 1, touched);
    }
    pairWords.delete(top.key);
    pairCounts.delete(top.key);
    touched.delete(top.key);
    for (const key of touched) {
      const count = pairCounts.get(key) as number;
      if (count > 0) heap.push(count, key);
      else pairCounts.delete(key);
    }
  }
  return { merges, mergeCounts };
}
