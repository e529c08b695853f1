/**
 * `config.json` and `generation_config.json` for Llama-family causal LMs.
 *
 * Field meanings follow transformers' LlamaConfig, Qwen2Config and MistralConfig. Anything that
 * would change the forward pass and that we do not implement is rejected with an error naming the
 * key, instead of being ignored.
 */
import * as fs from 'fs';
import * as path from 'path';

export const SUPPORTED_ARCHITECTURES = [
  'LlamaForCausalLM',
  'Qwen2ForCausalLM',
  'MistralForCausalLM',
] as const;
export type Architecture = (typeof SUPPORTED_ARCHITECTURES)[number];

export const SUPPORTED_ROPE_TYPES = ['default', 'linear', 'llama3'] as const;

export type RopeScaling =
  | { type: 'default' }
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    };

export interface ModelConfig {
  architecture: Architecture;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  /** Key/value heads; fewer than numHeads means grouped-query attention. */
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  maxPositionEmbeddings: number;
  /** Attention window (Mistral/Qwen2 sliding window), or undefined for full causal attention. */
  slidingWindow?: number;
  tieWordEmbeddings: boolean;
  /** Bias on q, k and v projections (Qwen2 always; Llama when attention_bias). */
  qkvBias: boolean;
  /** Bias on o_proj (Llama attention_bias). */
  oBias: boolean;
  /** Bias on gate/up/down (Llama mlp_bias). */
  mlpBias: boolean;
  /** Checkpoint dtype as declared (informational; tensors carry their own dtype). */
  torchDtype?: string;
  bosTokenId?: number;
  eosTokenIds: number[];
  padTokenId?: number;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read ${file}: ${(error as Error).message}`);
  }
  if (text.startsWith('version https://git-lfs.github.com/spec/')) {
    throw new ConfigError(
      `${file} is a Git LFS pointer, not the file itself; run \`git lfs pull\` (or download it)`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
}

/** Reads `<dir>/config.json`. */
export function loadModelConfig(dir: string): ModelConfig {
  const file = path.join(dir, 'config.json');
  return parseModelConfig(readJsonFile(file), file);
}

export function parseModelConfig(json: unknown, file = 'config.json'): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError(`${file}: expected a JSON object`);
  }
  const raw = json as Record<string, unknown>;
  const where = (key: string) => `${file}: "${key}"`;
  const int = (key: string, fallback?: number): number => {
    const value = raw[key] ?? fallback;
    if (!Number.isSafeInteger(value) || (value as number) <= 0) {
      throw new ConfigError(
        `${where(key)} must be a positive integer, got ${JSON.stringify(value)}`,
      );
    }
    return value as number;
  };
  const num = (key: string, fallback?: number): number => {
    const value = raw[key] ?? fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new ConfigError(
        `${where(key)} must be a positive number, got ${JSON.stringify(value)}`,
      );
    }
    return value;
  };

  const bool = (key: string): boolean => {
    const value = raw[key] ?? false;
    if (typeof value !== 'boolean') {
      throw new ConfigError(`${where(key)} must be true or false, got ${JSON.stringify(value)}`);
    }
    return value;
  };

  const architectures = raw.architectures;
  const architecture = Array.isArray(architectures) ? architectures[0] : undefined;
  if (!SUPPORTED_ARCHITECTURES.includes(architecture as Architecture)) {
    throw new ConfigError(
      `${where('architectures')} is ${JSON.stringify(architectures)}; supported: ` +
        `${SUPPORTED_ARCHITECTURES.join(', ')}` +
        (architecture === 'GPT2LMHeadModel'
          ? ' (GPT-2 stores Conv1D weights as [in, out]; it is not loaded as a Llama model)'
          : ''),
    );
  }
  const arch = architecture as Architecture;
  const activation = raw.hidden_act ?? 'silu';
  if (activation !== 'silu') {
    throw new ConfigError(
      `${where('hidden_act')} is ${JSON.stringify(activation)}; only "silu" is supported`,
    );
  }
  const hiddenSize = int('hidden_size');
  const numHeads = int('num_attention_heads');
  const numKvHeads = int('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ConfigError(
      `${where('num_key_value_heads')} = ${numKvHeads} does not divide num_attention_heads = ${numHeads}`,
    );
  }
  const headDim = raw.head_dim == null ? hiddenSize / numHeads : int('head_dim');
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new ConfigError(`${file}: head dimension ${headDim} must be an even integer`);
  }
  if (raw.quantization_config != null) {
    const method = (raw.quantization_config as { quant_method?: unknown }).quant_method;
    throw new ConfigError(
      `${where('quantization_config')}: quantized checkpoints (${JSON.stringify(method)}) are ` +
        'not supported; use an F32, F16 or BF16 checkpoint',
    );
  }
  if (raw.partial_rotary_factor != null && raw.partial_rotary_factor !== 1) {
    throw new ConfigError(`${where('partial_rotary_factor')} is not supported (only 1)`);
  }

  let slidingWindow: number | undefined;
  if (arch === 'MistralForCausalLM' && raw.sliding_window != null)
    slidingWindow = int('sliding_window');
  if (arch === 'Qwen2ForCausalLM' && bool('use_sliding_window')) {
    // Limitation: Qwen2 applies the window only from layer max_window_layers on; we bound the
    // whole sequence (prompt + completion) by the window instead, which is exact for every layer.
    slidingWindow = int('sliding_window');
  }

  const llamaBias = arch === 'LlamaForCausalLM' && bool('attention_bias');
  return {
    architecture: arch,
    vocabSize: int('vocab_size'),
    hiddenSize,
    intermediateSize: int('intermediate_size'),
    numLayers: int('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: num('rms_norm_eps', 1e-6),
    ropeTheta: num('rope_theta', 10000),
    ropeScaling: parseRopeScaling(raw.rope_scaling, file),
    maxPositionEmbeddings: int('max_position_embeddings', 2048),
    slidingWindow,
    tieWordEmbeddings: bool('tie_word_embeddings'),
    qkvBias: arch === 'Qwen2ForCausalLM' || llamaBias,
    oBias: llamaBias,
    mlpBias: arch === 'LlamaForCausalLM' && bool('mlp_bias'),
    torchDtype: typeof raw.torch_dtype === 'string' ? raw.torch_dtype : undefined,
    bosTokenId: optionalId(raw.bos_token_id, where('bos_token_id')),
    eosTokenIds: idList(raw.eos_token_id, where('eos_token_id')),
    padTokenId: optionalId(raw.pad_token_id, where('pad_token_id')),
  };
}

function parseRopeScaling(value: unknown, file: string): RopeScaling {
  if (value == null) return { type: 'default' };
  const where = `${file}: "rope_scaling"`;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`${where} must be an object or null, got ${JSON.stringify(value)}`);
  }
  const raw = value as Record<string, unknown>;
  // Llama 3.1 writes `rope_type`; older configs write `type`.
  const type = raw.rope_type ?? raw.type;
  const positive = (key: string): number => {
    const v = raw[key];
    if (typeof v !== 'number' || !(v > 0)) {
      throw new ConfigError(`${where}.${key} must be a positive number, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  switch (type) {
    case 'default':
      return { type: 'default' };
    case 'linear':
      return { type: 'linear', factor: positive('factor') };
    case 'llama3': {
      const result: RopeScaling = {
        type: 'llama3',
        factor: positive('factor'),
        lowFreqFactor: positive('low_freq_factor'),
        highFreqFactor: positive('high_freq_factor'),
        originalMaxPositionEmbeddings: positive('original_max_position_embeddings'),
      };
      if (result.highFreqFactor <= result.lowFreqFactor) {
        throw new ConfigError(`${where}: high_freq_factor must exceed low_freq_factor`);
      }
      return result;
    }
    default:
      throw new ConfigError(
        `${where}: unsupported rope_scaling type ${JSON.stringify(type)}; supported: ` +
          SUPPORTED_ROPE_TYPES.join(', '),
      );
  }
}

/**
 * RoPE inverse frequencies, float64, length headDim/2. Formulas: RoFormer (theta^(-2i/d)),
 * linear scaling (positions / factor), and Llama 3.1's frequency-dependent scaling
 * (transformers `_compute_llama3_parameters`).
 */
export function ropeInverseFrequencies(config: ModelConfig): Float64Array {
  const half = config.headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / config.ropeTheta ** ((2 * i) / config.headDim);
  const scaling = config.ropeScaling;
  if (scaling.type === 'linear') {
    for (let i = 0; i < half; i++) inv[i] /= scaling.factor;
  } else if (scaling.type === 'llama3') {
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: old } = scaling;
    const lowFreqWavelen = old / lowFreqFactor;
    const highFreqWavelen = old / highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen > lowFreqWavelen) inv[i] /= factor;
      else if (wavelen >= highFreqWavelen) {
        const smooth = (old / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        inv[i] = (1 - smooth) * (inv[i] / factor) + smooth * inv[i];
      }
    }
  }
  return inv;
}

export interface GenerationConfig {
  eosTokenIds: number[];
  bosTokenId?: number;
  padTokenId?: number;
}

/** Reads `<dir>/generation_config.json` when present. */
export function loadGenerationConfig(dir: string): GenerationConfig {
  const file = path.join(dir, 'generation_config.json');
  if (!fs.existsSync(file)) return { eosTokenIds: [] };
  const raw = readJsonFile(file);
  if (typeof raw !== 'object' || raw === null)
    throw new ConfigError(`${file}: expected a JSON object`);
  const json = raw as Record<string, unknown>;
  return {
    eosTokenIds: idList(json.eos_token_id, `${file}: "eos_token_id"`),
    bosTokenId: optionalId(json.bos_token_id, `${file}: "bos_token_id"`),
    padTokenId: optionalId(json.pad_token_id, `${file}: "pad_token_id"`),
  };
}

function optionalId(value: unknown, where: string): number | undefined {
  if (value == null) return undefined;
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw new ConfigError(`${where} must be a token id, got ${JSON.stringify(value)}`);
  }
  return value as number;
}

function idList(value: unknown, where: string): number[] {
  if (value == null) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.map((id) => optionalId(id, where) as number);
}
