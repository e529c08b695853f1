/**
 * Loads a Hugging Face model folder: config, generation config, tokenizer, checkpoint headers
 * and the weight map. Reads no tensor data: graphs point at the checkpoint's bytes directly.
 */
import * as path from 'path';
import { openCheckpoint, type Checkpoint } from './checkpoint';
import {
  loadGenerationConfig,
  loadModelConfig,
  ropeInverseFrequencies,
  type GenerationConfig,
  type ModelConfig,
} from './config';
import { stopTokenIds } from './stopIds';
import { CodeTokenizer } from './tokenizer';
import { resolveLlamaWeights, type LlamaWeights } from './weights';

export interface LoadedModel {
  /** Absolute model folder. */
  dir: string;
  /** Folder name, for display. */
  name: string;
  config: ModelConfig;
  generation: GenerationConfig;
  tokenizer: CodeTokenizer;
  checkpoint: Checkpoint;
  weights: LlamaWeights;
  /** Ids that end a completion (EOS ids of every source plus every control token). */
  stopIds: ReadonlySet<number>;
  /** RoPE inverse frequencies with the config's scaling applied. */
  ropeInverseFrequencies: Float64Array;
  /** Longest sequence (prompt + completion) the model attends over. */
  contextLength: number;
}

export function loadModel(dir: string): LoadedModel {
  const absolute = path.resolve(dir);
  const config = loadModelConfig(absolute);
  const generation = loadGenerationConfig(absolute);
  const tokenizer = CodeTokenizer.load(absolute);
  const checkpoint = openCheckpoint(absolute);
  const weights = resolveLlamaWeights(config, checkpoint);
  return {
    dir: absolute,
    name: path.basename(absolute),
    config,
    generation,
    tokenizer,
    checkpoint,
    weights,
    stopIds: stopTokenIds(config, generation, tokenizer),
    ropeInverseFrequencies: ropeInverseFrequencies(config),
    contextLength: Math.min(config.maxPositionEmbeddings, config.slidingWindow ?? Infinity),
  };
}
