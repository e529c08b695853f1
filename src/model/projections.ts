/**
 * Projections LoRA can target, by their Hugging Face module names. A file of its own, importing
 * nothing, so that rlhf/config.ts (which the extension may import) can check LoRA target lists
 * without bringing the weights code along.
 */
export const PROJECTIONS = [
  'q_proj',
  'k_proj',
  'v_proj',
  'o_proj',
  'gate_proj',
  'up_proj',
  'down_proj',
] as const;
export type Projection = (typeof PROJECTIONS)[number];
