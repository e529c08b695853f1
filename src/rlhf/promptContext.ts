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
 * One string per distinct context, for sets and maps. A context with no suffix keys as its
 * prompt alone, so sets of suffix-free prompts are what they were before suffixes were carried.
 */
export function contextKey(context: PromptContext): string {
  return context.suffix === '' ? context.prompt : `${context.prompt}\u0000${context.suffix}`;
}
