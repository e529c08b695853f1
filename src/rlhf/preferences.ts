/**
 * From stored judgments to training pairs, and from oracle verdicts to stored judgments.
 * Rankings expand through `src/data/pairs.ts` (A > B = C > D gives 5 pairs and 1 tie); a tie
 * becomes a pair with target 0.5, never a win.
 */
import { isEvaluationRecord } from '../data/blindAb';
import { expandJudgment } from '../data/pairs';
import { contentId, importedCandidate, importedJudgment } from '../data/recordFactory';
import type { JudgmentRecord, PreferenceRecord } from '../data';
import type { Oracle, Judgment as OracleJudgment, RankingJudgment } from './oracle';
import type { PromptContext } from './promptContext';

/**
 * One comparison the reward model or DPO trains on, in the context it was judged in (`prompt`
 * before the cursor, `suffix` after it).
 */
export interface TrainingPair extends PromptContext {
  recordId: string;
  chosen: string;
  rejected: string;
  /** 1 = chosen preferred, 0.5 = tie (then chosen/rejected is an arbitrary order). */
  target: 1 | 0.5;
  /** Required reward gap (Llama 2 margins), from record meta "margin"; 0 when absent. */
  margin: number;
}

export interface PairSummary {
  pairs: TrainingPair[];
  strictPairs: number;
  tiePairs: number;
  /** Pairs dropped because both sides had identical text. */
  degenerate: number;
  /** Records without pairs: implicit signals, none-good, skipped, conversational. */
  unusableRecords: number;
  /**
   * Blind A/B evaluation judgments left out: they measure a tuned adapter against the base,
   * and training on them would fit the policy to its own test.
   */
  evaluationRecords: number;
}

export function pairsFromRecords(records: readonly PreferenceRecord[]): PairSummary {
  const out: PairSummary = {
    pairs: [],
    strictPairs: 0,
    tiePairs: 0,
    degenerate: 0,
    unusableRecords: 0,
    evaluationRecords: 0,
  };
  for (const record of records) {
    if (isEvaluationRecord(record)) {
      out.evaluationRecords++;
      continue;
    }
    // Limitation: conversational records (chat messages) are not trained on; code completion
    // prompts are plain prefixes.
    if (record.type !== 'judgment' || record.prompt.messages) {
      out.unusableRecords++;
      continue;
    }
    const expansion = expandJudgment(record);
    out.degenerate += expansion.degenerate;
    if (expansion.pairs.length === 0 && expansion.ties.length === 0) out.unusableRecords++;
    const margin = typeof record.meta?.margin === 'number' ? record.meta.margin : 0;
    for (const p of expansion.pairs) {
      out.pairs.push({
        recordId: record.id,
        prompt: record.prompt.prefix,
        suffix: record.prompt.suffix,
        chosen: p.chosen.text,
        rejected: p.rejected.text,
        target: 1,
        margin,
      });
      out.strictPairs++;
    }
    for (const t of expansion.ties) {
      out.pairs.push({
        recordId: record.id,
        prompt: record.prompt.prefix,
        suffix: record.prompt.suffix,
        chosen: t.a.text,
        rejected: t.b.text,
        target: 0.5,
        margin: 0,
      });
      out.tiePairs++;
    }
  }
  return out;
}

/**
 * Asks the oracle about two candidates shown in the order given and returns the judgment as a
 * store record (origin "oracle:<rule>"), so simulated judgments go through the same path as a
 * developer's.
 */
export function oracleRecord(
  oracle: Oracle,
  prompt: string,
  first: string,
  second: string,
  meta: { model: string; index: number },
): { record: JudgmentRecord; judgment: OracleJudgment } {
  const judgment = oracle.judge(prompt, first, second);
  const candidates = [
    importedCandidate('c0', first, meta.model, 0),
    importedCandidate('c1', second, meta.model, 1),
  ];
  const record = importedJudgment({
    id: contentId('oracle', [
      oracle.rule.name,
      oracle.config.seed,
      meta.index,
      prompt,
      first,
      second,
    ]),
    origin: `oracle:${oracle.rule.name}`,
    annotator: `oracle:${oracle.rule.name}`,
    prefix: prompt,
    candidates,
    judgment:
      judgment.verdict === 'tie'
        ? { kind: 'ranking', groups: [['c0', 'c1']] }
        : { kind: 'pick', best: judgment.verdict === 'a' ? 'c0' : 'c1' },
    meta: { oracleScores: [judgment.scoreA, judgment.scoreB], flipped: judgment.flipped },
  });
  return { record, judgment };
}

/**
 * Asks the oracle to rank K candidates (shown in the order given) and returns one store record
 * with a ranking judgment; identical texts are shown once (as the comparison view does).
 */
export function oracleRankingRecord(
  oracle: Oracle,
  prompt: string,
  texts: readonly string[],
  meta: { model: string; index: number },
): { record: JudgmentRecord; judgment: RankingJudgment; shown: string[] } {
  const shown = [...new Set(texts)];
  const judgment = oracle.rank(prompt, shown);
  const candidates = shown.map((text, i) => importedCandidate(`c${i}`, text, meta.model, i));
  const record = importedJudgment({
    id: contentId('oracle', [oracle.rule.name, oracle.config.seed, meta.index, prompt, ...shown]),
    origin: `oracle:${oracle.rule.name}`,
    annotator: `oracle:${oracle.rule.name}`,
    prefix: prompt,
    candidates,
    judgment:
      shown.length === 1
        ? { kind: 'skipped' }
        : { kind: 'ranking', groups: judgment.groups.map((g) => g.map((i) => `c${i}`)) },
    meta: { oracleScores: judgment.scores, flipped: judgment.flipped },
  });
  return { record, judgment, shown };
}
