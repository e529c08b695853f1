/**
 * Evaluation of a tuned adapter against the base (or a previous adapter) on prompts it never
 * trained on: K samples from each per prompt, shown to the judge in a random order (blind), and
 * the tuned model's win rate with a 95% interval over prompts (Wilson's for K = 1; with an
 * effective sample size for K > 1, see `clusteredWinRate`). The judge is an oracle (simulation) or
 * the reward model (the promotion gate on held-out judgments). Mean KL of the tuned samples
 * against the reference is measured with the k1 estimator used in training.
 */
import * as path from 'path';
import type { LlamaGenerator } from '../generation';
import type { LoadedModel } from '../model/loader';
import type { LoraAdapter } from '../model/lora';
import type { ModelRuntime } from '../model/runtime';
import { DEFAULT_MIN_PROMPTS, decidePromotion, type PromotionDecision } from './promotionRule';
import { writeFileAtomic } from './checkpoint';
import * as fs from 'fs';
import type { Oracle } from './oracle';
import { createRng } from './random';
import type { RewardScorer } from './rewardModel';
import { sampleRollouts } from './ppo';
import { contextKey, type PromptInput } from './promptContext';
import { throwIfCancelled, type TrainerContext } from './trainerContext';
import { clusteredWinRate, type PromptTally, type WinRate } from './winRate';

export interface EvalSettings {
  temperature: number;
  maxNewTokens: number;
  maxLines: number;
  maxPromptTokens: number;
  /**
   * Suffix tokens kept for scoring, as `maxPromptTokens` only when the reward model's training
   * encoding is unknown; absent reads no suffix.
   */
  maxSuffixTokens?: number;
  maxCompletionTokens: number;
  seed: number;
  /** Samples per prompt from each side (K, default 1); sample k of both shares a seed. */
  samplesPerPrompt?: number;
}

/** Which side a judge preferred in one compared pair. */
export type PairVerdict = 'tuned' | 'baseline' | 'tie';

export interface ComparisonItem {
  prompt: string;
  /** Text after the cursor of the compared context; absent when there is none. */
  suffix?: string;
  tuned: string;
  baseline: string;
  /** Was the tuned completion shown first? */
  tunedFirst: boolean;
  oracleVerdict?: PairVerdict;
  rewardTuned?: number;
  rewardBaseline?: number;
  /** Sum over the tuned completion of log pi - log pi_ref. */
  kl: number;
}

export interface EvaluationReport {
  /** Distinct prompts compared (each gives `samplesPerPrompt` comparisons). */
  prompts: number;
  oracleWinRate?: WinRate;
  rewardWinRate?: WinRate;
  meanKl: number;
  meanRewardTuned?: number;
  meanRewardBaseline?: number;
  items: ComparisonItem[];
}

/**
 * Samples K completions per prompt (default 1) from the tuned adapter and from the baseline
 * (undefined = base model) with the same seeds, and judges them pairwise.
 */
export async function compareAdapters(options: {
  model: LoadedModel;
  runtime: ModelRuntime;
  generator: LlamaGenerator;
  /** Contexts to complete (fill-in-the-middle when one has a suffix); a string has none. */
  prompts: readonly PromptInput[];
  tuned: LoraAdapter;
  baseline?: LoraAdapter;
  oracle?: Oracle;
  rewardScorer?: RewardScorer;
  settings: EvalSettings;
  workDir: string;
  ctx: TrainerContext;
}): Promise<EvaluationReport> {
  const { settings, ctx } = options;
  const sample = (adapter: LoraAdapter | undefined, dir: string) =>
    sampleRollouts(
      options.generator,
      options.prompts,
      adapter,
      dir,
      {
        samples: settings.samplesPerPrompt ?? 1,
        temperature: settings.temperature,
        maxNewTokens: settings.maxNewTokens,
        maxLines: settings.maxLines,
        seed: settings.seed,
      },
      ctx,
    );
  const tuned = await sample(options.tuned, path.join(options.workDir, 'eval-tuned'));
  const baseline = await sample(options.baseline, path.join(options.workDir, 'eval-baseline'));
  // KL of the tuned samples against the reference (the base model, adapter off).
  const klItems = tuned.map((t) => ({ prompt: t.row.prompt, completion: t.row.completion }));
  const nonEmpty = klItems.map((k, i) => ({ ...k, i })).filter((k) => k.completion.length > 0);
  const kls = new Array<number>(tuned.length).fill(0);
  for (let start = 0; start < nonEmpty.length; start += 16) {
    throwIfCancelled(ctx.signal);
    const chunk = nonEmpty.slice(start, start + 16);
    const [policy, reference] = await ctx.step(async () => [
      await options.runtime.completionLogprobs(chunk, {
        adapter: options.tuned,
        temperature: settings.temperature,
      }),
      await options.runtime.completionLogprobs(chunk, { temperature: settings.temperature }),
    ]);
    chunk.forEach((c, k) => {
      let sum = 0;
      for (let j = 0; j < c.completion.length; j++)
        sum += policy[k].logprobs[j] - reference[k].logprobs[j];
      kls[c.i] = sum;
    });
  }
  const order = createRng(settings.seed ^ 0xab);
  const items: ComparisonItem[] = tuned.map((t, i) => ({
    prompt: t.prompt,
    ...(t.suffix !== '' ? { suffix: t.suffix } : {}),
    tuned: t.text,
    baseline: baseline[i].text,
    tunedFirst: order() < 0.5,
    kl: kls[i],
  }));
  const report: EvaluationReport = {
    prompts: options.prompts.length,
    meanKl: items.reduce((a, x) => a + x.kl, 0) / Math.max(1, items.length),
    items,
  };
  if (options.oracle) {
    for (const item of items) {
      const [first, second] = item.tunedFirst
        ? [item.tuned, item.baseline]
        : [item.baseline, item.tuned];
      const verdict = options.oracle.judge(item.prompt, first, second).verdict;
      item.oracleVerdict =
        verdict === 'tie' ? 'tie' : (verdict === 'a') === item.tunedFirst ? 'tuned' : 'baseline';
    }
    report.oracleWinRate = winRateByPrompt(items, (item) => item.oracleVerdict);
  }
  if (options.rewardScorer) {
    // Pairs are cut the way the reward model's training pairs were (its run.json), not with the
    // sampling limits above; those apply only when the scorer does not know its encoding.
    const scorer = options.rewardScorer;
    const fallback = {
      maxPromptTokens: settings.maxPromptTokens,
      maxSuffixTokens: settings.maxSuffixTokens,
      maxCompletionTokens: settings.maxCompletionTokens,
    };
    const rows = items.flatMap((item) => {
      const context = { prompt: item.prompt, suffix: item.suffix ?? '' };
      return [
        scorer.encode(context, item.tuned, fallback),
        scorer.encode(context, item.baseline, fallback),
      ];
    });
    const scores = await ctx.step(() => scorer.score(rows));
    items.forEach((item, i) => {
      item.rewardTuned = scores[2 * i];
      item.rewardBaseline = scores[2 * i + 1];
    });
    report.rewardWinRate = winRateByPrompt(items, rewardVerdict);
    report.meanRewardTuned =
      items.reduce((a, x) => a + x.rewardTuned!, 0) / Math.max(1, items.length);
    report.meanRewardBaseline =
      items.reduce((a, x) => a + x.rewardBaseline!, 0) / Math.max(1, items.length);
  }
  return report;
}

/** The reward model's verdict on a scored pair: the higher score wins; equal scores tie. */
export function rewardVerdict(
  item: Pick<ComparisonItem, 'rewardTuned' | 'rewardBaseline'>,
): PairVerdict | undefined {
  const { rewardTuned: tuned, rewardBaseline: baseline } = item;
  if (tuned === undefined || baseline === undefined) return undefined;
  return tuned > baseline ? 'tuned' : tuned < baseline ? 'baseline' : 'tie';
}

/**
 * The tuned side's win rate over compared pairs (ties count half), the pairs of one context
 * (same text before and after the cursor) forming one cluster of the interval; pairs without a
 * verdict are left out.
 */
export function winRateByPrompt<T extends Pick<ComparisonItem, 'prompt' | 'suffix'>>(
  items: readonly T[],
  verdict: (item: T) => PairVerdict | undefined,
): WinRate {
  const byPrompt = new Map<string, PromptTally>();
  for (const item of items) {
    const v = verdict(item);
    if (v === undefined) continue;
    const key = contextKey({ prompt: item.prompt, suffix: item.suffix ?? '' });
    let tally = byPrompt.get(key);
    if (!tally) byPrompt.set(key, (tally = { wins: 0, losses: 0, ties: 0 }));
    if (v === 'tuned') tally.wins++;
    else if (v === 'baseline') tally.losses++;
    else tally.ties++;
  }
  return clusteredWinRate([...byPrompt.values()]);
}

/**
 * The promotion rule of `promotionRule.ts` (the one the editor's gate applies) for a report:
 * the tuned adapter must beat the previous one beyond chance and stay within the KL budget.
 */
export function shouldPromote(
  report: Pick<EvaluationReport, 'prompts' | 'rewardWinRate' | 'meanKl'>,
  klBudget: number,
  minPrompts = DEFAULT_MIN_PROMPTS,
): PromotionDecision {
  return decidePromotion(
    { prompts: report.prompts, rewardWinRate: report.rewardWinRate, meanKl: report.meanKl },
    { minPrompts, klBudget },
  );
}

export interface ActiveAdapterPointer {
  /** Adapter folder now used for completions, or null for the base model. */
  active: string | null;
  /** Every adapter that was ever promoted, newest last: all remain selectable. */
  history: { path: string; promotedAt: string; reason: string }[];
}

/** Reads `<root>/active.json`; a missing file means the base model is active. */
export function readActivePointer(root: string): ActiveAdapterPointer {
  const file = path.join(root, 'active.json');
  if (!fs.existsSync(file)) return { active: null, history: [] };
  const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as ActiveAdapterPointer;
  if (!('active' in parsed) || !Array.isArray(parsed.history)) {
    throw new Error(`${file}: expected {"active": string|null, "history": [...]}`);
  }
  return parsed;
}

/** Makes `adapterDir` the active adapter, atomically; earlier adapters stay in the history. */
export function promoteAdapter(
  root: string,
  adapterDir: string,
  reason: string,
): ActiveAdapterPointer {
  const pointer = readActivePointer(root);
  const next: ActiveAdapterPointer = {
    active: adapterDir,
    history: [
      ...pointer.history,
      { path: adapterDir, promotedAt: new Date().toISOString(), reason },
    ],
  };
  writeFileAtomic(path.join(root, 'active.json'), JSON.stringify(next, null, 2));
  return next;
}
