/**
 * Forward composites for Llama-family models, reward heads and RL losses, built from the
 * differentiable ops, so every one of them has a gradient.
 */
import { Dim, dimsEqual, formatShape } from './dims';
import { DType, fromValues } from './dtype';
import { GraphBuildError, Tensor } from './graph';
import * as op from './ops';

function check(cond: boolean, message: string): asserts cond {
  if (!cond) throw new GraphBuildError(message);
}

const shapeOf = (t: Tensor) => `${t.name}${formatShape(t.shape)}`;

/**
 * RMSNorm (Zhang & Sennrich 2019): x / sqrt(mean(x^2) + eps) * weight, over the last axis.
 * Backward is the fused formula dx = r (g - xhat mean(g xhat)), g = dy w, xhat = x r,
 * r = 1 / sqrt(mean(x^2) + eps); dweight = sum(dy xhat) over the leading axes.
 */
export function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  check(
    weight.rank === 1 && dimsEqual(weight.shape[0], x.shape[x.rank - 1]),
    `rmsNorm: weight ${shapeOf(weight)} must be [${x.shape[x.rank - 1]}] for x ${shapeOf(x)}`,
  );
  const meanSquare = op.reduceMean(op.mul(x, x), [-1], true); // [..., 1]
  const inverseRms = op.reciprocal(op.sqrt(op.add(meanSquare, eps))); // [..., 1]
  const normalized = op.mul(x, inverseRms); // [..., C]
  const y = op.mul(normalized, weight);
  return op.customGradient(y, [x, weight], (dy) => {
    const g = op.mul(dy, weight);
    const projection = op.reduceMean(op.mul(g, normalized), [-1], true); // [..., 1]
    const dx = op.mul(op.sub(g, op.mul(normalized, projection)), inverseRms);
    const dWeight = op.sumToShape(op.mul(dy, normalized), weight);
    return [dx, dWeight];
  });
}

/** LayerNorm (Ba et al. 2016) over the last axis, with optional affine weight and bias. */
export function layerNorm(
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
): Tensor {
  const mean = op.reduceMean(x, [-1], true);
  const centered = op.sub(x, mean);
  const variance = op.reduceMean(op.mul(centered, centered), [-1], true);
  let y = op.mul(centered, op.reciprocal(op.sqrt(op.add(variance, eps))));
  if (weight) y = op.mul(y, weight);
  if (bias) y = op.add(y, bias);
  return y;
}

/** LoRA factors for one linear layer (Hu et al. 2021): delta W = scale * B @ A. */
export interface LoraFactors {
  /** [r, in] */
  a: Tensor;
  /** [out, r] */
  b: Tensor;
  /** alpha / r (or alpha / sqrt(r) for rsLoRA); a tensor lets one graph switch adapters off. */
  scale: number | Tensor;
}

/**
 * y = x @ W^T (+ bias) (+ scale * (x @ A^T) @ B^T), with W in Hugging Face layout [out, in].
 * The LoRA path never forms B @ A, so the base weight can stay frozen external data.
 */
export function linear(
  x: Tensor,
  weight: Tensor,
  options: { bias?: Tensor | null; lora?: LoraFactors | null } = {},
): Tensor {
  check(weight.rank === 2, `linear: weight ${shapeOf(weight)} must be [out, in]`);
  check(
    dimsEqual(weight.shape[1], x.shape[x.rank - 1]),
    `linear: x ${shapeOf(x)} last dim ${x.shape[x.rank - 1]} != weight ${shapeOf(weight)} in-dim ${weight.shape[1]}`,
  );
  let y = op.matMul(x, op.transpose(weight, [1, 0])); // [..., out]
  if (options.bias) y = op.add(y, options.bias);
  const lora = options.lora;
  if (lora) {
    check(
      lora.a.rank === 2 && dimsEqual(lora.a.shape[1], weight.shape[1]),
      `linear: LoRA A ${shapeOf(lora.a)} must be [r, ${weight.shape[1]}]`,
    );
    check(
      lora.b.rank === 2 &&
        dimsEqual(lora.b.shape[0], weight.shape[0]) &&
        dimsEqual(lora.b.shape[1], lora.a.shape[0]),
      `linear: LoRA B ${shapeOf(lora.b)} must be [${weight.shape[0]}, ${lora.a.shape[0]}]`,
    );
    const down = op.matMul(x, op.transpose(lora.a, [1, 0])); // [..., r]
    const up = op.matMul(down, op.transpose(lora.b, [1, 0])); // [..., out]
    y = op.add(y, op.mul(up, lora.scale));
  }
  return y;
}

/** Embedding lookup: table [V, C], ids int [...] -> [..., C]; repeated ids accumulate gradient. */
export function embedding(table: Tensor, ids: Tensor): Tensor {
  check(table.rank === 2, `embedding: table ${shapeOf(table)} must be [vocab, dim]`);
  return op.gather(table, ids, 0);
}

/** SwiGLU gate (Shazeer 2020): silu(gate) * up; the MLP is down(swiGlu(gate(x), up(x))). */
export function swiGlu(gate: Tensor, up: Tensor): Tensor {
  return op.mul(op.silu(gate), up);
}

/** Rotary tables for positions [B, T] (int64): cos and sin shaped [B, 1, T, headDim]. */
export interface RopeTables {
  cos: Tensor;
  sin: Tensor;
}

/** Llama inverse frequencies 1 / theta^(2i / headDim), i < headDim / 2. */
export function ropeInverseFrequencies(headDim: number, theta: number): Float64Array {
  const half = headDim / 2;
  const out = new Float64Array(half);
  for (let i = 0; i < half; i++) out[i] = 1 / Math.pow(theta, (2 * i) / headDim);
  return out;
}

/**
 * Builds cos/sin tables from explicit positions, so a KV cache can pass offset positions and
 * padded batches can pass their own. `inverseFrequencies` (length headDim/2) lets the model
 * apply rope scaling (e.g. Llama 3) itself; default is Llama's with `theta`.
 */
export function ropeTables(
  positions: Tensor,
  headDim: number,
  options: { theta?: number; inverseFrequencies?: ArrayLike<number>; dtype?: DType } = {},
): RopeTables {
  check(
    positions.rank === 2,
    `ropeTables: positions ${shapeOf(positions)} must be [B, T] integers`,
  );
  check(headDim % 2 === 0, `ropeTables: headDim ${headDim} must be even`);
  const dtype = options.dtype ?? 'float32';
  const inv = options.inverseFrequencies ?? ropeInverseFrequencies(headDim, options.theta ?? 10000);
  check(
    inv.length === headDim / 2,
    `ropeTables: ${inv.length} inverse frequencies for headDim ${headDim}`,
  );
  const g = positions.graph;
  const invTensor = g.constant(dtype, [headDim / 2], fromValues(dtype, Array.from(inv)));
  const pos = op.unsqueeze(op.cast(positions, dtype), [-1]); // [B, T, 1]
  const freqs = op.mul(pos, invTensor); // [B, T, D/2]
  const angles = op.unsqueeze(op.concat([freqs, freqs], -1), [1]); // [B, 1, T, D]
  return { cos: op.cos(angles), sin: op.sin(angles) };
}

/** Applies rotary embeddings (Su et al. 2021, HF "rotate_half" layout) to x [B, H, T, D]. */
export function applyRope(x: Tensor, tables: RopeTables): Tensor {
  const d = x.shape[x.rank - 1];
  check(
    typeof d === 'number' && d % 2 === 0,
    `applyRope: head dim of ${shapeOf(x)} must be a static even number`,
  );
  const half = (d as number) / 2;
  const [x1, x2] = op.split(x, -1, [half, half]);
  const rotated = op.concat([op.neg(x2), x1], -1); // [-x2, x1]
  return op.add(op.mul(x, tables.cos), op.mul(rotated, tables.sin));
}

export interface AttentionOptions {
  /** Mask future keys: key position <= query position + queryOffset. */
  causal?: boolean;
  /** int64 scalar: absolute position of the first query (cached keys before it). Default 0. */
  queryOffset?: Tensor | null;
  /**
   * Extra mask broadcastable to [B, 1, T, S]: bool (true = may attend) or float (added to
   * scores, e.g. 0 / -1e9 for padding).
   */
  mask?: Tensor | null;
  /** Score scale; default 1 / sqrt(headDim). */
  scale?: number;
}

/** Large negative score for masked positions; finite so fully-masked rows stay NaN-free. */
const MASKED = -1e9;

/**
 * Scaled dot-product attention with grouped-query heads: q [B, Hq, T, D], k and v [B, Hkv, S, D]
 * with Hq a multiple of Hkv -> [B, Hq, T, D]. Keys are shared by Hq / Hkv query heads through
 * broadcasting, without copying them.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Tensor {
  check(
    q.rank === 4 && k.rank === 4 && v.rank === 4,
    `attention: q ${shapeOf(q)}, k ${shapeOf(k)}, v ${shapeOf(v)} must be [B, H, T, D]`,
  );
  const [, hq, t, headDim] = q.shape;
  const hkv = k.shape[1];
  check(
    typeof hq === 'number' && typeof hkv === 'number' && hq % hkv === 0,
    `attention: query heads ${hq} must be a multiple of key heads ${hkv}`,
  );
  check(
    dimsEqual(k.shape[3], headDim) && dimsEqual(v.shape[3], headDim),
    `attention: head dims differ: q ${shapeOf(q)}, k ${shapeOf(k)}, v ${shapeOf(v)}`,
  );
  check(
    dimsEqual(k.shape[2], v.shape[2]),
    `attention: k ${shapeOf(k)} and v ${shapeOf(v)} lengths differ`,
  );
  check(typeof headDim === 'number', `attention: head dim must be static, got ${headDim}`);
  const groups = (hq as number) / (hkv as number);
  const s = k.shape[2];
  const b = q.shape[0];
  const scale = options.scale ?? 1 / Math.sqrt(headDim as number);

  // Grouped heads: q [B, Hkv, G, T, D] against k [B, Hkv, 1, S, D].
  const q5 = groups === 1 ? q : op.reshape(q, [b, hkv, groups, t, headDim]);
  const k5 = groups === 1 ? k : op.unsqueeze(k, [2]);
  const v5 = groups === 1 ? v : op.unsqueeze(v, [2]);
  // Scaling q ([.., T, D]) is cheaper than scaling the scores ([.., T, S]) when D < S.
  let scores = op.matMul(op.mul(q5, scale), op.transposeLast2(k5)); // [B, Hkv, (G,) T, S]

  // Masks become one small additive bias (0 or MASKED) broadcast over heads: one pass over the
  // scores forward and none backward (the bias gets no gradient unless it is trainable).
  const g = q.graph;
  let allowed: Tensor | null = null;
  let bias: Tensor | null = null;
  if (options.causal) {
    const offset = options.queryOffset ?? g.scalar(0, 'int64');
    const queryPositions = op.unsqueeze(op.arange(g, offset, t, [q]), [1]); // [T, 1]
    const keyPositions = op.unsqueeze(op.arange(g, 0, s, [k]), [0]); // [1, S]
    allowed = op.lessOrEqual(keyPositions, queryPositions); // [T, S]
  }
  if (options.mask) {
    const m = options.mask;
    check(
      m.rank === 4,
      `attention: mask ${shapeOf(m)} must be rank 4, broadcastable to [B, 1, T, S]`,
    );
    if (m.dtype === 'bool') allowed = allowed ? op.and(allowed, m) : m;
    else bias = op.cast(m, scores.dtype);
  }
  if (allowed) {
    const blocked = op.where(allowed, g.scalar(0, scores.dtype), MASKED);
    bias = bias ? op.add(bias, blocked) : blocked;
  }
  if (bias) {
    // [T, S] or [B, 1, T, S] -> [B, 1, (1,) T, S]
    const full = bias.rank === 2 ? op.unsqueeze(bias, [0, 1]) : bias;
    scores = op.add(scores, groups === 1 ? full : op.unsqueeze(full, [2]));
  }
  const probs = op.softmax(scores, -1);
  const out = op.matMul(probs, v5); // [B, Hkv, (G,) T, D]
  return groups === 1 ? out : op.reshape(out, [b, hq, t, headDim]);
}

/**
 * log p(target) per position: logits [..., V], targets int [...] -> [...]. The gradient is the
 * fused dlogits = dy (onehot(target) - softmax(logits)): three passes over [..., V] instead of
 * the six of LogSoftmax and GatherElements backward.
 */
export function tokenLogprobs(logits: Tensor, targets: Tensor): Tensor {
  check(
    targets.rank === logits.rank - 1,
    `tokenLogprobs: targets ${shapeOf(targets)} must be logits ${shapeOf(logits)} without the vocab axis`,
  );
  const logp = op.logSoftmax(logits, -1);
  const index = op.unsqueeze(op.cast(targets, 'int64'), [-1]); // [..., 1]
  const picked = op.squeeze(op.gatherElements(logp, index, -1), [-1]); // [...]
  return op.customGradient(picked, [logits], (dy) => {
    const dyColumn = op.unsqueeze(dy, [-1]); // [..., 1]
    const spread = op.mul(op.exp(logp), op.neg(dyColumn)); // -dy * softmax
    const g = logits.graph;
    const dLogits = g.node(
      'ScatterElements',
      [spread, index, dyColumn],
      [{ dtype: logits.dtype, shape: logits.shape }],
      {
        axis: { type: 'int', value: logits.rank - 1 },
        reduction: { type: 'string', value: 'add' },
      },
    )[0];
    return [dLogits];
  });
}

/** Entropy of softmax(logits) over the last axis: -sum p log p -> [...]. */
export function entropy(logits: Tensor): Tensor {
  const logp = op.logSoftmax(logits, -1);
  return op.neg(op.reduceSum(op.mul(op.exp(logp), logp), [-1]));
}

/** sum(x * mask) / max(sum(mask), 1) over all elements; mask is bool or 0/1 floats. */
export function maskedMean(x: Tensor, mask: Tensor): Tensor {
  const m = mask.dtype === x.dtype ? mask : op.cast(mask, x.dtype);
  const total = op.reduceSum(op.mul(x, m));
  const count = op.maximum(op.reduceSum(m), 1);
  return op.div(total, count);
}

/**
 * Mean token cross-entropy with ignore-index: logits [..., V], targets int [...]. Positions whose
 * target equals `ignoreIndex` contribute nothing; the mean is over the others (0 if none).
 */
export function crossEntropy(
  logits: Tensor,
  targets: Tensor,
  options: { ignoreIndex?: number; reduction?: 'mean' | 'sum' | 'none' } = {},
): Tensor {
  const ignoreIndex = options.ignoreIndex ?? -100;
  const t64 = op.cast(targets, 'int64');
  const valid = op.not(op.equal(t64, ignoreIndex));
  const safeTargets = op.where(valid, t64, 0);
  const nll = op.neg(tokenLogprobs(logits, safeTargets));
  const zeroed = op.where(valid, nll, 0);
  switch (options.reduction ?? 'mean') {
    case 'none':
      return zeroed;
    case 'sum':
      return op.reduceSum(zeroed);
    case 'mean':
      return maskedMean(zeroed, valid);
  }
}

/** Builds a [B, 1, 1, S] bool padding mask from a [B, S] 0/1 attention mask input. */
export function paddingMask(attentionMask: Tensor): Tensor {
  const keep = attentionMask.dtype === 'bool' ? attentionMask : op.greater(attentionMask, 0);
  return op.unsqueeze(keep, [1, 2]);
}

export type { Dim };
