/**
 * The Llama-family forward pass on the tensor engine (transformers' modeling_llama.py and
 * modeling_qwen2.py): embedding, per layer RMSNorm -> GQA attention with RoPE -> residual ->
 * RMSNorm -> SwiGLU MLP -> residual, final RMSNorm, output head. Base weights are external
 * initializers pointing into the safetensors files (f16/bf16 cast to f32 in the graph); LoRA
 * factors are graph inputs, so one base graph serves any adapter with the same targets.
 */
import { Graph, nn, op, type Tensor, type DType } from '../engine';
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

export interface ForwardInputs {
  /** int64 [B, T] */
  inputIds: Tensor;
  /** int64 [B, T]: absolute positions (lets padded rows and cached decoding use their own). */
  positions: Tensor;
  /** Optional key mask [B, S] (int64 0/1 or bool), S = past + T: 0 hides padding. */
  keyMask?: Tensor;
  /** Cached keys/values per layer, [B, Hkv, P, D]. */
  past?: readonly KvPair[];
  lora?: LoraGraphInputs;
}

export interface ForwardOutputs {
  /** Final hidden states after the last norm, [B, T, C]. */
  hidden: Tensor;
  /** Keys/values per layer including this step's, [B, Hkv, P+T, D]. */
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
  const keyMask = inputs.keyMask ? nn.paddingMask(inputs.keyMask) : null; // [B, 1, 1, S]
  // Queries start after the cached keys: absolute query index = P + t.
  const queryOffset = inputs.past?.[0]
    ? op.squeeze(op.runtimeDim(inputs.past[0].key, 2), [0])
    : null;

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
    const normed = nn.rmsNorm(x, w(layer.inputNorm), config.rmsNormEps);
    const heads = (t: Tensor, n: number) =>
      op.transpose(op.reshape(t, ['B', 'T', n, d]), [0, 2, 1, 3]); // [B, n, T, D]
    const q = nn.applyRope(heads(linear(normed, 'q_proj'), h), rope);
    let k = nn.applyRope(heads(linear(normed, 'k_proj'), kv), rope);
    let v = heads(linear(normed, 'v_proj'), kv);
    const past = inputs.past?.[l];
    if (past) {
      k = op.concat([past.key, k], 2, 'S'); // [B, Hkv, P+T, D]
      v = op.concat([past.value, v], 2, 'S');
    }
    present.push({ key: k, value: v });
    const attended = nn.attention(q, k, v, {
      causal: true,
      queryOffset,
      mask: keyMask,
    }); // [B, H, T, D]
    const merged = op.reshape(op.transpose(attended, [0, 2, 1, 3]), ['B', 'T', h * d]);
    x = op.add(x, linear(merged, 'o_proj'));
    const normed2 = nn.rmsNorm(x, w(layer.postAttentionNorm), config.rmsNormEps);
    const mlp = nn.swiGlu(linear(normed2, 'gate_proj'), linear(normed2, 'up_proj'));
    x = op.add(x, linear(mlp, 'down_proj'));
  });
  const hidden = nn.rmsNorm(x, w(weights.finalNorm), config.rmsNormEps);
  return { hidden, present };
}

/** hidden [B, T, C] -> logits [B, T, V] through the (tied or own) output head. */
export function outputLogits(g: Graph, model: LoadedModel, hidden: Tensor): Tensor {
  return nn.linear(hidden, weightTensor(g, model.weights.head));
}

/** Declares LoRA inputs `lora.<module>.A` / `.B` (rank dim "R") for the given targets. */
export function declareLoraInputs(
  g: Graph,
  model: LoadedModel,
  targets: readonly Projection[],
): LoraGraphInputs {
  const factors = new Map<string, { a: Tensor; b: Tensor }>();
  model.weights.layers.forEach((layer) => {
    for (const projection of PROJECTIONS) {
      if (!targets.includes(projection)) continue;
      const [out, inFeatures] = projectionShape(model.config, projection);
      const module = layer.linears[projection].module;
      factors.set(module, {
        a: g.input(loraInputName(module, 'A'), 'float32', ['R', inFeatures]),
        b: g.input(loraInputName(module, 'B'), 'float32', [out, 'R']),
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
