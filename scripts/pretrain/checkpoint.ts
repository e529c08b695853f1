/**
 * Pretraining checkpoints (exact resume) and the Hugging Face export of the final model.
 *
 * A checkpoint is one safetensors file with every parameter and AdamW moment in F32 and the
 * run's progress in the metadata; it is written atomically, so a run killed mid-write keeps
 * the previous checkpoint. The export writes the Llama folder layout the product loads.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostTensor, type HostTensor, type TrainerState } from '../../src/engine';
import {
  readSafetensorsHeader,
  readTensorF32,
  writeSafetensors,
  type TensorToWrite,
} from '../../src/model/safetensors';
import { parameterSpecs, type ModelShape } from './model';
import { EOT, PAD } from './data';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';

/** Progress stored with a checkpoint, beside the tensors. */
export interface RunProgress {
  step: number;
  /** Training tokens consumed so far. */
  tokens: number;
  /** Seconds spent in training steps so far (time budget accounting across resumes). */
  trainSeconds: number;
  /** JSON of the run config, compared on resume so a changed config fails loudly. */
  configJson: string;
}

function toWrite(t: HostTensor): TensorToWrite {
  return { dtype: 'F32', shape: [...t.shape], data: t.data as Float32Array };
}

export function saveCheckpoint(dir: string, state: TrainerState, progress: RunProgress): string {
  mkdirSync(dir, { recursive: true });
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, t] of Object.entries(state.params)) tensors[name] = toWrite(t);
  for (const [name, t] of Object.entries(state.slots)) tensors[name] = toWrite(t);
  const file = join(dir, CHECKPOINT_FILE);
  writeSafetensors(file, tensors, {
    format: 'pt',
    step: String(progress.step),
    tokens: String(progress.tokens),
    train_seconds: String(progress.trainSeconds),
    config: progress.configJson,
    slots: JSON.stringify(Object.keys(state.slots)),
  });
  return file;
}

/** What to do about a checkpoint whose metadata cannot be read. */
const DAMAGED =
  'the checkpoint is damaged or was not written by this script; move it out of the run folder ' +
  'to start the run afresh, or put back an intact copy to resume';

/**
 * Parses checkpoint metadata; `where` names the file and key (`<file>: metadata "config"`) and
 * `allowed` what the value must be, both repeated in the error with what to do.
 */
function metadataJson(where: string, json: string, allowed: string): unknown {
  try {
    return JSON.parse(json);
  } catch (error) {
    throw new Error(
      `${where} is not valid JSON (${(error as Error).message}); allowed: ${allowed}; ${DAMAGED}`,
    );
  }
}

/**
 * A run config without its budget fields. Checkpoints written before the step limit counted as
 * a budget carry `steps`; it does not change the trained function, so a run resumes with a
 * different one.
 */
function comparableConfig(config: Record<string, unknown>): string {
  const { steps: _steps, ...rest } = config;
  return JSON.stringify(rest);
}

/** The saved config of checkpoint `file`, comparable with {@link comparableConfig}. */
function savedConfig(file: string, json: string): string {
  const where = `${file}: metadata "config"`;
  const allowed = 'a JSON object of run flags';
  const parsed = metadataJson(where, json, allowed);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${where} is ${json.slice(0, 80)}; allowed: ${allowed}; ${DAMAGED}`);
  }
  return comparableConfig(parsed as Record<string, unknown>);
}

/**
 * Loads a checkpoint written by `saveCheckpoint`. Fails, naming the file and the key, when the
 * saved config differs from `configJson` or a tensor is missing.
 */
export function loadCheckpoint(
  dir: string,
  shape: ModelShape,
  configJson: string,
): { state: TrainerState; progress: RunProgress } | undefined {
  const file = join(dir, CHECKPOINT_FILE);
  if (!existsSync(file)) return undefined;
  const header = readSafetensorsHeader(file);
  const meta = header.metadata;
  const saved = meta.config === undefined ? undefined : savedConfig(file, meta.config);
  // This run's flags, serialised by the caller: always a JSON object.
  if (saved !== comparableConfig(JSON.parse(configJson) as Record<string, unknown>)) {
    throw new Error(
      `${file}: saved run config differs from this run's; resume with the same flags or ` +
        `move the checkpoint away.\n  saved: ${meta.config}\n  now:   ${configJson}`,
    );
  }
  const read = (name: string, tensorShape: number[]) => {
    if (!header.tensors.has(name)) throw new Error(`${file}: missing tensor "${name}"`);
    return hostTensor('float32', tensorShape, readTensorF32(header, name));
  };
  const params: Record<string, HostTensor> = {};
  const shapes = new Map(parameterSpecs(shape).map((spec) => [spec.name, spec.shape]));
  for (const [name, tensorShape] of shapes) params[name] = read(name, tensorShape);
  const slots: Record<string, HostTensor> = {};
  const slotsAllowed = 'a JSON array of optimizer tensor names';
  const slotNames = metadataJson(`${file}: metadata "slots"`, meta.slots ?? '[]', slotsAllowed);
  if (!Array.isArray(slotNames) || slotNames.some((name) => typeof name !== 'string')) {
    throw new Error(
      `${file}: metadata "slots" is ${meta.slots!.slice(0, 80)}; allowed: ${slotsAllowed}; ` +
        DAMAGED,
    );
  }
  for (const name of slotNames as string[]) {
    const param = name.replace(/\.adam_[mv]$/, '');
    const tensorShape = shapes.get(param);
    if (!tensorShape) throw new Error(`${file}: slot "${name}" belongs to no parameter`);
    slots[name] = read(name, tensorShape);
  }
  const number = (key: string) => {
    const value = Number(meta[key]);
    if (!Number.isFinite(value)) throw new Error(`${file}: metadata "${key}" is ${meta[key]}`);
    return value;
  };
  const progress: RunProgress = {
    step: number('step'),
    tokens: number('tokens'),
    trainSeconds: number('train_seconds'),
    configJson,
  };
  return { state: { step: progress.step, params, slots }, progress };
}

/** Writes config.json, generation_config.json and model.safetensors (F16) into `dir`. */
export function exportHuggingFace(
  dir: string,
  shape: ModelShape,
  params: Readonly<Record<string, HostTensor>>,
  metadata: Record<string, string>,
): void {
  mkdirSync(dir, { recursive: true });
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: shape.vocabSize,
    hidden_size: shape.hiddenSize,
    intermediate_size: shape.intermediateSize,
    num_hidden_layers: shape.numLayers,
    num_attention_heads: shape.numHeads,
    num_key_value_heads: shape.numHeads,
    head_dim: shape.hiddenSize / shape.numHeads,
    max_position_embeddings: shape.contextLength,
    rms_norm_eps: shape.rmsNormEps,
    rope_theta: shape.ropeTheta,
    rope_scaling: null,
    hidden_act: 'silu',
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: true,
    bos_token_id: EOT,
    eos_token_id: EOT,
    pad_token_id: PAD,
    torch_dtype: 'float16',
    initializer_range: 0.02,
    use_cache: true,
  };
  const generation = { bos_token_id: EOT, eos_token_id: [EOT], pad_token_id: PAD };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify(generation, null, 2) + '\n');
  const tensors: Record<string, TensorToWrite> = {};
  for (const spec of parameterSpecs(shape)) {
    const t = params[spec.name];
    if (!t) throw new Error(`export: no value for parameter "${spec.name}"`);
    tensors[spec.name] = { dtype: 'F16', shape: spec.shape, data: t.data as Float32Array };
  }
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt', ...metadata });
}
