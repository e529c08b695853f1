/**
 * Graph pieces of the reward model, PPO and DPO, built from the engine's differentiable ops:
 * last-real-token selection, scalar heads, and the three losses. Each loss matches its plain
 * reference in `bradleyTerry.ts` / `ppoMath.ts`, which the tests check.
 */
import { op, type Tensor } from '../engine';

/**
 * One-hot [B, T] (float) of each row's last real token, from the attention mask [B, T] (1 =
 * real): the position of the last 1, so right and left padding both work, and no token id is
 * ever searched for (an EOS id can legitimately appear inside code). A row with no real token
 * selects nothing (all zeros).
 */
export function lastTokenOneHot(
  attentionMask: Tensor,
  dtype: 'float32' | 'float64' = 'float32',
): Tensor {
  const g = attentionMask.graph;
  const t = attentionMask.shape[1];
  const mask = op.cast(attentionMask, dtype); // [B, T]
  const positions = op.add(op.cast(op.arange(g, 0, t, [attentionMask]), dtype), 1); // [T], 1-based
  const weighted = op.mul(mask, op.unsqueeze(positions, [0])); // [B, T]: position where real, else 0
  const last = op.reduceMax(weighted, [1], true); // [B, 1]
  const isLast = op.cast(op.equal(weighted, last), dtype); // [B, T]
  const hasAny = op.cast(op.greater(last, 0), dtype); // [B, 1]
  return op.mul(isLast, hasAny);
}

/** hidden [B, T, H] at the positions of a one-hot [B, T] -> [B, H]. */
export function selectPositions(hidden: Tensor, oneHot: Tensor): Tensor {
  return op.reduceSum(op.mul(hidden, op.unsqueeze(oneHot, [-1])), [1]);
}

/** Scalar head: x [..., H] . weight [H] + bias [1] -> [...]. */
export function scalarHead(x: Tensor, weight: Tensor, bias: Tensor): Tensor {
  return op.add(op.reduceSum(op.mul(x, weight), [-1]), op.squeeze(bias, [0]));
}

/** log sigma(x) = min(x, 0) - log(1 + exp(-|x|)), finite for any x. */
export function logSigmoid(x: Tensor): Tensor {
  return op.sub(op.minimum(x, 0), op.log(op.add(op.exp(op.neg(op.abs(x))), 1)));
}

/** Splits a [2*P] batch ordered [chosen..., rejected...] into two [P] halves (declare the batch dim as "2*P"). */
export function chosenRejected(x: Tensor): [Tensor, Tensor] {
  const [c, r] = op.split(op.reshape(x, [2, -1]), 0, [1, 1]);
  return [op.squeeze(c, [0]), op.squeeze(r, [0])];
}

/** -y log s(d) - (1 - y) log s(-d), averaged: the Bradley-Terry / DPO preference loss. */
function preferenceLoss(d: Tensor, target: Tensor): Tensor {
  const perPair = op.neg(
    op.add(op.mul(target, logSigmoid(d)), op.mul(op.sub(1, target), logSigmoid(op.neg(d)))),
  );
  return op.reduceMean(perPair);
}

/**
 * Bradley-Terry over pairs that index into a batch of scored sequences: rewards [B], and for each
 * of P pairs the row of its chosen and rejected sequence (int64 [P]). A prompt's K candidates
 * are scored once and give all their K(K-1)/2 comparisons (InstructGPT's batching).
 */
export function indexedBradleyTerryLoss(
  rewards: Tensor,
  chosenIndex: Tensor,
  rejectedIndex: Tensor,
  target: Tensor,
  margin: Tensor,
): BradleyTerryTerms {
  const difference = op.sub(
    op.gather(rewards, chosenIndex, 0),
    op.gather(rewards, rejectedIndex, 0),
  );
  return { loss: preferenceLoss(op.sub(difference, margin), target), difference };
}

export interface BradleyTerryTerms {
  loss: Tensor;
  /** r_chosen - r_rejected, [P] (without the margin). */
  difference: Tensor;
}

/**
 * rewards [2P] ordered [chosen..., rejected...]; target [P] (1 or 0.5); margin [P] (0 for ties).
 * d = r_c - r_r - margin.
 */
export function bradleyTerryLoss(
  rewards: Tensor,
  target: Tensor,
  margin: Tensor,
): BradleyTerryTerms {
  const [chosen, rejected] = chosenRejected(rewards);
  const difference = op.sub(chosen, rejected);
  return { loss: preferenceLoss(op.sub(difference, margin), target), difference };
}

/**
 * DPO (Rafailov et al. 2023, eq. 7): sequence log-probs [2P] of the policy and the reference,
 * ordered [chosen..., rejected...]; h = beta * ((pi_c - ref_c) - (pi_r - ref_r)).
 */
export function dpoLossGraph(
  policyLogps: Tensor,
  referenceLogps: Tensor,
  target: Tensor,
  beta: number,
): { loss: Tensor; rewardChosen: Tensor; rewardRejected: Tensor } {
  const [pc, pr] = chosenRejected(policyLogps);
  const [rc, rr] = chosenRejected(referenceLogps);
  const rewardChosen = op.mul(op.sub(pc, rc), beta);
  const rewardRejected = op.mul(op.sub(pr, rr), beta);
  return {
    loss: preferenceLoss(op.sub(rewardChosen, rewardRejected), target),
    rewardChosen,
    rewardRejected,
  };
}

export interface PpoLossInputs {
  /** [B, R] log-probs of the taken tokens under the current policy (from the graph). */
  logprobs: Tensor;
  /** [B, R] the same at rollout time (graph input). */
  oldLogprobs: Tensor;
  advantages: Tensor;
  /** [B, R] 0/1 float response mask. */
  mask: Tensor;
  /** [B, R] value predictions (from the graph). */
  values: Tensor;
  oldValues: Tensor;
  returns: Tensor;
}

export interface PpoLossTerms {
  loss: Tensor;
  policyLoss: Tensor;
  valueLoss: Tensor;
  clipfrac: Tensor;
  valueClipfrac: Tensor;
  approxKl: Tensor;
  ratioMean: Tensor;
}

function maskedMean(x: Tensor, mask: Tensor): Tensor {
  return op.div(op.reduceSum(op.mul(x, mask)), op.maximum(op.reduceSum(mask), 1));
}

/** Clipped policy and value losses (see `ppoMath.ts` for the formulas and sources). */
export function ppoLossGraph(
  x: PpoLossInputs,
  clipRange: number,
  clipRangeValue: number,
  valueCoef: number,
): PpoLossTerms {
  const diff = op.sub(x.logprobs, x.oldLogprobs);
  const ratio = op.exp(diff);
  const pg1 = op.mul(op.neg(x.advantages), ratio);
  const pg2 = op.mul(op.neg(x.advantages), op.clip(ratio, 1 - clipRange, 1 + clipRange));
  const policyLoss = maskedMean(op.maximum(pg1, pg2), x.mask);
  const vClipped = op.add(
    x.oldValues,
    op.clip(op.sub(x.values, x.oldValues), -clipRangeValue, clipRangeValue),
  );
  const vf1 = op.pow(op.sub(x.values, x.returns), 2);
  const vf2 = op.pow(op.sub(vClipped, x.returns), 2);
  const valueLoss = op.mul(maskedMean(op.maximum(vf1, vf2), x.mask), 0.5);
  const dtype = x.mask.dtype;
  return {
    loss: op.add(policyLoss, op.mul(valueLoss, valueCoef)),
    policyLoss,
    valueLoss,
    clipfrac: maskedMean(op.cast(op.greater(pg2, pg1), dtype), x.mask),
    valueClipfrac: maskedMean(op.cast(op.greater(vf2, vf1), dtype), x.mask),
    approxKl: op.mul(maskedMean(op.mul(diff, diff), x.mask), 0.5),
    ratioMean: maskedMean(ratio, x.mask),
  };
}
