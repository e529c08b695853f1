/**
 * Train/validation split by prompt, and early stopping. Splitting by prompt keeps every pair of
 * one prompt on the same side, so validation accuracy measures generalisation to new contexts
 * rather than memorised ones.
 */
import { createHash } from 'crypto';

/** Position of a prompt in [0, 1), stable across runs and machines for a given seed. */
function promptPosition(prompt: string, seed: number): number {
  const digest = createHash('sha256').update(`${seed}\u0000${prompt}`).digest();
  return digest.readUInt32BE(0) / 2 ** 32;
}

export interface Split<T> {
  train: T[];
  validation: T[];
  trainPrompts: number;
  validationPrompts: number;
}

/**
 * Splits items so that about `validationFraction` of distinct prompts go to validation.
 * With two or more distinct prompts both sides get at least one prompt.
 *
 * The trainers group by the text before the cursor alone (`(p) => p.prompt`), not by the whole
 * context with its suffix, and that is the leak-free choice: a context has one prefix, so it
 * never sits on both sides, and neither does a prefix. Grouping by the whole context would put
 * the same prefix on both sides whenever it was judged with two suffixes (the same place before
 * and after an edit below the cursor), and validation would score contexts whose every prefix
 * token the model trained on.
 */
export function splitByPrompt<T>(
  items: readonly T[],
  promptOf: (item: T) => string,
  validationFraction: number,
  seed = 0,
): Split<T> {
  if (!(validationFraction > 0 && validationFraction < 1)) {
    throw new Error(
      `validationFraction must be between 0 and 1 (exclusive), got ${validationFraction}`,
    );
  }
  const prompts = [...new Set(items.map(promptOf))];
  const ordered = prompts
    .map((p) => ({ p, x: promptPosition(p, seed) }))
    .sort((a, b) => a.x - b.x || (a.p < b.p ? -1 : 1));
  let nValidation = Math.round(prompts.length * validationFraction);
  if (prompts.length >= 2) nValidation = Math.min(prompts.length - 1, Math.max(1, nValidation));
  const validationPrompts = new Set(ordered.slice(0, nValidation).map((o) => o.p));
  const train: T[] = [];
  const validation: T[] = [];
  for (const item of items) (validationPrompts.has(promptOf(item)) ? validation : train).push(item);
  return {
    train,
    validation,
    trainPrompts: prompts.length - validationPrompts.size,
    validationPrompts: validationPrompts.size,
  };
}

export interface EarlyStoppingConfig {
  /** Evaluations without improvement before stopping. */
  patience: number;
  /** Smallest change that counts as an improvement. */
  minDelta: number;
  mode: 'min' | 'max';
}

export class EarlyStopping {
  best = Number.NaN;
  bestStep = -1;
  private sinceBest = 0;

  constructor(readonly config: EarlyStoppingConfig) {
    if (!(config.patience >= 1)) throw new Error(`patience must be >= 1, got ${config.patience}`);
  }

  /** Records an evaluation; returns true when this one is the new best. */
  observe(value: number, step: number): boolean {
    const better =
      Number.isNaN(this.best) ||
      (this.config.mode === 'max'
        ? value > this.best + this.config.minDelta
        : value < this.best - this.config.minDelta);
    if (better && Number.isFinite(value)) {
      this.best = value;
      this.bestStep = step;
      this.sinceBest = 0;
      return true;
    }
    this.sinceBest++;
    return false;
  }

  get shouldStop(): boolean {
    return this.sinceBest >= this.config.patience;
  }

  state(): { best: number; bestStep: number; sinceBest: number } {
    return { best: this.best, bestStep: this.bestStep, sinceBest: this.sinceBest };
  }

  restore(state: { best: number; bestStep: number; sinceBest: number }): void {
    this.best = state.best ?? Number.NaN;
    this.bestStep = state.bestStep;
    this.sinceBest = state.sinceBest;
  }
}
