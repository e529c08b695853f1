/**
 * Per-token rewards for PPO (the InstructGPT / TRL recipe):
 *   r_t = -beta * kl_t                       for every real response token t
 *   r_T += score                             on the last real response token T
 * where kl_t = log pi(y_t) - log pi_ref(y_t) (the "k1" estimator; `objective/kl` is logged
 * with the same estimator so the logged KL is the one being penalised).
 *
 * EOS handling (failure kind R2):
 * - The response mask keeps the first stop token (EOS) and zeroes everything after it, so the
 *   model is trained to emit EOS even when pad == eos.
 * - The score goes on the last real token (the EOS itself when present), never one slot later.
 * - A completion that hit the length limit without a stop token is penalised. Whether it hit
 *   the limit is decided from the completion tokens only, never the prompt (a chat template can
 *   put EOS in the prompt). Convention "subtract" (default, as TRL): score - penalty;
 *   "replace": the score becomes -penalty.
 */

export type MissingEosConvention = 'subtract' | 'replace';

/**
 * 1 up to and including the first stop token, 0 after it. `tokens` are the response tokens
 * padded to a fixed width (padding may equal EOS).
 */
export function responseMask(tokens: readonly number[], stopIds: ReadonlySet<number>): number[] {
  const mask = new Array<number>(tokens.length).fill(0);
  for (let t = 0; t < tokens.length; t++) {
    mask[t] = 1;
    if (stopIds.has(tokens[t])) break;
  }
  return mask;
}

/** True when the completion tokens contain a stop token. */
export function containsStop(tokens: readonly number[], stopIds: ReadonlySet<number>): boolean {
  return tokens.some((t) => stopIds.has(t));
}

/** Index of the last 1 in the mask, or -1 for an empty response. */
export function lastRealIndex(mask: readonly number[]): number {
  for (let t = mask.length - 1; t >= 0; t--) if (mask[t]) return t;
  return -1;
}

/** The sequence score after the length-limit penalty. */
export function penalizedScore(
  score: number,
  hitLengthLimit: boolean,
  penalty: number,
  convention: MissingEosConvention,
): number {
  if (!hitLengthLimit || penalty === 0) return score;
  return convention === 'subtract' ? score - penalty : -penalty;
}

export interface TokenRewardInput {
  /** [T] log-probabilities of the sampled tokens under the policy at sampling time. */
  logprobs: readonly number[];
  /** [T] the same under the reference model (adapter off). */
  refLogprobs: readonly number[];
  /** [T] response mask (see `responseMask`). */
  mask: readonly number[];
  /** Reward-model score of the whole sequence. */
  score: number;
  /** The completion stopped at max-new-tokens without a stop token. */
  hitLengthLimit: boolean;
}

export interface TokenRewardConfig {
  klCoef: number;
  missingEosPenalty: number;
  missingEosConvention: MissingEosConvention;
}

export interface TokenRewards {
  /** [T] per-token rewards, 0 on padding. */
  rewards: number[];
  /** [T] per-token KL (k1), 0 on padding. */
  kl: number[];
  /** Score after the length penalty (what was added on the last token). */
  score: number;
  /** Sum of -beta * kl over the sequence. */
  nonScoreReward: number;
}

export function assembleTokenRewards(
  input: TokenRewardInput,
  config: TokenRewardConfig,
): TokenRewards {
  const T = input.mask.length;
  if (input.logprobs.length !== T || input.refLogprobs.length !== T) {
    throw new Error(
      `assembleTokenRewards: mask length ${T}, logprobs ${input.logprobs.length}, ` +
        `refLogprobs ${input.refLogprobs.length}; they must match`,
    );
  }
  const kl = new Array<number>(T).fill(0);
  const rewards = new Array<number>(T).fill(0);
  let nonScoreReward = 0;
  for (let t = 0; t < T; t++) {
    if (!input.mask[t]) continue;
    kl[t] = input.logprobs[t] - input.refLogprobs[t];
    rewards[t] = 0 - config.klCoef * kl[t]; // "0 -" keeps +0 when kl is 0
    nonScoreReward += rewards[t];
  }
  const score = penalizedScore(
    input.score,
    input.hitLengthLimit,
    config.missingEosPenalty,
    config.missingEosConvention,
  );
  const last = lastRealIndex(input.mask);
  if (last >= 0) rewards[last] += score;
  return { rewards, kl, score, nonScoreReward };
}
