/**
 * The training graphs: one Llama body (src/model/llamaGraph.ts) with LoRA factors and scalar
 * heads as graph inputs, so the base weights stay frozen external data and one base serves the
 * policy, the reference, the reward model and the value head. One graph per use, because
 * onnxruntime runs every node of a graph whatever outputs are asked for (measured): a
 * forward-only graph for scoring, and for training a loss whose backward pass and AdamW update
 * the engine adds (`optimizer.ts`, engine `buildTraining`).
 *
 * Sequences are right-padded [B, T]; `key_mask` marks real tokens; `positions` count from 0.
 * Response-aligned tensors [B, N] are gathered with `response_index` [B, N] (not "R": that is the LoRA rank): entry j of a row is
 * the position whose logits predict completion token j (prompt length - 1 + j).
 */
import { Graph, nn, op, type BuiltModel, type HostTensor, type Tensor } from '../engine';
import {
  buildLlamaForward,
  declareLoraInputs,
  loraInputName,
  maskPaddedVocab,
  outputLogits,
} from '../model/llamaGraph';
import type { LoadedModel } from '../model/loader';
import { loraScale, type LoraAdapter } from '../model/lora';
import { projectionShape, type Projection } from '../model/weights';
import type { Head } from './heads';
import {
  dpoLossGraph,
  indexedBradleyTerryLoss,
  lastTokenOneHot,
  ppoLossGraph,
  scalarHead,
  selectPositions,
} from './lossGraphs';

/** A training loss on the Llama body, before its backward pass. */
export interface LossGraph {
  /** Scalar loss, in float32. */
  loss: Tensor;
  /** The graph inputs it trains: every LoRA factor (A, B per module), then the head if any. */
  trainable: Tensor[];
  /** Per-step outputs declared on the graph for the trainer's metrics. */
  metrics: string[];
}

interface Body {
  g: Graph;
  hidden: Tensor; // [B, T, C]
  trainable: Tensor[];
}

/**
 * The Llama body with LoRA inputs. Forward graphs leave the rank named ("R": any adapter fits);
 * training graphs fix it, as the fused optimizer needs static shapes.
 */
function body(
  name: string,
  model: LoadedModel,
  targets: readonly Projection[],
  rank: number | 'R' = 'R',
): Body {
  const g = new Graph(name);
  const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
  const positions = g.input('positions', 'int64', ['B', 'T']);
  const keyMask = g.input('key_mask', 'int64', ['B', 'T']);
  const lora = declareLoraInputs(g, model, targets, rank);
  const { hidden } = buildLlamaForward(g, model, { inputIds, positions, keyMask, lora });
  const trainable = [...lora.factors.values()].flatMap((f) => [f.a, f.b]);
  return { g, hidden, trainable };
}

function headInputs(g: Graph, prefix: string, hidden: number): { weight: Tensor; bias: Tensor } {
  return {
    weight: g.input(`${prefix}.weight`, 'float32', [hidden]),
    bias: g.input(`${prefix}.bias`, 'float32', [1]),
  };
}

function rewardBody(
  model: LoadedModel,
  targets: readonly Projection[],
  name: string,
  rank?: number,
) {
  const { g, hidden, trainable } = body(name, model, targets, rank);
  const head = headInputs(g, 'reward_head', model.config.hiddenSize);
  const mask = g.getInputs().find((t) => t.name === 'key_mask')!;
  const rewards = scalarHead(
    selectPositions(hidden, lastTokenOneHot(mask)),
    head.weight,
    head.bias,
  ); // [B]
  g.output('rewards', rewards);
  return { g, rewards, trainable: [...trainable, head.weight, head.bias] };
}

/** Reward model, forward only: rewards [B] read at each row's last real token. */
export function buildRewardGraph(model: LoadedModel, targets: readonly Projection[]): BuiltModel {
  return rewardBody(model, targets, 'reward-score').g.build();
}

/**
 * Reward-model loss: Bradley-Terry over P pairs given as row indices (`pair_chosen`,
 * `pair_rejected` int64 [P]) with `pair_target` and `pair_margin` [P]; trains every LoRA factor
 * (of rank `rank`) and the reward head.
 */
export function rewardTrainingLoss(
  model: LoadedModel,
  targets: readonly Projection[],
  rank: number,
): LossGraph {
  const { g, rewards, trainable } = rewardBody(model, targets, 'reward-train', rank);
  const { loss } = indexedBradleyTerryLoss(
    rewards,
    g.input('pair_chosen', 'int64', ['P']),
    g.input('pair_rejected', 'int64', ['P']),
    g.input('pair_target', 'float32', ['P']),
    g.input('pair_margin', 'float32', ['P']),
  );
  return { loss, trainable, metrics: [] };
}

/**
 * The policy body: inputs `targets` [B, T] (next token ids), `temperature` [] and
 * `response_index` [B, N]; outputs `logprobs` [B, N] at the temperature (`entropy` too unless
 * `withEntropy` is false).
 */
function policyBody(
  model: LoadedModel,
  targets: readonly Projection[],
  name: string,
  withEntropy: boolean,
  rank?: number,
) {
  const { g, hidden, trainable } = body(name, model, targets, rank);
  const nextIds = g.input('targets', 'int64', ['B', 'T']);
  const temperature = g.input('temperature', 'float32', []);
  const index = g.input('response_index', 'int64', ['B', 'N']);
  // Padded vocabulary rows are masked as the sampler does, so both see the same distribution.
  const logits = maskPaddedVocab(g, model, outputLogits(g, model, hidden));
  const scaled = op.div(logits, temperature); // [B, T, V]
  const logprobs = op.gatherElements(nn.tokenLogprobs(scaled, nextIds), index, 1); // [B, N]
  g.output('logprobs', logprobs);
  if (withEntropy) g.output('entropy', op.gatherElements(nn.entropy(scaled), index, 1));
  const valueHead = () => {
    const head = headInputs(g, 'value_head', model.config.hiddenSize);
    const values = op.gatherElements(scalarHead(hidden, head.weight, head.bias), index, 1); // [B, N]
    g.output('values', values);
    return { values, head };
  };
  return { g, logprobs, trainable, valueHead };
}

/**
 * Policy scoring, forward only: `logprobs`, `entropy` and `values` (value head) [B, N] of each
 * row's completion at `temperature`.
 */
export function buildPolicyScoreGraph(
  model: LoadedModel,
  targets: readonly Projection[],
): BuiltModel {
  const policy = policyBody(model, targets, 'policy-score', true);
  policy.valueHead();
  return policy.g.build();
}

/**
 * PPO loss: clipped policy + value losses over `response_mask` [B, N] (inputs `old_logprobs`,
 * `advantages`, `old_values`, `returns` [B, N]); trains the LoRA factors and the value head,
 * which shares the policy's trunk; LoRA rank `rank`. Metrics: the loss terms (`policyLoss`, ...).
 */
export function ppoTrainingLoss(
  model: LoadedModel,
  targets: readonly Projection[],
  rank: number,
  options: { clipRange?: number; clipRangeValue?: number; valueCoef?: number } = {},
): LossGraph {
  const { g, logprobs, trainable, valueHead } = policyBody(
    model,
    targets,
    'policy-ppo',
    false,
    rank,
  );
  const { values, head } = valueHead();
  const mask = g.input('response_mask', 'float32', ['B', 'N']);
  const terms = ppoLossGraph(
    {
      logprobs,
      oldLogprobs: g.input('old_logprobs', 'float32', ['B', 'N']),
      advantages: g.input('advantages', 'float32', ['B', 'N']),
      mask,
      values,
      oldValues: g.input('old_values', 'float32', ['B', 'N']),
      returns: g.input('returns', 'float32', ['B', 'N']),
    },
    options.clipRange ?? 0.2,
    options.clipRangeValue ?? 0.2,
    options.valueCoef ?? 0.1,
  );
  const { loss, ...metrics } = terms;
  for (const [name, t] of Object.entries(metrics)) g.output(name, t);
  return { loss, trainable: [...trainable, head.weight, head.bias], metrics: Object.keys(metrics) };
}

/**
 * DPO loss: sequence log-probs over `response_mask` [B, N] against `ref_logps` [B] with
 * `pair_target` [P] (B = 2P, chosen rows first), `beta` fixed at build; trains the LoRA
 * factors (of rank `rank`). Metrics: `seq_logps` [B], `reward_chosen` and `reward_rejected` [P].
 */
export function dpoTrainingLoss(
  model: LoadedModel,
  targets: readonly Projection[],
  rank: number,
  beta: number,
): LossGraph {
  const { g, logprobs, trainable } = policyBody(model, targets, 'policy-dpo', false, rank);
  const mask = g.input('response_mask', 'float32', ['B', 'N']);
  const seqLogps = op.reduceSum(op.mul(logprobs, mask), [1]); // [B]
  const ref = g.input('ref_logps', 'float32', ['B']);
  const target = g.input('pair_target', 'float32', ['P']);
  const terms = dpoLossGraph(
    op.assumeShape(seqLogps, ['2*P']),
    op.assumeShape(ref, ['2*P']),
    target,
    beta,
  );
  g.output('seq_logps', seqLogps);
  g.output('reward_chosen', terms.rewardChosen);
  g.output('reward_rejected', terms.rewardRejected);
  return {
    loss: terms.loss,
    trainable,
    metrics: ['seq_logps', 'reward_chosen', 'reward_rejected'],
  };
}

/** The adapter's scale (alpha / rank), or `scale` (0 switches the adapter off). */
export function loraScaleFeed(adapter: LoraAdapter, scale?: number): Record<string, HostTensor> {
  return {
    lora_scale: {
      dtype: 'float32',
      shape: [],
      data: Float32Array.of(scale ?? loraScale(adapter.config)),
    },
  };
}

/** Feeds for an adapter; its targets must be the graph's. */
export function adapterFeeds(
  model: LoadedModel,
  adapter: LoraAdapter,
  scale?: number,
): Record<string, HostTensor> {
  const r = adapter.config.rank;
  const feeds: Record<string, HostTensor> = loraScaleFeed(adapter, scale);
  for (const layer of model.weights.layers) {
    for (const projection of adapter.config.targets) {
      const module = layer.linears[projection].module;
      const [out, inFeatures] = projectionShape(model.config, projection);
      const f = adapter.factors.get(module);
      if (!f) throw new Error(`adapter has no factors for ${module}`);
      feeds[loraInputName(module, 'A')] = { dtype: 'float32', shape: [r, inFeatures], data: f.a };
      feeds[loraInputName(module, 'B')] = { dtype: 'float32', shape: [out, r], data: f.b };
    }
  }
  return feeds;
}

export function headFeeds(
  prefix: 'reward_head' | 'value_head',
  head: Head,
): Record<string, HostTensor> {
  return {
    [`${prefix}.weight`]: { dtype: 'float32', shape: [head.weight.length], data: head.weight },
    [`${prefix}.bias`]: { dtype: 'float32', shape: [1], data: head.bias },
  };
}

/**
 * The trainable arrays of an adapter and a head, keyed by graph input name, sharing memory with
 * them: the optimizer writes each update into them, so the adapter and head objects stay current.
 */
export function trainableParameters(
  model: LoadedModel,
  adapter: LoraAdapter,
  head?: { prefix: 'reward_head' | 'value_head'; head: Head },
): Map<string, Float32Array> {
  const params = new Map<string, Float32Array>();
  for (const layer of model.weights.layers) {
    for (const projection of adapter.config.targets) {
      const module = layer.linears[projection].module;
      const f = adapter.factors.get(module)!;
      params.set(loraInputName(module, 'A'), f.a);
      params.set(loraInputName(module, 'B'), f.b);
    }
  }
  if (head) {
    params.set(`${head.prefix}.weight`, head.head.weight);
    params.set(`${head.prefix}.bias`, head.head.bias);
  }
  return params;
}
