/**
 * Completion requests and candidates as they travel between the extension host and the model
 * host (`complete` in `./modelHost`). src/generation declares its own request and candidate types
 * (src/generation/api.ts), since the protocol imports nothing and generation imports only model
 * and engine; the model host passes these through to the generator unchanged, and
 * src/host/generationHandlers.ts fails to compile if the two drift apart.
 */

/** Sampling and stopping settings for one completion request. */
export interface CompletionRequest {
  /** Text before the cursor, exactly as in the document (original line endings). */
  prefix: string;
  /** Text after the cursor; empty for left-to-right completion. Used for fill-in-the-middle. */
  suffix: string;
  /** Number of candidates to sample for this prompt, in one batch. */
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
