/**
 * The pretraining model: a Llama decoder (transformers' modeling_llama.py) with tied
 * embeddings, built on the tensor engine with every weight as a graph input, so one graph
 * run gives the loss, the gradients and the AdamW update (`buildTraining`). Parameter names are the
 * Hugging Face ones, so the saved safetensors load through the product's ordinary loader.
 */
import {
  buildTraining,
  Graph,
  nn,
  op,
  type BuiltModel,
  type Tensor,
  type TrainingGraph,
} from '../../src/engine';
import { Rng } from '../../src/model/random';

export interface ModelShape {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  /** Longest sequence trained on; written as max_position_embeddings. */
  contextLength: number;
  ropeTheta: number;
  rmsNormEps: number;
}

export interface ParameterSpec {
  name: string;
  shape: number[];
  /** Matrices decay; norms gains do not (GPT-2/nanoGPT practice). */
  decay: boolean;
  init: 'normal' | 'residual' | 'ones';
}

export function parameterSpecs(shape: ModelShape): ParameterSpec[] {
  const { vocabSize: v, hiddenSize: c, intermediateSize: f } = shape;
  const specs: ParameterSpec[] = [
    { name: 'model.embed_tokens.weight', shape: [v, c], decay: true, init: 'normal' },
  ];
  for (let l = 0; l < shape.numLayers; l++) {
    const p = `model.layers.${l}`;
    specs.push(
      { name: `${p}.input_layernorm.weight`, shape: [c], decay: false, init: 'ones' },
      { name: `${p}.self_attn.q_proj.weight`, shape: [c, c], decay: true, init: 'normal' },
      { name: `${p}.self_attn.k_proj.weight`, shape: [c, c], decay: true, init: 'normal' },
      { name: `${p}.self_attn.v_proj.weight`, shape: [c, c], decay: true, init: 'normal' },
      { name: `${p}.self_attn.o_proj.weight`, shape: [c, c], decay: true, init: 'residual' },
      { name: `${p}.post_attention_layernorm.weight`, shape: [c], decay: false, init: 'ones' },
      { name: `${p}.mlp.gate_proj.weight`, shape: [f, c], decay: true, init: 'normal' },
      { name: `${p}.mlp.up_proj.weight`, shape: [f, c], decay: true, init: 'normal' },
      { name: `${p}.mlp.down_proj.weight`, shape: [c, f], decay: true, init: 'residual' },
    );
  }
  specs.push({ name: 'model.norm.weight', shape: [c], decay: false, init: 'ones' });
  return specs;
}

/**
 * Initial weights: N(0, 0.02), with the projections that write into the residual stream
 * scaled by 1/sqrt(2 * layers) (GPT-2, Radford et al. 2019), and norm gains at 1.
 */
export function initParameters(shape: ModelShape, seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed, 1);
  const gaussian = () => {
    // Box-Muller; 1 - u keeps the log argument in (0, 1].
    const u = 1 - rng.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
  };
  const params = new Map<string, Float32Array>();
  for (const spec of parameterSpecs(shape)) {
    const data = new Float32Array(spec.shape.reduce((a, b) => a * b, 1));
    const std = spec.init === 'residual' ? 0.02 / Math.sqrt(2 * shape.numLayers) : 0.02;
    for (let i = 0; i < data.length; i++) data[i] = spec.init === 'ones' ? 1 : std * gaussian();
    params.set(spec.name, data);
  }
  return params;
}

export function parameterCount(shape: ModelShape): number {
  return parameterSpecs(shape).reduce((sum, s) => sum + s.shape.reduce((a, b) => a * b, 1), 0);
}

/** Logits [B, T, V] of the decoder for input ids [B, T] and positions [B, T]. */
function forward(
  shape: ModelShape,
  w: (name: string) => Tensor,
  ids: Tensor,
  positions: Tensor,
): Tensor {
  const { numHeads: h, hiddenSize: c } = shape;
  const d = c / h;
  const rope = nn.ropeTables(positions, d, { theta: shape.ropeTheta });
  let x = nn.embedding(w('model.embed_tokens.weight'), ids); // [B, T, C]
  const heads = (t: Tensor) => op.transpose(op.reshape(t, ['B', 'T', h, d]), [0, 2, 1, 3]); // [B, H, T, D]
  for (let l = 0; l < shape.numLayers; l++) {
    const p = `model.layers.${l}`;
    const normed = nn.rmsNorm(x, w(`${p}.input_layernorm.weight`), shape.rmsNormEps);
    const q = nn.applyRope(heads(nn.linear(normed, w(`${p}.self_attn.q_proj.weight`))), rope);
    const k = nn.applyRope(heads(nn.linear(normed, w(`${p}.self_attn.k_proj.weight`))), rope);
    const v = heads(nn.linear(normed, w(`${p}.self_attn.v_proj.weight`)));
    const attended = nn.attention(q, k, v, { causal: true }); // [B, H, T, D]
    const merged = op.reshape(op.transpose(attended, [0, 2, 1, 3]), ['B', 'T', c]); // [B, T, C]
    x = op.add(x, nn.linear(merged, w(`${p}.self_attn.o_proj.weight`)));
    const normed2 = nn.rmsNorm(x, w(`${p}.post_attention_layernorm.weight`), shape.rmsNormEps);
    const gate = nn.linear(normed2, w(`${p}.mlp.gate_proj.weight`)); // [B, T, F]
    const up = nn.linear(normed2, w(`${p}.mlp.up_proj.weight`));
    x = op.add(x, nn.linear(nn.swiGlu(gate, up), w(`${p}.mlp.down_proj.weight`)));
  }
  const hidden = nn.rmsNorm(x, w('model.norm.weight'), shape.rmsNormEps);
  return nn.linear(hidden, w('model.embed_tokens.weight')); // tied head: [B, T, V]
}

function declare(g: Graph, shape: ModelShape) {
  const weights = new Map<string, Tensor>();
  for (const spec of parameterSpecs(shape)) {
    weights.set(spec.name, g.input(spec.name, 'float32', spec.shape));
  }
  const w = (name: string) => weights.get(name) as Tensor;
  const ids = g.input('input_ids', 'int64', ['B', 'T']);
  const positions = g.input('positions', 'int64', ['B', 'T']);
  return { weights, w, ids, positions };
}

export interface OptimizerSettings {
  learningRate: number;
  minLearningRate: number;
  warmupSteps: number;
  totalSteps: number;
  beta1: number;
  beta2: number;
  weightDecay: number;
  maxGradNorm: number;
}

/**
 * Training step graph: forward, mean token cross-entropy (IGNORE targets excluded), backward
 * and an in-graph AdamW update with warmup + cosine schedule and global-norm clipping.
 */
export function buildTrainGraph(
  shape: ModelShape,
  ignoreIndex: number,
  settings: OptimizerSettings,
): TrainingGraph {
  const g = new Graph('pretrain_step');
  const { weights, w, ids, positions } = declare(g, shape);
  const targets = g.input('targets', 'int64', ['B', 'T']);
  const logits = forward(shape, w, ids, positions);
  const loss = nn.crossEntropy(logits, targets, { ignoreIndex });
  const trainable = parameterSpecs(shape).map((spec) => ({
    tensor: weights.get(spec.name) as Tensor,
    weightDecay: spec.decay,
  }));
  return buildTraining(loss, trainable, {
    optimizer: {
      kind: 'adamw',
      learningRate: settings.learningRate,
      beta1: settings.beta1,
      beta2: settings.beta2,
      eps: 1e-8,
      weightDecay: settings.weightDecay,
    },
    schedule: {
      warmupSteps: settings.warmupSteps,
      totalSteps: settings.totalSteps,
      minLearningRate: settings.minLearningRate,
    },
    maxGradNorm: settings.maxGradNorm,
  });
}

/**
 * Evaluation graph: per-position negative log-likelihood `nll` [B, T] (0 at ignored
 * positions) and `correct` [B, T] (1 where the arg-max token equals the target).
 */
export function buildEvalGraph(shape: ModelShape, ignoreIndex: number): BuiltModel {
  const g = new Graph('pretrain_eval');
  const { w, ids, positions } = declare(g, shape);
  const targets = g.input('targets', 'int64', ['B', 'T']);
  const logits = forward(shape, w, ids, positions);
  g.output('nll', nn.crossEntropy(logits, targets, { ignoreIndex, reduction: 'none' }));
  const predicted = op.argMax(logits, -1); // [B, T] int64
  g.output('correct', op.cast(op.equal(predicted, targets), 'float32'));
  return g.build();
}

/** Next-token logits at the last position, [B, V], for sampling. */
export function buildLogitsGraph(shape: ModelShape): BuiltModel {
  const g = new Graph('pretrain_logits');
  const { w, ids, positions } = declare(g, shape);
  const logits = forward(shape, w, ids, positions); // [B, T, V]
  // The last position along T: [B, 1, V] (one row by construction), then [B, V].
  const last = op.squeeze(op.assumeShape(op.slice(logits, 1, -1), ['B', 1, shape.vocabSize]), [1]);
  g.output('logits', last);
  return g.build();
}
