/**
 * Hugging Face Llama-family models on the tensor engine: loading, graphs, LoRA, PEFT I/O and
 * export. See README.md in this folder.
 */
export { loadModel } from './loader';
export type { LoadedModel } from './loader';
export { ModelRuntime, int64Tensor, selectCacheRows } from './runtime';
export type { GraphKind, KvCache, RuntimeOptions, StepResult } from './runtime';
export {
  buildLlamaForward,
  declareLoraInputs,
  loraInputName,
  maskPaddedVocab,
  outputLogits,
  weightTensor,
} from './llamaGraph';
export type {
  ForwardInputs,
  ForwardOutputs,
  KvPair,
  LoraGraphInputs,
  StaticCacheInputs,
} from './llamaGraph';
export {
  initLora,
  loadPeftAdapter,
  loraScale,
  mergeIntoWeight,
  savePeftAdapter,
  targetModules,
  validateLoraConfig,
} from './lora';
export type { LoraAdapter, LoraConfig, LoraFactorsData } from './lora';
export { exportMergedCheckpoint } from './export';
export { CodeTokenizer } from './tokenizer';
export type { FimTokens } from './tokenizer';
export {
  ConfigError,
  loadModelConfig,
  parseModelConfig,
  ropeInverseFrequencies,
  SUPPORTED_ARCHITECTURES,
  SUPPORTED_ROPE_TYPES,
} from './config';
export type { ModelConfig, RopeScaling } from './config';
export { PROJECTIONS, projectionModule } from './weights';
export type { Projection } from './weights';
export {
  readSafetensorsHeader,
  readTensorF32,
  writeSafetensors,
  SafetensorsError,
} from './safetensors';
export { Rng } from './random';
