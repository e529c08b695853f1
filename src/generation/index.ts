/**
 * Generation entry points. The model host calls `loadGenerator`; training code that already
 * holds a `ModelRuntime` (one copy of the base weights) wraps it with `createGenerator`.
 */
import { ModelRuntime, type RuntimeOptions } from '../model/runtime';
import type { CompletionGenerator } from './api';
import { LlamaGenerator } from './generator';

export type {
  AdapterSummary,
  CompletionGenerator,
  CompletionRequest,
  GeneratedCandidate,
  StopReason,
} from './api';
export { AbortError, LlamaGenerator, MAX_COUNT } from './generator';
export type { DetailedCandidate, DetailedResult, GenerationTimings } from './generator';
export { buildPrompt } from './prompt';
export { StreamingDetokenizer } from './detokenizer';
export { NonFiniteLogitsError, sampleToken, Rng } from './sampling';

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
  try {
    await warmUp(generator);
  } catch (error) {
    await generator.dispose();
    throw error;
  }
  return generator;
}

/**
 * Builds the decode session and runs one short request, so the first completion the user asks
 * for does not pay for session creation, onnxruntime's first-run allocations or the JIT warming
 * up the sampling loops (measured on the default model: the first request took about twice as
 * long as the next ones without this).
 */
async function warmUp(generator: LlamaGenerator): Promise<void> {
  await generator.runtime.session('step');
  const maxNewTokens = Math.min(8, generator.runtime.model.contextLength - 4);
  if (maxNewTokens < 1) return;
  await generator.completeDetailed({
    prefix: 'def main():\n',
    suffix: '',
    count: 4,
    maxNewTokens,
    maxLines: 0,
    temperature: 1,
    topK: 0,
    topP: 0.95,
    seed: 0,
  });
}

/** A generator over a runtime the caller keeps (dispose() leaves the runtime open). */
export function createGenerator(runtime: ModelRuntime): LlamaGenerator {
  return new LlamaGenerator(runtime, false);
}
