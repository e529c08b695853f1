/**
 * The context a completion was asked for: the text before the cursor and the text after it.
 * Training pairs, PPO prompts and rollouts carry both, so a judgment made in the middle of a
 * file trains the reward model and the policy on the fill-in-the-middle prompt the editor's
 * request had (see `encodePair` in batch.ts for how it is cut into tokens).
 */

export interface PromptContext {
  /** Text before the cursor. */
  prompt: string;
  /** Text after the cursor; '' for a left-to-right completion. */
  suffix: string;
}

/** A plain string is a prompt with no suffix (prompts cut from code, as the demo's). */
export type PromptInput = string | PromptContext;

export function toContext(input: PromptInput): PromptContext {
  return typeof input === 'string' ? { prompt: input, suffix: '' } : input;
}

/**
 * One string per distinct context, for sets and maps: the prompt's length, then prompt and
 * suffix. The length says where the prompt ends, so two contexts never share a key; a separator
 * would not (a prompt may contain it: "a\0b" with no suffix and "a" before "b" keyed alike).
 * Callers only compare keys (the split hashes the prompt itself, and maps iterate in insertion
 * order), so the key's form can change without changing any split, shuffle or figure.
 */
export function contextKey(context: PromptContext): string {
  return `${context.prompt.length}:${context.prompt}${context.suffix}`;
}
