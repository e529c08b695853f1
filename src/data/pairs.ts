import type { CandidateShown, JudgmentRecord, PromptSnapshot } from '../protocol/records';

/** One training comparison: `chosen` was preferred to `rejected`. */
export interface PreferencePair {
  recordId: string;
  prompt: PromptSnapshot;
  chosen: CandidateShown;
  rejected: CandidateShown;
  /** How many rank levels apart the two were (1 = adjacent, or a best pick vs the rest). */
  levels: number;
}

/** Two candidates judged equally good (a tie); trained with target 0.5, never as a win. */
export interface TiePair {
  recordId: string;
  prompt: PromptSnapshot;
  a: CandidateShown;
  b: CandidateShown;
}

export interface Expansion {
  pairs: PreferencePair[];
  ties: TiePair[];
  /** Pairs dropped because both sides had identical text (no information). */
  degenerate: number;
}

/** Identity of a candidate's content: its text, or its messages for conversational records. */
export function candidateContentKey(candidate: CandidateShown): string {
  return candidate.messages ? JSON.stringify(candidate.messages) : candidate.text;
}

/**
 * Keeps the first candidate of each distinct text, so a comparison never shows (or pairs) two
 * identical samples. The generator returning 4 samples with two equal gives 3 candidates.
 */
export function distinctCandidates<T extends { text: string }>(candidates: readonly T[]): T[] {
  const seen = new Set<string>();
  return candidates.filter((c) => (seen.has(c.text) ? false : (seen.add(c.text), true)));
}

/** Ranked groups best to worst; for a pick, the best and then every other candidate. */
function levelsOf(record: JudgmentRecord): { groups: CandidateShown[][]; tiesInGroups: boolean } {
  const byId = new Map(record.candidates.map((c) => [c.id, c]));
  const judgment = record.judgment;
  if (judgment.kind === 'pick') {
    const best = byId.get(judgment.best);
    if (!best) return { groups: [], tiesInGroups: false };
    const rest = record.candidates.filter((c) => c.id !== judgment.best);
    // The others are only known to be worse than the pick, not equal to each other.
    return { groups: [[best], rest], tiesInGroups: false };
  }
  if (judgment.kind === 'ranking') {
    const groups = judgment.groups.map((g) =>
      g.map((id) => byId.get(id)).filter((c): c is CandidateShown => c !== undefined),
    );
    return { groups, tiesInGroups: true };
  }
  return { groups: [], tiesInGroups: false };
}

/**
 * Expands a judgment into training pairs: every candidate in a better group beats every one in
 * a worse group, and candidates in the same ranking group are ties. A > B = C > D gives the
 * pairs (A,B), (A,C), (A,D), (B,D), (C,D) and the tie (B,C); a strict ranking of K gives
 * K(K-1)/2 pairs. Pairs with identical texts are dropped (counted in `degenerate`) and the same
 * (chosen text, rejected text) is emitted once per record: a text shown twice keeps only its
 * best-ranked copy (the other copy counts in `degenerate`). "none-good" and "skipped" give none.
 */
export function expandJudgment(record: JudgmentRecord): Expansion {
  const levels = levelsOf(record);
  const out: Expansion = { pairs: [], ties: [], degenerate: 0 };
  // A text shown twice keeps only its best-ranked occurrence: the copy adds no information,
  // and ranking it elsewhere would contradict the first (B > C and C > B').
  const firstSeen = new Set<string>();
  const groups = levels.groups
    .map((group) =>
      group.filter((c) => {
        const key = candidateContentKey(c);
        if (firstSeen.has(key)) {
          out.degenerate++;
          return false;
        }
        firstSeen.add(key);
        return true;
      }),
    )
    .filter((group) => group.length > 0);
  for (let i = 0; i < groups.length; i++) {
    for (let j = i + 1; j < groups.length; j++) {
      for (const chosen of groups[i]) {
        for (const rejected of groups[j]) {
          out.pairs.push({
            recordId: record.id,
            prompt: record.prompt,
            chosen,
            rejected,
            levels: j - i,
          });
        }
      }
    }
    if (!levels.tiesInGroups) continue;
    const group = groups[i];
    for (let a = 0; a < group.length; a++) {
      for (let b = a + 1; b < group.length; b++) {
        out.ties.push({ recordId: record.id, prompt: record.prompt, a: group[a], b: group[b] });
      }
    }
  }
  return out;
}
