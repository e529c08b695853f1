/**
 * The Llama-family forward pass on the tensor engine (transformers' modeling_llama.py and
 * modeling_qwen2.py): embedding, per layer RMSNorm -> GQA attention with RoPE -> residual ->
 * RMSNorm -> SwiGLU MLP -> residual, final RMSNorm, output head. Base weights are external
 * initializers pointing into the safetensors files (f16/bf16 cast to f32 in the graph); LoRA
 * factors are graph inputs, so one base graph serves any adapter with the same targets.
 */
import { Graph, nn, op, type Dim, type Tensor, type DType } from '../engine';
import type { CheckpointTensor } from './checkpoint';
import type { LoadedModel } from './loader';
import { projectionShape, PROJECTIONS, type Projection } from './weights';

export interface LoraGraphInputs {
  /** alpha / r (or alpha / sqrt(r)); a float32 scalar input lets one graph serve any adapter. */
  scale: Tensor | number;
  /** Per module path ("model.layers.0.self_attn.q_proj"): A [r, in] and B [out, r]. */
  factors: ReadonlyMap<string, { a: Tensor; b: Tensor }>;
}

export interface KvPair {
  /** [B, Hkv, S, D] */
  key: Tensor;
  value: Tensor;
}

/**
 * A static KV cache as graph inputs: per layer [B, Hkv, C, D] buffers of capacity C, and which
 * slots hold real keys. The graph only reads it; the new keys/values come out as outputs and the
 * caller writes them into free slots, so no step copies the whole cache.
 */
export interface StaticCacheInputs {
  keys: readonly Tensor[];
  values: readonly Tensor[];
  /** int64 [B, C]: 1 where a slot holds a key the row may attend to. */
  validSlots: Tensor;
}

export interface ForwardInputs {
  /** int64 [B, T] */
  inputIds: Tensor;
  /** int64 [B, T]: absolute positions (lets padded rows and cached decoding use their own). */
  positions: Tensor;
  /**
   * Optional key mask (int64 0/1 or bool): 0 hides padding. [B, T] over this call's tokens
   * (with `cache`, the cache's own slots are masked by `validSlots`).
   */
  keyMask?: Tensor;
  /** Cached keys/values (decoding); attention then covers cache slots plus this call's tokens. */
  cache?: StaticCacheInputs;
  lora?: LoraGraphInputs;
}

export interface ForwardOutputs {
  /** Final hidden states after the last norm, [B, T, C]. */
  hidden: Tensor;
  /** This call's keys (after RoPE) and values per layer, [B, Hkv, T, D]. */
  present: KvPair[];
}

const ENGINE_DTYPE: Record<string, DType> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** Creates (once per graph) the external initializer for a checkpoint tensor. */
export function weightTensor(g: Graph, tensor: CheckpointTensor): Tensor {
  const key = `weight:${tensor.name}`;
  let t = g.memo.get(key);
  if (!t) {
    t = g.externalInitializer(tensor.name, ENGINE_DTYPE[tensor.dtype], tensor.shape, {
      file: tensor.file,
      offset: tensor.fileOffset,
      length: tensor.byteLength,
    });
    g.memo.set(key, t);
  }
  return t;
}

/** Builds the transformer body into `g`; the caller adds the head (see `outputLogits`). */
export function buildLlamaForward(
  g: Graph,
  model: LoadedModel,
  inputs: ForwardInputs,
): ForwardOutputs {
  const { config, weights } = model;
  const { numHeads: h, numKvHeads: kv, headDim: d } = config;
  const w = (tensor: CheckpointTensor) => weightTensor(g, tensor);
  const rope = nn.ropeTables(inputs.positions, d, {
    inverseFrequencies: model.ropeInverseFrequencies,
  });
  const keyMask = inputs.keyMask ? nn.paddingMask(inputs.keyMask) : null; // [B, 1, 1, T]
  const cacheMasks = inputs.cache ? staticCacheMasks(g, inputs.cache, inputs.keyMask) : null;

  let x = nn.embedding(w(weights.embed), inputs.inputIds); // [B, T, C]
  const present: KvPair[] = [];
  weights.layers.forEach((layer, l) => {
    const linear = (input: Tensor, projection: Projection) => {
      const lw = layer.linears[projection];
      const factors = inputs.lora?.factors.get(lw.module);
      return nn.linear(input, w(lw.weight), {
        bias: lw.bias ? w(lw.bias) : null,
        lora: factors ? { a: factors.a, b: factors.b, scale: inputs.lora!.scale } : null,
      });
    };
    // Projections that read the same input share one matmul over their concatenated weights
    // (onnxruntime folds the concatenation into one initializer); LoRA deltas stay separate.
    const fused = (input: Tensor, projections: Projection[]): Tensor[] => {
      const parts = projections.map((p) => layer.linears[p]);
      const weight = op.concat(
        parts.map((lw) => w(lw.weight)),
        0,
      ); // [sum of outs, in]
      const bias = parts.every((lw) => lw.bias)
        ? op.concat(
            parts.map((lw) => w(lw.bias!)),
            0,
          )
        : null;
      const outputs = op.split(
        nn.linear(input, weight, { bias }),
        -1,
        parts.map((lw) => lw.outFeatures),
      );
      return outputs.map((out, i) => {
        const factors = inputs.lora?.factors.get(parts[i].module);
        if (!factors) return out;
        const down = op.matMul(input, op.transpose(factors.a, [1, 0])); // [B, T, r]
        const up = op.matMul(down, op.transpose(factors.b, [1, 0])); // [B, T, out]
        return op.add(out, op.mul(up, inputs.lora!.scale));
      });
    };
    const normed = nn.rmsNorm(x, w(layer.inputNorm), config.rmsNormEps);
    const heads = (t: Tensor, n: number) =>
      op.transpose(op.reshape(t, ['B', 'T', n, d]), [0, 2, 1, 3]); // [B, n, T, D]
    const [qFlat, kFlat, vFlat] = fused(normed, ['q_proj', 'k_proj', 'v_proj']);
    const q = nn.applyRope(heads(qFlat, h), rope);
    const k = nn.applyRope(heads(kFlat, kv), rope);
    const v = heads(vFlat, kv);
    present.push({ key: k, value: v });
    const attended = inputs.cache
      ? cachedAttention(q, k, v, inputs.cache.keys[l], inputs.cache.values[l], cacheMasks!)
      : nn.attention(q, k, v, { causal: true, mask: keyMask }); // [B, H, T, D]
    const merged = op.reshape(op.transpose(attended, [0, 2, 1, 3]), ['B', 'T', h * d]);
    x = op.add(x, linear(merged, 'o_proj'));
    const normed2 = nn.rmsNorm(x, w(layer.postAttentionNorm), config.rmsNormEps);
    const [gate, up] = fused(normed2, ['gate_proj', 'up_proj']);
    const mlp = nn.swiGlu(gate, up);
    x = op.add(x, linear(mlp, 'down_proj'));
  });
  const hidden = nn.rmsNorm(x, w(weights.finalNorm), config.rmsNormEps);
  return { hidden, present };
}

/** hidden [B, T, C] -> logits [B, T, V] through the (tied or own) output head. */
export function outputLogits(g: Graph, model: LoadedModel, hidden: Tensor): Tensor {
  return nn.linear(hidden, weightTensor(g, model.weights.head));
}

/**
 * Declares LoRA inputs `lora.<module>.A` / `.B` for the given targets, with the rank as the named
 * dim "R" (any adapter fits) or, given `rank`, fixed (a training graph that needs static shapes).
 */
export function declareLoraInputs(
  g: Graph,
  model: LoadedModel,
  targets: readonly Projection[],
  rank: number | 'R' = 'R',
): LoraGraphInputs {
  const factors = new Map<string, { a: Tensor; b: Tensor }>();
  model.weights.layers.forEach((layer) => {
    for (const projection of PROJECTIONS) {
      if (!targets.includes(projection)) continue;
      const [out, inFeatures] = projectionShape(model.config, projection);
      const module = layer.linears[projection].module;
      factors.set(module, {
        a: g.input(loraInputName(module, 'A'), 'float32', [rank, inFeatures]),
        b: g.input(loraInputName(module, 'B'), 'float32', [out, rank]),
      });
    }
  });
  return { scale: g.input('lora_scale', 'float32', []), factors };
}

export function loraInputName(module: string, which: 'A' | 'B'): string {
  return `lora.${module}.${which}`;
}

/**
 * Hides ids past the tokenizer's vocabulary (padded embedding rows, which have no text and are
 * never sampled) from a softmax over logits [..., V]: adds -1e9 there. Finite, so entropy stays
 * NaN-free. Returns logits unchanged when the tokenizer covers every row.
 */
export function maskPaddedVocab(g: Graph, model: LoadedModel, logits: Tensor): Tensor {
  const v = model.config.vocabSize;
  const allowed = Math.min(v, model.tokenizer.vocabSize);
  if (allowed === v) return logits;
  const mask = new Float32Array(v);
  mask.fill(-1e9, allowed);
  return op.add(logits, g.constant('float32', [v], mask));
}

/** Additive masks for cached attention, built once and shared by every layer. */
interface CacheMasks {
  /** [B, 1, 1, 1, C]: 0 for valid cache slots, -1e9 for free or padded ones. */
  cache: Tensor;
  /** [B, 1, 1, T, T] (or [1, 1, 1, T, T]): causal among this call's tokens, plus padding. */
  fresh: Tensor;
}

const MASKED = -1e9;

function staticCacheMasks(g: Graph, cache: StaticCacheInputs, keyMask?: Tensor): CacheMasks {
  // 1 -> 0, 0 -> -1e9
  const toAdditive = (valid: Tensor) => op.mul(op.sub(1, op.cast(valid, 'float32')), MASKED);
  const cacheAdd = op.unsqueeze(toAdditive(cache.validSlots), [1, 2, 3]); // [B, 1, 1, 1, C]
  const t = 'T';
  const queries = op.unsqueeze(op.arange(g, 0, t), [1]); // [T, 1]
  const keys = op.unsqueeze(op.arange(g, 0, t), [0]); // [1, T]
  const future = op.cast(op.greater(keys, queries), 'float32'); // [T, T]: 1 above the diagonal
  let fresh = op.unsqueeze(op.mul(future, MASKED), [0, 1, 2]); // [1, 1, 1, T, T]
  if (keyMask) fresh = op.add(fresh, op.unsqueeze(toAdditive(keyMask), [1, 2, 3])); // [B, 1, 1, T, T]
  return { cache: cacheAdd, fresh };
}

/**
 * Attention over cached keys plus this call's keys without concatenating them (the cache is
 * read in place): softmax over the union is computed from both score blocks with a shared max.
 * q [B, H, T, D], k/v [B, Hkv, T, D], cache k/v [B, Hkv, C, D] -> [B, H, T, D].
 */
function cachedAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  cacheK: Tensor,
  cacheV: Tensor,
  masks: CacheMasks,
): Tensor {
  const [, h, , d] = q.shape as [Dim, number, Dim, number];
  const kvHeads = k.shape[1] as number;
  const groups = h / kvHeads;
  const scale = 1 / Math.sqrt(d);
  const q5 = op.reshape(q, ['B', kvHeads, groups, 'T', d]); // [B, Hkv, G, T, D]
  const five = (x: Tensor) => op.unsqueeze(x, [2]); // [B, Hkv, 1, S, D]
  const cacheScores = op.add(
    op.mul(op.matMul(q5, op.transposeLast2(five(cacheK))), scale),
    masks.cache,
  ); // [B, Hkv, G, T, C]
  const freshScores = op.add(op.mul(op.matMul(q5, op.transposeLast2(five(k))), scale), masks.fresh); // [B, Hkv, G, T, T]
  const max = op.maximum(
    op.reduceMax(cacheScores, [-1], true),
    op.reduceMax(freshScores, [-1], true),
  ); // [B, Hkv, G, T, 1]
  const cacheWeights = op.exp(op.sub(cacheScores, max));
  const freshWeights = op.exp(op.sub(freshScores, max));
  const total = op.add(
    op.reduceSum(cacheWeights, [-1], true),
    op.reduceSum(freshWeights, [-1], true),
  );
  const mixed = op.add(op.matMul(cacheWeights, five(cacheV)), op.matMul(freshWeights, five(v))); // [B, Hkv, G, T, D]
  return op.reshape(op.div(mixed, total), ['B', h, 'T', d]);
}
