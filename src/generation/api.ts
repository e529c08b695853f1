/**
 * The contract between generation (issue 4) and its callers: the model host's request loop
 * (issues 7 and 8) and the benchmarks. Keep it small and stable; both sides build against it.
 * The extension sees the same request and candidate types through src/protocol/generation.ts;
 * src/host/generationHandlers.ts checks at compile time that the two stay identical.
 */

/**
 * Most candidates one request may ask for. Here, with no runtime imports, so that settings that
 * feed `count` (PPO's and the gate's samplesPerPrompt) can check against it without loading the
 * generator.
 */
export const MAX_COUNT = 64;

/** Sampling and stopping settings for one completion request. */
export interface CompletionRequest {
  /** Text before the cursor, exactly as in the document (original line endings). */
  prefix: string;
  /** Text after the cursor; empty for left-to-right completion. Used for fill-in-the-middle. */
  suffix: string;
  /** Number of candidates to sample for this prompt, in one batch (1 to MAX_COUNT). */
  count: number;
  /** Hard cap on generated tokens per candidate. */
  maxNewTokens: number;
  /** Stop after this many completed lines (0 = no line limit). */
  maxLines: number;
  /** Softmax temperature; 0 means greedy. */
  temperature: number;
  /** Keep only the k most likely tokens (0 = off). */
  topK: number;
  /** Nucleus sampling mass (1 = off). */
  topP: number;
  /** Same seed, same request, same output. */
  seed: number;
  /** Extra stop strings, in addition to the model's stop ids. */
  stopStrings?: string[];
  /** LoRA adapter folder (PEFT format) to apply, or undefined for the base model. */
  adapterPath?: string;
}

export type StopReason = 'stop-token' | 'stop-string' | 'max-tokens' | 'max-lines';

/** One sampled candidate. Text never contains control tokens and is decoded without cleanup. */
export interface GeneratedCandidate {
  text: string;
  /** Generated token ids, after stop handling. */
  tokenIds: number[];
  /** Sum of the sampled tokens' log-probabilities at the sampling temperature. */
  logprob: number;
  stopReason: StopReason;
}

/** A LoRA adapter that fits the loaded model, as `CompletionGenerator.loadAdapter` read it. */
export interface AdapterSummary {
  rank: number;
  alpha: number;
  /** Projections it adapts, in layer order, e.g. ["q_proj", "v_proj"]. */
  targets: string[];
  /** Modules (one projection of one layer) it adapts. */
  modules: number;
}

export interface CompletionGenerator {
  /** Samples `request.count` candidates. Rejects with an AbortError-named error when aborted. */
  complete(request: CompletionRequest, signal?: AbortSignal): Promise<GeneratedCandidate[]>;
  /**
   * Reads the PEFT adapter in `adapterPath` for this model, exactly as a request with that
   * `adapterPath` would (and keeps it for those requests). Rejects naming the file, the key and
   * what is allowed when it does not fit the model.
   */
  loadAdapter(adapterPath: string): Promise<AdapterSummary>;
  /** Human-readable model name, e.g. "default (embedded)" or the model folder name. */
  describe(): string;
  /** Releases sessions and weights. */
  dispose(): Promise<void>;
}
