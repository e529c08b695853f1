/**
 * PPO and DPO losses in plain numbers: the reference the graph versions are tested against,
 * and the source of the logged statistics. Formulas:
 * - Clipped policy loss: Schulman et al. 2017, "Proximal Policy Optimization Algorithms", eq. 7,
 *   as a masked mean over response tokens (TRL PPOTrainer).
 * - Clipped value loss: 0.5 * max((V - R)^2, (clip(V, V_old +- eps_v) - R)^2) (TRL, from the
 *   OpenAI lm-human-preferences code).
 * - DPO: Rafailov et al. 2023, eq. 7; a tie (target 0.5) uses the label-smoothed form.
 */
import { logSigmoid } from './bradleyTerry';
import type { Matrix } from './advantages';

function maskedMean(values: Matrix, mask: Matrix): number {
  let sum = 0;
  let n = 0;
  for (let b = 0; b < values.length; b++) {
    for (let t = 0; t < values[b].length; t++) {
      if (mask[b][t]) {
        sum += values[b][t];
        n++;
      }
    }
  }
  return n ? sum / n : 0;
}

export interface PolicyLossResult {
  loss: number;
  /** Fraction of tokens where the clipped term was the larger loss. */
  clipfrac: number;
  /** 0.5 * mean((log r)^2), TRL's `policy/approxkl_avg`. */
  approxKl: number;
  /** Mean probability ratio. */
  ratioMean: number;
}

export function clippedPolicyLoss(
  newLogprobs: Matrix,
  oldLogprobs: Matrix,
  advantages: Matrix,
  mask: Matrix,
  clipRange: number,
): PolicyLossResult {
  const losses: Matrix = [];
  const clipped: Matrix = [];
  const diffSq: Matrix = [];
  const ratios: Matrix = [];
  for (let b = 0; b < newLogprobs.length; b++) {
    losses.push([]);
    clipped.push([]);
    diffSq.push([]);
    ratios.push([]);
    for (let t = 0; t < newLogprobs[b].length; t++) {
      const diff = newLogprobs[b][t] - oldLogprobs[b][t];
      const ratio = Math.exp(diff);
      const a = advantages[b][t];
      const l1 = -a * ratio;
      const l2 = -a * Math.min(1 + clipRange, Math.max(1 - clipRange, ratio));
      losses[b].push(Math.max(l1, l2));
      clipped[b].push(l2 > l1 ? 1 : 0);
      diffSq[b].push(diff * diff);
      ratios[b].push(ratio);
    }
  }
  return {
    loss: maskedMean(losses, mask),
    clipfrac: maskedMean(clipped, mask),
    approxKl: 0.5 * maskedMean(diffSq, mask),
    ratioMean: maskedMean(ratios, mask),
  };
}

export interface ValueLossResult {
  loss: number;
  clipfrac: number;
}

export function clippedValueLoss(
  newValues: Matrix,
  oldValues: Matrix,
  returns: Matrix,
  mask: Matrix,
  clipRange: number,
): ValueLossResult {
  const losses: Matrix = [];
  const clipped: Matrix = [];
  for (let b = 0; b < newValues.length; b++) {
    losses.push([]);
    clipped.push([]);
    for (let t = 0; t < newValues[b].length; t++) {
      const v = newValues[b][t];
      const old = oldValues[b][t];
      const vClipped = Math.min(old + clipRange, Math.max(old - clipRange, v));
      const l1 = (v - returns[b][t]) ** 2;
      const l2 = (vClipped - returns[b][t]) ** 2;
      losses[b].push(Math.max(l1, l2));
      clipped[b].push(l2 > l1 ? 1 : 0);
    }
  }
  return { loss: 0.5 * maskedMean(losses, mask), clipfrac: maskedMean(clipped, mask) };
}

export interface DpoPair {
  policyChosen: number;
  policyRejected: number;
  refChosen: number;
  refRejected: number;
  /** 1 = chosen preferred, 0.5 = tie. */
  target: number;
}

export interface DpoResult {
  loss: number;
  /** beta * (log pi(y_c) - log pi_ref(y_c)) */
  rewardChosen: number;
  rewardRejected: number;
}

export function dpoLoss(pair: DpoPair, beta: number): DpoResult {
  const rewardChosen = beta * (pair.policyChosen - pair.refChosen);
  const rewardRejected = beta * (pair.policyRejected - pair.refRejected);
  const h = rewardChosen - rewardRejected;
  const loss = -pair.target * logSigmoid(h) - (1 - pair.target) * logSigmoid(-h);
  return { loss, rewardChosen, rewardRejected };
}

/** Entropy of a categorical distribution given its logits: logsumexp(z) - sum softmax(z) z. */
export function entropyFromLogits(logits: readonly number[]): number {
  const max = Math.max(...logits);
  let z = 0;
  for (const l of logits) z += Math.exp(l - max);
  const lse = max + Math.log(z);
  let expected = 0;
  for (const l of logits) expected += Math.exp(l - lse) * l;
  return lse - expected;
}
