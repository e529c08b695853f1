/**
 * The promotion rule: when a tuned adapter may replace the current completion policy. The
 * evidence is a blind comparison on held-out prompts (prompts of judgments that no training
 * stage used): samples of the tuned adapter and of the previous policy (the active adapter, or
 * the base model) are scored by the reward model, and the tuned adapter's win rate (ties count
 * half) gets a 95% interval over prompts (`clusteredWinRate`: the K samples of one prompt are
 * not independent comparisons). The adapter is promoted only when all of these hold:
 *
 * 1. at least `minPrompts` distinct held-out prompts were compared (fewer says too little about
 *    contexts the developer has not judged yet);
 * 2. its mean per-sequence KL against the base model (k1 estimator, as in PPO's penalty) is
 *    finite and within `klBudget`;
 * 3. the lower end of the win rate's 95% interval is above 50%: the reward model prefers it to
 *    the previous policy by more than chance, not only on average. An adapter that samples the
 *    same text as the previous policy ties and is not promoted.
 */
import { formatWinRate, type WinRate } from './winRate';

/** Default of {@link PromotionRule.minPrompts}. */
export const DEFAULT_MIN_PROMPTS = 4;

/**
 * Smallest {@link PromotionRule.minPrompts} a config may set. The interval is over prompts: the
 * spread between prompts is estimated from prompts - 1 degrees of freedom, so with 2 or 3 prompts
 * the t correction (12.7 or 4.30, against 1.96 for many prompts) leaves an interval decided by
 * that one guess of the spread, not by the comparisons.
 */
export const LEAST_MIN_PROMPTS = 4;

export interface PromotionRule {
  /** Fewest distinct held-out prompts a promotion may rest on. */
  minPrompts: number;
  /** Largest mean per-sequence KL (nats) against the base model a promoted adapter may have. */
  klBudget: number;
}

export interface PromotionEvidence {
  /** Distinct held-out prompts compared. */
  prompts: number;
  /** The tuned adapter's reward-model win rate against the previous policy. */
  rewardWinRate?: WinRate;
  /** Mean over the tuned samples of sum(log pi - log pi_base). */
  meanKl: number;
  /** What the tuned adapter was compared with, for the reason ("base model", "adapter X"). */
  baseline?: string;
}

export interface PromotionDecision {
  promote: boolean;
  reason: string;
}

export function decidePromotion(
  evidence: PromotionEvidence,
  rule: PromotionRule,
): PromotionDecision {
  const against = evidence.baseline ?? 'the previous policy';
  if (evidence.prompts < rule.minPrompts) {
    return {
      promote: false,
      reason:
        `only ${evidence.prompts} held-out prompt${evidence.prompts === 1 ? '' : 's'} to compare ` +
        `on (at least ${rule.minPrompts} needed); judge comparisons in more places and train again`,
    };
  }
  const w = evidence.rewardWinRate;
  if (!w || w.n === 0) return { promote: false, reason: 'no held-out comparisons to decide on' };
  const kl = evidence.meanKl;
  if (!Number.isFinite(kl)) {
    return { promote: false, reason: `mean KL against the base model is ${kl}, not a number` };
  }
  if (kl > rule.klBudget) {
    return {
      promote: false,
      reason: `mean KL ${kl.toFixed(3)} nats exceeds the budget ${rule.klBudget}`,
    };
  }
  const rate = `reward-model win rate against ${against} ${formatWinRate(w)}`;
  if (!(w.low > 0.5)) {
    return {
      promote: false,
      reason: `${rate}: the lower end of its 95% interval is not above 50%`,
    };
  }
  return {
    promote: true,
    reason: `${rate}, mean KL ${kl.toFixed(3)} nats (budget ${rule.klBudget})`,
  };
}
