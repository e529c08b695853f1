/**
 * The warning for a reward model whose training encoding is unknown. A reward model scores text
 * cut the way its training pairs were (prompt, suffix and completion tokens, and the completion
 * mark, from its run.json); a folder without run.json (copied by hand, or assembled from an
 * adapter and a head) is scored with the caller's limits instead, and its rows are unmarked:
 * nothing says how it was trained, and unmarked is how every reward model read its rows before
 * the mark. Reward models now train marked by default, so such a folder's scores are likely off
 * its training distribution: the callers that load one say so.
 */
import type { EncodingLimits } from './batch';
import type { RewardScorer } from './rewardModel';
import type { LogLevel } from './trainerContext';

/** Logs a warning through `log` when `scorer`, loaded from `dir`, does not know its encoding. */
export function warnIfRewardLimitsUnknown(
  scorer: Pick<RewardScorer, 'encoding'>,
  dir: string,
  limits: EncodingLimits,
  log: (level: LogLevel, message: string) => void,
): void {
  if (scorer.encoding !== undefined) return;
  log(
    'warn',
    `reward model ${dir} has no run.json, so the token limits it was trained with are unknown; ` +
      `scoring with this job's limits instead (maxPromptTokens ${limits.maxPromptTokens}, ` +
      `maxSuffixTokens ${limits.maxSuffixTokens ?? 0}, maxCompletionTokens ` +
      `${limits.maxCompletionTokens}), which cut its inputs differently if its training used ` +
      'others, and with rows unmarked (no completion mark): a reward model trained with ' +
      'markCompletion (the default) scores them off-distribution',
  );
}
