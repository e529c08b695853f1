import { createHash } from 'crypto';
import type { JudgmentRecord, PreferenceRecord } from '../protocol/records';
import { isEvaluationRecord } from './blindAb';
import { candidateContentKey, expandJudgment } from './pairs';

/** A proportion with its 95% Wilson score interval. */
export interface Proportion {
  count: number;
  total: number;
  share: number;
  low: number;
  high: number;
}

const Z95 = 1.959963984540054;

/**
 * Wilson score interval (Wilson 1927; Brown, Cai & DasGupta 2001): centre
 * (p + z²/2n) / (1 + z²/n), half-width z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n).
 */
export function wilson(count: number, total: number, z = Z95): Proportion {
  if (total === 0) return { count, total, share: NaN, low: NaN, high: NaN };
  const p = count / total;
  const z2 = z * z;
  const denom = 1 + z2 / total;
  const centre = (p + z2 / (2 * total)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / total + z2 / (4 * total * total))) / denom;
  return {
    count,
    total,
    share: p,
    low: Math.max(0, centre - half),
    high: Math.min(1, centre + half),
  };
}

export interface PositionBias {
  /** Number of candidates shown. */
  shown: number;
  /** Share of picks per shown position (0 = first), each with a 95% interval. */
  byPosition: Proportion[];
  /** Share expected with no position bias (1 / shown). */
  expected: number;
}

export interface Agreement {
  /** Comparisons (same prompt and candidate texts) judged more than once. */
  comparisons: number;
  /** Candidate pairs judged on both occasions. */
  pairs: number;
  agreeing: number;
  rate: number;
}

export interface DatasetStats {
  records: number;
  byType: Record<string, number>;
  byJudgment: Record<string, number>;
  byAnnotator: Record<string, number>;
  byLanguage: Record<string, number>;
  byOrigin: Record<string, number>;
  /** Per candidate model: times shown, and times it won a pick. */
  byModel: Record<string, { shown: number; picked: number }>;
  /** Pairs and ties the trainers would use (blind A/B evaluation judgments give none). */
  trainingPairs: number;
  ties: number;
  degeneratePairs: number;
  /** Blind A/B evaluation judgments: they measure an adapter and are never training data. */
  evaluationRecords: number;
  positionBias: PositionBias[];
  /** Records with no known shown position for the pick (e.g. TRL imports). */
  picksWithoutPosition: number;
  /** Picks whose shown position is not in 0..shown-1 (e.g. 1-based imports); left out of bias. */
  picksOutOfRange: number;
  duplicates: { sameId: number; sameJudgment: number; repeatedComparisons: number };
  selfConsistency: Record<string, Agreement>;
  interAnnotator: Agreement & { disagreeingComparisons: number };
}

/**
 * The entry `key` of a count map, created by `init` when absent. Keys come from the data
 * (annotator, language, model names), so "constructor" or "__proto__" must be plain own keys,
 * never the inherited Object.prototype members.
 */
function slot<T>(map: Record<string, T>, key: string, init: () => T): T {
  if (!Object.hasOwn(map, key)) {
    Object.defineProperty(map, key, {
      value: init(),
      writable: true,
      enumerable: true,
      configurable: true,
    });
  }
  return map[key];
}

function bump(map: Record<string, number>, key: string, by = 1): void {
  map[key] = slot(map, key, () => 0) + by;
}

/** Identity of a comparison: the prompt and the set of distinct candidate texts. */
export function comparisonKey(record: JudgmentRecord): string {
  const texts = [...new Set(record.candidates.map(candidateContentKey))].sort();
  const hash = createHash('sha256');
  hash.update(
    JSON.stringify([
      record.prompt.prefix,
      record.prompt.suffix,
      record.prompt.messages ?? null,
      texts,
    ]),
  );
  return hash.digest('hex');
}

type Outcome = '>' | '<' | '=';

/** Outcome per unordered text pair (key: the two texts sorted), from one judgment. */
function outcomes(record: JudgmentRecord): Map<string, Outcome> {
  const out = new Map<string, Outcome>();
  const { pairs, ties } = expandJudgment(record);
  for (const p of pairs) {
    const a = candidateContentKey(p.chosen);
    const b = candidateContentKey(p.rejected);
    out.set(JSON.stringify([a, b].sort()), a < b ? '>' : '<');
  }
  for (const t of ties) {
    out.set(JSON.stringify([candidateContentKey(t.a), candidateContentKey(t.b)].sort()), '=');
  }
  return out;
}

function compare(
  a: Map<string, Outcome>,
  b: Map<string, Outcome>,
): { pairs: number; agreeing: number } {
  let pairs = 0;
  let agreeing = 0;
  for (const [key, outcome] of a) {
    const other = b.get(key);
    if (other === undefined) continue;
    pairs++;
    if (other === outcome) agreeing++;
  }
  return { pairs, agreeing };
}

function bestPosition(record: JudgmentRecord): number | null | undefined {
  const j = record.judgment;
  let bestId: string | undefined;
  if (j.kind === 'pick') bestId = j.best;
  else if (j.kind === 'ranking' && j.groups[0].length === 1) bestId = j.groups[0][0];
  if (bestId === undefined) return undefined;
  return record.candidates.find((c) => c.id === bestId)?.position ?? null;
}

/** Computes the quality report behind `code-rlhf data stats`. */
export function computeStats(records: readonly PreferenceRecord[]): DatasetStats {
  const stats: DatasetStats = {
    records: records.length,
    byType: {},
    byJudgment: {},
    byAnnotator: {},
    byLanguage: {},
    byOrigin: {},
    byModel: {},
    trainingPairs: 0,
    ties: 0,
    degeneratePairs: 0,
    evaluationRecords: 0,
    positionBias: [],
    picksWithoutPosition: 0,
    picksOutOfRange: 0,
    duplicates: { sameId: 0, sameJudgment: 0, repeatedComparisons: 0 },
    selfConsistency: {},
    interAnnotator: { comparisons: 0, pairs: 0, agreeing: 0, rate: NaN, disagreeingComparisons: 0 },
  };
  const ids = new Set<string>();
  const picksByShown = new Map<number, number[]>();
  const seenJudgments = new Set<string>();
  const byComparison = new Map<string, JudgmentRecord[]>();
  for (const record of records) {
    if (ids.has(record.id)) stats.duplicates.sameId++;
    ids.add(record.id);
    bump(stats.byType, record.type);
    bump(stats.byAnnotator, record.annotator);
    bump(stats.byLanguage, record.language);
    bump(stats.byOrigin, record.origin);
    if (record.type === 'implicit') {
      bump(stats.byJudgment, `implicit:${record.outcome}`);
      continue;
    }
    bump(stats.byJudgment, record.judgment.kind);
    const j = record.judgment;
    for (const c of record.candidates) {
      const model = slot(stats.byModel, c.model, () => ({ shown: 0, picked: 0 }));
      model.shown++;
      if (j.kind === 'pick' && j.best === c.id) model.picked++;
    }
    if (isEvaluationRecord(record)) {
      stats.evaluationRecords++;
    } else {
      const expansion = expandJudgment(record);
      stats.trainingPairs += expansion.pairs.length;
      stats.ties += expansion.ties.length;
      stats.degeneratePairs += expansion.degenerate;
    }
    const position = bestPosition(record);
    if (position === null) stats.picksWithoutPosition++;
    else if (position !== undefined) {
      const shown = record.candidates.filter((c) => c.position !== null).length;
      const counts = picksByShown.get(shown) ?? new Array<number>(shown).fill(0);
      if (position < shown) {
        counts[position]++;
        picksByShown.set(shown, counts);
      } else {
        stats.picksOutOfRange++;
      }
    }
    const key = comparisonKey(record);
    const judgmentKey = JSON.stringify([key, record.annotator, [...outcomes(record)].sort()]);
    if (seenJudgments.has(judgmentKey)) stats.duplicates.sameJudgment++;
    seenJudgments.add(judgmentKey);
    const list = byComparison.get(key) ?? [];
    list.push(record);
    byComparison.set(key, list);
  }
  for (const [shown, counts] of [...picksByShown].sort((a, b) => a[0] - b[0])) {
    const total = counts.reduce((s, c) => s + c, 0);
    stats.positionBias.push({
      shown,
      byPosition: counts.map((c) => wilson(c, total)),
      expected: 1 / shown,
    });
  }
  for (const list of byComparison.values()) {
    if (list.length < 2) continue;
    stats.duplicates.repeatedComparisons++;
    const byAnnotator = new Map<string, JudgmentRecord[]>();
    for (const r of list)
      byAnnotator.set(r.annotator, [...(byAnnotator.get(r.annotator) ?? []), r]);
    // Self-consistency: each later judgment of the same comparison against the annotator's first.
    for (const [annotator, own] of byAnnotator) {
      if (own.length < 2) continue;
      const agreement = slot(stats.selfConsistency, annotator, () => ({
        comparisons: 0,
        pairs: 0,
        agreeing: 0,
        rate: NaN,
      }));
      agreement.comparisons++;
      const first = outcomes(own[0]);
      for (const later of own.slice(1)) {
        const result = compare(first, outcomes(later));
        agreement.pairs += result.pairs;
        agreement.agreeing += result.agreeing;
      }
    }
    // Between annotators: each pair of annotators' first judgments of the comparison.
    const firsts = [...byAnnotator.values()].map((own) => outcomes(own[0]));
    if (firsts.length < 2) continue;
    stats.interAnnotator.comparisons++;
    let disagreed = false;
    for (let a = 0; a < firsts.length; a++) {
      for (let b = a + 1; b < firsts.length; b++) {
        const result = compare(firsts[a], firsts[b]);
        stats.interAnnotator.pairs += result.pairs;
        stats.interAnnotator.agreeing += result.agreeing;
        if (result.agreeing < result.pairs) disagreed = true;
      }
    }
    if (disagreed) stats.interAnnotator.disagreeingComparisons++;
  }
  for (const a of Object.values(stats.selfConsistency))
    a.rate = a.pairs ? a.agreeing / a.pairs : NaN;
  const ia = stats.interAnnotator;
  ia.rate = ia.pairs ? ia.agreeing / ia.pairs : NaN;
  return stats;
}

const pct = (x: number) => (Number.isNaN(x) ? 'n/a' : `${(100 * x).toFixed(1)}%`);

function table(title: string, counts: Record<string, number>): string[] {
  const rows = Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return [`${title}:`, ...rows.map(([k, v]) => `  ${k.padEnd(34)} ${String(v).padStart(7)}`)];
}

/** Renders {@link DatasetStats} as the plain-text report printed by the CLI. */
export function formatStats(stats: DatasetStats): string {
  const out: string[] = [`records: ${stats.records}`];
  out.push(...table('by type', stats.byType), ...table('by judgment', stats.byJudgment));
  out.push(...table('by annotator', stats.byAnnotator), ...table('by language', stats.byLanguage));
  out.push(...table('by source (origin)', stats.byOrigin));
  out.push('by source (candidate model): shown, picked, pick rate');
  for (const [model, m] of Object.entries(stats.byModel).sort((a, b) => b[1].shown - a[1].shown)) {
    out.push(
      `  ${model.padEnd(34)} ${String(m.shown).padStart(7)} ${String(m.picked).padStart(7)}   ${pct(m.picked / m.shown)}`,
    );
  }
  out.push(
    `training pairs: ${stats.trainingPairs}, ties: ${stats.ties}, degenerate pairs dropped: ${stats.degeneratePairs}` +
      (stats.evaluationRecords > 0
        ? `, blind A/B evaluation judgments (not training data): ${stats.evaluationRecords}`
        : ''),
  );
  out.push('position bias (share of picks by shown position, 95% Wilson interval):');
  if (stats.positionBias.length === 0) out.push('  no picks with known positions');
  for (const bias of stats.positionBias) {
    out.push(`  ${bias.shown} shown (no bias: ${pct(bias.expected)} each):`);
    bias.byPosition.forEach((p, i) => {
      out.push(
        `    position ${i}: ${p.count}/${p.total} = ${pct(p.share)} [${pct(p.low)}, ${pct(p.high)}]`,
      );
    });
  }
  if (stats.picksWithoutPosition > 0)
    out.push(`  picks without a known position: ${stats.picksWithoutPosition}`);
  if (stats.picksOutOfRange > 0) {
    out.push(`  picks left out: shown position not in 0..(shown-1): ${stats.picksOutOfRange}`);
  }
  const d = stats.duplicates;
  out.push(
    `duplicates: same id ${d.sameId}, same judgment of the same comparison ${d.sameJudgment}, comparisons shown more than once ${d.repeatedComparisons}`,
  );
  out.push('self-consistency (same annotator, same comparison judged again):');
  const self = Object.entries(stats.selfConsistency);
  if (self.length === 0) out.push('  no repeated comparisons');
  for (const [annotator, a] of self) {
    out.push(
      `  ${annotator}: ${a.agreeing}/${a.pairs} pairs agree (${pct(a.rate)}) over ${a.comparisons} comparisons`,
    );
  }
  const ia = stats.interAnnotator;
  out.push(
    ia.comparisons === 0
      ? 'inter-annotator: no comparison judged by more than one annotator'
      : `inter-annotator: ${ia.agreeing}/${ia.pairs} pairs agree (${pct(ia.rate)}); ${ia.disagreeingComparisons} of ${ia.comparisons} shared comparisons have a disagreement`,
  );
  return out.join('\n');
}
