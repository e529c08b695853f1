/**
 * LoRA adapters (Hu et al. 2021): W' = W + scale * B @ A with A [r, in], B [out, r] and
 * scale = alpha / r (rsLoRA: alpha / sqrt(r), Kalajdzievski 2023). Adapters live in JS memory
 * as float32 and enter graphs as inputs. Import and export use PEFT's layout:
 * `adapter_config.json` and `adapter_model.safetensors` with keys
 * `base_model.model.<module>.lora_A.weight` / `.lora_B.weight`.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ConfigError, readJsonFile } from './config';
import type { LoadedModel } from './loader';
import {
  readSafetensorsHeader,
  readTensorF32,
  writeSafetensors,
  type TensorToWrite,
} from './safetensors';
import { Rng } from './random';
import { PROJECTIONS, projectionShape, type Projection } from './weights';

export interface LoraConfig {
  rank: number;
  alpha: number;
  targets: Projection[];
  /** Scale alpha / sqrt(r) instead of alpha / r. */
  useRslora: boolean;
}

export interface LoraFactorsData {
  /** [r, in], row-major */
  a: Float32Array;
  /** [out, r], row-major */
  b: Float32Array;
  inFeatures: number;
  outFeatures: number;
}

export interface LoraAdapter {
  config: LoraConfig;
  /** Keyed by module path, e.g. "model.layers.0.self_attn.q_proj". */
  factors: Map<string, LoraFactorsData>;
}

/**
 * The largest LoRA scale a loaded adapter may have: the trainers' own limit (loraAlpha at most
 * 1024 at rank 1, src/rlhf/config.ts). Real PEFT adapters sit far below it (alpha 16..512 with
 * r 8..256 is a scale of 1/16 to 64; rsLoRA at most about 181).
 */
export const MAX_LORA_SCALE = 1024;

export function loraScale(config: LoraConfig): number {
  return config.useRslora ? config.alpha / Math.sqrt(config.rank) : config.alpha / config.rank;
}

export function validateLoraConfig(config: LoraConfig, where = 'LoRA config'): void {
  if (!Number.isInteger(config.rank) || config.rank < 1) {
    throw new ConfigError(`${where}: rank must be a positive integer, got ${config.rank}`);
  }
  if (!(typeof config.alpha === 'number' && config.alpha > 0)) {
    throw new ConfigError(`${where}: alpha must be a positive number, got ${config.alpha}`);
  }
  if (config.targets.length === 0) {
    throw new ConfigError(`${where}: choose at least one target of ${PROJECTIONS.join(', ')}`);
  }
  for (const t of config.targets) {
    if (!PROJECTIONS.includes(t)) {
      throw new ConfigError(`${where}: unknown target "${t}"; allowed: ${PROJECTIONS.join(', ')}`);
    }
  }
}

/** Modules of `model` that a config targets, in layer order. */
export function targetModules(model: LoadedModel, targets: readonly Projection[]): string[] {
  return model.weights.layers.flatMap((layer) =>
    PROJECTIONS.filter((p) => targets.includes(p)).map((p) => layer.linears[p].module),
  );
}

/**
 * A fresh adapter as PEFT initialises it: A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming-uniform with
 * a = sqrt(5)), B = 0, so the adapted model starts equal to the base. Seeded.
 */
export function initLora(model: LoadedModel, config: LoraConfig, seed = 0): LoraAdapter {
  validateLoraConfig(config);
  const rng = new Rng(seed);
  const factors = new Map<string, LoraFactorsData>();
  for (const layer of model.weights.layers) {
    for (const projection of PROJECTIONS) {
      if (!config.targets.includes(projection)) continue;
      const [outFeatures, inFeatures] = projectionShape(model.config, projection);
      const bound = 1 / Math.sqrt(inFeatures);
      const a = new Float32Array(config.rank * inFeatures);
      for (let i = 0; i < a.length; i++) a[i] = (rng.next() * 2 - 1) * bound;
      factors.set(layer.linears[projection].module, {
        a,
        b: new Float32Array(outFeatures * config.rank),
        inFeatures,
        outFeatures,
      });
    }
  }
  return { config: { ...config, targets: [...config.targets] }, factors };
}

const PEFT_PREFIX = 'base_model.model.';

/** Writes `adapter_config.json` and `adapter_model.safetensors` (PEFT layout) into `dir`. */
export function savePeftAdapter(dir: string, adapter: LoraAdapter, baseModel = ''): void {
  fs.mkdirSync(dir, { recursive: true });
  const tensors: Record<string, TensorToWrite> = {};
  const { rank } = adapter.config;
  for (const [module, f] of adapter.factors) {
    tensors[`${PEFT_PREFIX}${module}.lora_A.weight`] = {
      dtype: 'F32',
      shape: [rank, f.inFeatures],
      data: f.a,
    };
    tensors[`${PEFT_PREFIX}${module}.lora_B.weight`] = {
      dtype: 'F32',
      shape: [f.outFeatures, rank],
      data: f.b,
    };
  }
  writeSafetensors(path.join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
  const config = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModel,
    r: rank,
    lora_alpha: adapter.config.alpha,
    use_rslora: adapter.config.useRslora,
    target_modules: adapter.config.targets,
    lora_dropout: 0,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
  };
  const file = path.join(dir, 'adapter_config.json');
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(config, null, 2)}\n`);
  fs.renameSync(`${file}.tmp`, file);
}

/**
 * Reads a PEFT LoRA adapter for `model`. Every tensor must match a module of the model with the
 * right shape; the first key that does not is named in the error (an adapter that silently
 * applies to nothing is the failure this guards against). Extra `base_model.model.` prefixes
 * and PEFT's `.lora_A.<adapter name>.weight` form are accepted, but only one tensor per module
 * and factor. The scale must be finite and within MAX_LORA_SCALE, the factors finite.
 */
export function loadPeftAdapter(dir: string, model: LoadedModel): LoraAdapter {
  const configFile = path.join(dir, 'adapter_config.json');
  const raw = readJsonFile(configFile) as Record<string, unknown>;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${configFile}: expected a JSON object, got ${JSON.stringify(raw)}`);
  }
  const where = (key: string) => `${configFile}: "${key}"`;
  if (raw.peft_type !== undefined && raw.peft_type !== 'LORA') {
    throw new ConfigError(`${where('peft_type')} is ${JSON.stringify(raw.peft_type)}; only "LORA"`);
  }
  // A hand-edited "true" (a string) would otherwise read as false: for use_rslora that silently
  // changes the scale, for the others it would accept what PEFT reads as a feature we lack.
  // PEFT writes these as JSON booleans; absent or null is its default, false.
  const flag = (key: string): boolean => {
    const value = raw[key];
    if (value === undefined || value === null) return false;
    if (typeof value !== 'boolean') {
      throw new ConfigError(
        `${where(key)} is ${JSON.stringify(value)}; allowed: true, false or null (a JSON ` +
          'boolean, not a string or number)',
      );
    }
    return value;
  };
  const useRslora = flag('use_rslora');
  for (const key of ['use_dora', 'fan_in_fan_out']) {
    if (flag(key)) throw new ConfigError(`${where(key)} = true is not supported`);
  }
  if (raw.bias !== undefined && raw.bias !== 'none') {
    throw new ConfigError(
      `${where('bias')} is ${JSON.stringify(raw.bias)}; only "none" is supported`,
    );
  }
  // These save tensors other than LoRA factors (full module copies, biases) or change the
  // model's layer stack; applying only the factors would silently be another adapter.
  for (const [key, what] of [
    ['modules_to_save', 'full copies of modules'],
    ['layer_replication', 'replicated layers'],
  ] as const) {
    const value = raw[key];
    if (Array.isArray(value) && value.length > 0) {
      throw new ConfigError(
        `${where(key)} is ${JSON.stringify(value)}; ${what} are not supported (allowed: null ` +
          'or [], LoRA factors only)',
      );
    }
  }
  if (flag('lora_bias')) {
    throw new ConfigError(`${where('lora_bias')} = true is not supported (allowed: false)`);
  }
  for (const key of ['rank_pattern', 'alpha_pattern']) {
    const value = raw[key];
    if (value && typeof value === 'object' && Object.keys(value).length > 0) {
      // Limitation: per-module ranks/alphas are not supported; one rank and alpha per adapter.
      throw new ConfigError(`${where(key)} is not supported (one rank and alpha per adapter)`);
    }
  }
  const rank = raw.r;
  const alpha = raw.lora_alpha ?? rank;
  if (!Number.isInteger(rank) || (rank as number) < 1) {
    throw new ConfigError(`${where('r')} must be a positive integer, got ${JSON.stringify(rank)}`);
  }
  if (typeof alpha !== 'number' || !(alpha > 0)) {
    throw new ConfigError(
      `${where('lora_alpha')} must be a positive number, got ${JSON.stringify(alpha)}`,
    );
  }
  const scale = loraScale({ rank: rank as number, alpha, targets: [], useRslora });
  if (!(scale <= MAX_LORA_SCALE)) {
    // Refused here, not at the first completion: there the logits overflow (lora_alpha 1e30)
    // and the error can only blame the training settings of an adapter trained elsewhere.
    const formula = useRslora ? 'lora_alpha / sqrt(r), use_rslora' : 'lora_alpha / r';
    const root = useRslora ? Math.sqrt(rank as number) : (rank as number);
    const maxAlpha = Number((MAX_LORA_SCALE * root).toFixed(2));
    throw new ConfigError(
      `${where('lora_alpha')} is ${alpha}, a LoRA scale of ${scale} (${formula}) with r = ` +
        `${rank as number}; allowed: a scale above 0 and at most ${MAX_LORA_SCALE}, i.e. ` +
        `lora_alpha in (0, ${maxAlpha}] for this r`,
    );
  }

  const weightsFile = path.join(dir, 'adapter_model.safetensors');
  if (!fs.existsSync(weightsFile)) {
    throw new ConfigError(
      `${dir} has no adapter_model.safetensors (adapter_model.bin is not read)`,
    );
  }
  const header = readSafetensorsHeader(weightsFile);
  const known = new Map<string, { projection: Projection; out: number; in: number }>();
  for (const layer of model.weights.layers) {
    for (const projection of PROJECTIONS) {
      const lw = layer.linears[projection];
      known.set(lw.module, { projection, out: lw.outFeatures, in: lw.inFeatures });
    }
  }
  const parts = new Map<string, { a?: Float32Array; b?: Float32Array }>();
  // The key each module's factor came from: a second one (another adapter name, or the same
  // module with and without the prefix) would otherwise replace the first unnoticed.
  const sources = new Map<string, string>();
  // Tensors read so far; every one of them matched (a mismatch stops the loop). Not parts.size,
  // which counts modules, each with an A and a B tensor.
  let matched = 0;
  for (const [key, entry] of header.tensors) {
    const match = /^(?:base_model\.model\.)*(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$/.exec(key);
    const module = match?.[1];
    const info = module ? known.get(module) : undefined;
    if (!match || !module || !info) {
      throw new ConfigError(
        `${weightsFile}: tensor "${key}" matches no LoRA module of ${model.name} ` +
          `(${matched} of ${header.tensors.size} tensors matched before it; expected keys like ` +
          `"${PEFT_PREFIX}model.layers.0.self_attn.q_proj.lora_A.weight")`,
      );
    }
    const which = match[2];
    const earlier = sources.get(`${module}.lora_${which}`);
    if (earlier !== undefined) {
      throw new ConfigError(
        `${weightsFile}: tensors "${earlier}" and "${key}" are both lora_${which} of ${module}; ` +
          'allowed: one tensor per module and factor (one adapter per folder)',
      );
    }
    sources.set(`${module}.lora_${which}`, key);
    const expected = which === 'A' ? [rank, info.in] : [info.out, rank];
    if (
      entry.shape.length !== 2 ||
      entry.shape[0] !== expected[0] ||
      entry.shape[1] !== expected[1]
    ) {
      throw new ConfigError(
        `${weightsFile}: tensor "${key}" has shape ${JSON.stringify(entry.shape)}, expected ` +
          `${JSON.stringify(expected)} (r = ${rank})`,
      );
    }
    const slot = parts.get(module) ?? {};
    const values = readTensorF32(header, key);
    const bad = values.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) {
      throw new ConfigError(
        `${weightsFile}: tensor "${key}" holds ${values[bad]} at [${bad}]; LoRA factors must be ` +
          'finite numbers',
      );
    }
    slot[which === 'A' ? 'a' : 'b'] = values;
    parts.set(module, slot);
    matched++;
  }
  if (parts.size === 0) {
    throw new ConfigError(`${weightsFile}: no LoRA tensors (0 modules matched)`);
  }
  const factors = new Map<string, LoraFactorsData>();
  const targets = new Set<Projection>();
  for (const [module, slot] of parts) {
    if (!slot.a || !slot.b) {
      throw new ConfigError(`${weightsFile}: module ${module} has lora_${slot.a ? 'A' : 'B'} only`);
    }
    const info = known.get(module)!;
    targets.add(info.projection);
    factors.set(module, { a: slot.a, b: slot.b, inFeatures: info.in, outFeatures: info.out });
  }
  return {
    config: {
      rank: rank as number,
      alpha,
      targets: PROJECTIONS.filter((p) => targets.has(p)),
      useRslora,
    },
    factors,
  };
}

/** W' = W + scale * B @ A for one module; W is [out, in] row-major float32. */
export function mergeIntoWeight(
  weight: Float32Array,
  f: LoraFactorsData,
  rank: number,
  scale: number,
): Float32Array {
  const merged = Float32Array.from(weight);
  const { inFeatures: n, outFeatures: m } = f;
  for (let o = 0; o < m; o++) {
    for (let r = 0; r < rank; r++) {
      const coefficient = scale * f.b[o * rank + r];
      if (coefficient === 0) continue;
      const row = o * n;
      const aRow = r * n;
      for (let i = 0; i < n; i++) merged[row + i] += coefficient * f.a[aRow + i];
    }
  }
  return merged;
}
