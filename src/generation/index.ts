/**
 * Generation entry points. The model host calls `loadGenerator`; training code that already
 * holds a `ModelRuntime` (one copy of the base weights) wraps it with `createGenerator`.
 */
import { ModelRuntime, type RuntimeOptions } from '../model/runtime';
import type { CompletionGenerator } from './api';
import { LlamaGenerator } from './generator';

export type { CompletionGenerator, CompletionRequest, GeneratedCandidate, StopReason } from './api';
export { AbortError, LlamaGenerator, MAX_COUNT } from './generator';
export type { DetailedCandidate, DetailedResult, GenerationTimings } from './generator';
export { buildPrompt } from './prompt';
export { StreamingDetokenizer } from './detokenizer';
export { sampleToken, Rng } from './sampling';

/**
 * Loads a Hugging Face Llama-family model folder (config.json, safetensors, tokenizer.json) and
 * returns a generator. Sessions are built on the first request and reused afterwards.
 */
export async function loadGenerator(
  modelDir: string,
  options: RuntimeOptions = {},
): Promise<CompletionGenerator & LlamaGenerator> {
  const runtime = ModelRuntime.load(modelDir, options);
  const generator = new LlamaGenerator(runtime, true);
  // Build the decode session now so the first completion does not pay for it.
  await runtime.session('step');
  return generator;
}

/** A generator over a runtime the caller keeps (dispose() leaves the runtime open). */
export function createGenerator(runtime: ModelRuntime): LlamaGenerator {
  return new LlamaGenerator(runtime, false);
}
