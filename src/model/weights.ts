/**
 * Maps a Llama-family config onto checkpoint tensors by Hugging Face names, checking every shape
 * before a graph is built, and resolving the output head (tied to the embedding or its own).
 */
import type { Checkpoint, CheckpointTensor } from './checkpoint';
import { ConfigError, type ModelConfig } from './config';
import { PROJECTIONS, type Projection } from './projections';

export { PROJECTIONS, type Projection };

export interface LinearWeights {
  /** Module path, e.g. "model.layers.0.self_attn.q_proj". */
  module: string;
  weight: CheckpointTensor;
  bias?: CheckpointTensor;
  inFeatures: number;
  outFeatures: number;
}

export interface LayerWeights {
  inputNorm: CheckpointTensor;
  postAttentionNorm: CheckpointTensor;
  linears: Record<Projection, LinearWeights>;
}

export interface LlamaWeights {
  embed: CheckpointTensor;
  layers: LayerWeights[];
  finalNorm: CheckpointTensor;
  /** The output head; the embedding itself when the config ties them. */
  head: CheckpointTensor;
  headTied: boolean;
}

export function projectionModule(layer: number, projection: Projection): string {
  const attention = ['q_proj', 'k_proj', 'v_proj', 'o_proj'].includes(projection);
  const block = attention ? 'self_attn' : 'mlp';
  return `model.layers.${layer}.${block}.${projection}`;
}

/** Output and input features of each projection, from the config. */
export function projectionShape(config: ModelConfig, projection: Projection): [number, number] {
  const { hiddenSize: c, intermediateSize: i, numHeads: h, numKvHeads: kv, headDim: d } = config;
  switch (projection) {
    case 'q_proj':
      return [h * d, c];
    case 'k_proj':
    case 'v_proj':
      return [kv * d, c];
    case 'o_proj':
      return [c, h * d];
    case 'gate_proj':
    case 'up_proj':
      return [i, c];
    case 'down_proj':
      return [c, i];
  }
}

export function resolveLlamaWeights(config: ModelConfig, checkpoint: Checkpoint): LlamaWeights {
  const get = (name: string, shape: number[]): CheckpointTensor => {
    const tensor = checkpoint.tensors.get(name);
    if (!tensor) throw new ConfigError(`${checkpoint.dir}: missing tensor ${name}`);
    if (tensor.shape.length !== shape.length || tensor.shape.some((d, i) => d !== shape[i])) {
      throw new ConfigError(
        `${tensor.file}: tensor ${name} has shape ${JSON.stringify(tensor.shape)}, ` +
          `config.json implies ${JSON.stringify(shape)}`,
      );
    }
    if (!['F32', 'F16', 'BF16'].includes(tensor.dtype)) {
      throw new ConfigError(
        `${tensor.file}: tensor ${name} has dtype ${tensor.dtype}; supported: F32, F16, BF16`,
      );
    }
    return tensor;
  };
  const { hiddenSize: c, vocabSize: v } = config;
  const embed = get('model.embed_tokens.weight', [v, c]);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const linears = {} as Record<Projection, LinearWeights>;
    for (const projection of PROJECTIONS) {
      const module = projectionModule(l, projection);
      const [outFeatures, inFeatures] = projectionShape(config, projection);
      const hasBias =
        (config.qkvBias && ['q_proj', 'k_proj', 'v_proj'].includes(projection)) ||
        (config.oBias && projection === 'o_proj') ||
        (config.mlpBias && ['gate_proj', 'up_proj', 'down_proj'].includes(projection));
      linears[projection] = {
        module,
        weight: get(`${module}.weight`, [outFeatures, inFeatures]),
        bias: hasBias ? get(`${module}.bias`, [outFeatures]) : undefined,
        inFeatures,
        outFeatures,
      };
    }
    layers.push({
      inputNorm: get(`model.layers.${l}.input_layernorm.weight`, [c]),
      postAttentionNorm: get(`model.layers.${l}.post_attention_layernorm.weight`, [c]),
      linears,
    });
  }
  const finalNorm = get('model.norm.weight', [c]);
  // Tied: the head is the embedding (an lm_head tensor, if a converter wrote one, is the same
  // matrix and is ignored). Untied: lm_head must exist.
  const head = config.tieWordEmbeddings ? embed : get('lm_head.weight', [v, c]);
  return { embed, layers, finalNorm, head, headTied: config.tieWordEmbeddings };
}
