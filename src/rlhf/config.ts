/**
 * One typed config per trainer, with defaults and a help text per field. `parseConfig` takes the
 * JSON object of a `train/start` command (or CLI flags) and names any unknown key or bad value.
 */
import { MAX_COUNT } from '../generation/api';
import { PROJECTIONS } from '../model/projections';
import { SettingError } from '../model/settingError';

// Upper bounds for counts, so that a typo (1e15 tokens, 2^53 pairs a batch) is refused at once
// instead of running out of memory or for years. Token limits: the longest context of the
// supported Llama-family models (131,072 tokens, Llama 3.1); a run's passes, rounds and batches:
// far past any run this CPU trainer finishes, and past what a few thousand judgments can use.
const MAX_TOKENS = 131072;
const MAX_PASSES = 1000;
const MAX_ROUNDS = 100000;
const MAX_BATCH = 65536;

/** A number setting's type and range. */
export interface NumberFieldSpec {
  kind: 'number';
  /** Values must be greater than this (a rate or scale of 0 would train nothing). */
  above?: number;
  min?: number;
  max?: number;
  integer?: boolean;
  help: string;
}

type FieldSpec =
  | NumberFieldSpec
  | { kind: 'boolean'; help: string }
  | { kind: 'string'; help: string }
  | { kind: 'enum'; values: readonly string[]; help: string };

export type ConfigSpec<T> = { [K in keyof T]-?: FieldSpec };

/** Settings shared by every trainer. */
export interface CommonConfig {
  /** Model folder (Hugging Face layout). */
  modelDir: string;
  /** Preference store (JSONL) to train on; empty when the caller passes pairs directly. */
  dataFile: string;
  seed: number;
  learningRate: number;
  /** LoRA rank and alpha (scale alpha / rank, see failure kind R6). */
  loraRank: number;
  loraAlpha: number;
  /** Comma-separated projections that get LoRA factors, e.g. "q_proj,v_proj". */
  loraTargets: string;
  /** Left-truncate prompts to this many tokens (the end of the prompt is what matters). */
  maxPromptTokens: number;
  /**
   * Tokens of a judgment's suffix (the text after the cursor) kept, cut from the right: the
   * start of the suffix is what says where the completion must end. With a non-empty suffix and
   * a model with FIM tokens, prompts are fill-in-the-middle (up to maxPromptTokens + 3 +
   * maxSuffixTokens tokens); 0 reads no suffix (left-to-right prompts). The same limit cuts the
   * reward model's training pairs and its scoring (saved in its run.json), DPO's pairs and PPO's
   * scoring; the policy samples PPO rollouts from the editor's own prompt layout and budget.
   */
  maxSuffixTokens: number;
  /** Truncate completions to this many tokens when scoring. */
  maxCompletionTokens: number;
  /** Steps between atomic checkpoints (0 = only at the end). */
  checkpointEvery: number;
}

export interface RewardModelConfig extends CommonConfig {
  epochs: number;
  /** Judgments per optimizer step; each brings all its pairs, its candidates scored once. */
  batchSize: number;
  /** Fraction of distinct prompts held out for validation. */
  validationFraction: number;
  /** Stop after this many evaluations without a better validation accuracy. */
  patience: number;
  /** Evaluate every this many optimizer steps (0 = once per epoch). */
  evalEvery: number;
  /** Use per-pair margins when the data has them (Llama 2 style). */
  useMargins: boolean;
  /**
   * Mark where the completion starts with the model's FIM tokens (see `markCompletion` in
   * batch.ts). Measured on the demo's judgments (4 runs, 3 oracles): validation accuracy rose by
   * 0.9 to 4.6 points over unmarked left-to-right rows.
   */
  markCompletion: boolean;
}

export interface PpoConfig extends CommonConfig {
  /** Folder of a trained reward model run (adapter + reward_head.safetensors). */
  rewardModelDir: string;
  /** PPO iterations (rollout + optimisation). */
  iterations: number;
  /** Prompts per rollout batch. */
  promptsPerBatch: number;
  /** Samples per prompt (K). */
  samplesPerPrompt: number;
  /** Sampling temperature; every log-probability is computed at this same temperature. */
  temperature: number;
  maxNewTokens: number;
  /** A completion ends after this many lines (0 = only at a stop token or maxNewTokens). */
  maxLines: number;
  ppoEpochs: number;
  minibatchSize: number;
  clipRange: number;
  clipRangeValue: number;
  valueCoef: number;
  gamma: number;
  lambda: number;
  /** Initial KL coefficient beta. */
  klCoef: number;
  /** Adapt beta toward `targetKl` (Ziegler et al.); false keeps it fixed. */
  adaptiveKl: boolean;
  /** Target per-sequence KL (nats) for the adaptive controller. */
  targetKl: number;
  /** Adaptive gain: beta changes by at most 20% * (sequences per rollout) / klHorizon per rollout. */
  klHorizon: number;
  /** Stop the epoch loop of an iteration when approx KL of a minibatch exceeds this (0 = off). */
  klBudget: number;
  /** Reward subtracted (or set, see convention) when a completion hits maxNewTokens. */
  missingEosPenalty: number;
  missingEosConvention: 'subtract' | 'replace';
  /** Whiten advantages per batch. */
  whitenAdvantages: boolean;
  /**
   * Standardise reward-model scores with the mean and std of the first rollout, fixed for the
   * run, so that klCoef, targetKl and missingEosPenalty do not depend on the RM's arbitrary scale.
   */
  normalizeScores: boolean;
  /**
   * Roll back to the last good adapter when held-out reward drops by more than this: in
   * standard deviations of the first rollout's scores with normalizeScores, else in raw units.
   */
  rollbackRewardDrop: number;
}

export interface DpoConfig extends CommonConfig {
  epochs: number;
  batchSize: number;
  /** Strength of the implicit KL constraint. */
  beta: number;
  validationFraction: number;
  patience: number;
}

const common: ConfigSpec<CommonConfig> = {
  modelDir: { kind: 'string', help: 'model folder (Hugging Face layout)' },
  dataFile: { kind: 'string', help: 'preference store JSONL to train on' },
  // The random streams read a seed's low 32 bits (src/model/random.ts): a larger seed would
  // replay a smaller one's shuffles and sampling under another name.
  seed: { kind: 'number', integer: true, min: 0, max: 2 ** 32 - 1, help: 'random seed' },
  // 0 would run every step and change no parameter.
  learningRate: { kind: 'number', above: 0, max: 1, help: 'AdamW learning rate' },
  loraRank: { kind: 'number', integer: true, min: 1, max: 256, help: 'LoRA rank r' },
  // alpha 0 scales the LoRA update to nothing (the adapter would stay the base model). Usual
  // settings put alpha at r to 2r (a scale of 1 to 2). The scale multiplies every change of the
  // factors on its way into the weights: at 1024 (even at rank 1) one Adam step moves them a
  // thousand times as far as at scale 1, and larger values only overflow float32 (1e30 made
  // PPO's first gradient infinite, 1e308 the reward model's first loss NaN).
  loraAlpha: { kind: 'number', above: 0, max: 1024, help: 'LoRA alpha (scale alpha / r)' },
  loraTargets: { kind: 'string', help: 'comma-separated LoRA target projections' },
  maxPromptTokens: {
    kind: 'number',
    integer: true,
    min: 1,
    max: MAX_TOKENS,
    help: 'prompt tokens kept (left-truncated)',
  },
  maxSuffixTokens: {
    kind: 'number',
    integer: true,
    min: 0,
    max: MAX_TOKENS,
    help: 'suffix tokens kept after the cursor (cut from the right; 0 = suffix not read)',
  },
  maxCompletionTokens: {
    kind: 'number',
    integer: true,
    min: 1,
    max: MAX_TOKENS,
    help: 'completion tokens scored',
  },
  checkpointEvery: { kind: 'number', integer: true, min: 0, help: 'steps between checkpoints' },
};

const COMMON_DEFAULTS: CommonConfig = {
  modelDir: '',
  dataFile: '',
  seed: 0,
  learningRate: 1e-3,
  loraRank: 8,
  loraAlpha: 16,
  loraTargets: 'q_proj,v_proj',
  maxPromptTokens: 96,
  // A quarter of the 128 tokens of prefix and suffix, the share generation gives the suffix
  // when both do not fit (src/generation/prompt.ts).
  maxSuffixTokens: 32,
  maxCompletionTokens: 32,
  // A lost run resumes from its last checkpoint and trains the steps since again. A checkpoint
  // (LoRA factors, their AdamW moments, a head) is small beside a step's work, and only the
  // newest two are kept (src/rlhf/checkpoint.ts), so a short interval costs little disk or time.
  checkpointEvery: 5,
};

// The pair trainers' (reward model and DPO) passes and early stopping, read alike.
const EPOCHS_FIELD: FieldSpec = {
  kind: 'number',
  integer: true,
  min: 1,
  max: MAX_PASSES,
  help: 'passes over the training pairs',
};
const PATIENCE_FIELD: FieldSpec = {
  kind: 'number',
  integer: true,
  min: 1,
  max: MAX_ROUNDS,
  help: 'evaluations without improvement',
};

export const RM_SPEC: ConfigSpec<RewardModelConfig> = {
  ...common,
  epochs: EPOCHS_FIELD,
  batchSize: {
    kind: 'number',
    integer: true,
    min: 1,
    max: MAX_BATCH,
    help: 'judgments (all their pairs) per optimizer step',
  },
  validationFraction: { kind: 'number', min: 0.01, max: 0.9, help: 'held-out prompt fraction' },
  patience: PATIENCE_FIELD,
  evalEvery: {
    kind: 'number',
    integer: true,
    min: 0,
    help: 'steps between evaluations (0 = per epoch)',
  },
  useMargins: { kind: 'boolean', help: 'use per-pair margins' },
  markCompletion: {
    kind: 'boolean',
    help: "mark the completion's start with the model's FIM tokens when no suffix is read",
  },
};

export const RM_DEFAULTS: RewardModelConfig = {
  ...COMMON_DEFAULTS,
  epochs: 3,
  batchSize: 8,
  validationFraction: 0.2,
  patience: 3,
  evalEvery: 0,
  useMargins: false,
  markCompletion: true,
};

/** How samples are drawn, shared by PPO's rollouts and the promotion gate. */
export const SAMPLING_SPEC: ConfigSpec<{
  samplesPerPrompt: number;
  temperature: number;
  maxNewTokens: number;
  maxLines: number;
}> = {
  // The K samples of a prompt are one generator request, which takes at most MAX_COUNT.
  samplesPerPrompt: {
    kind: 'number',
    integer: true,
    min: 1,
    max: MAX_COUNT,
    help: 'samples per prompt (K)',
  },
  temperature: { kind: 'number', min: 0.05, max: 5, help: 'sampling and log-prob temperature' },
  maxNewTokens: {
    kind: 'number',
    integer: true,
    min: 1,
    max: MAX_TOKENS,
    help: 'generated tokens per sample',
  },
  maxLines: { kind: 'number', integer: true, min: 0, help: 'lines per sample (0 = no limit)' },
};

export const PPO_SPEC: ConfigSpec<PpoConfig> = {
  ...common,
  rewardModelDir: { kind: 'string', help: 'trained reward model run folder' },
  iterations: {
    kind: 'number',
    integer: true,
    min: 1,
    max: MAX_ROUNDS,
    help: 'rollout + optimisation rounds',
  },
  promptsPerBatch: {
    kind: 'number',
    integer: true,
    min: 1,
    max: MAX_BATCH,
    help: 'prompts per rollout',
  },
  ...SAMPLING_SPEC,
  ppoEpochs: {
    kind: 'number',
    integer: true,
    min: 1,
    max: MAX_PASSES,
    help: 'optimisation epochs per rollout',
  },
  minibatchSize: {
    kind: 'number',
    integer: true,
    min: 1,
    max: MAX_BATCH,
    help: 'sequences per minibatch',
  },
  // A clip range of 0 clips to the rollout's own ratio (or value), so the clipped objective lets
  // nothing move past it: the update could only undo itself.
  clipRange: { kind: 'number', above: 0, max: 1, help: 'policy ratio clip epsilon' },
  clipRangeValue: { kind: 'number', above: 0, help: 'value clip around old values' },
  // PPO implementations weight the value loss 0.1 to 1 (TRL 0.1, Schulman et al. 2017 1). The
  // gradient of policy + valueCoef x value loss is clipped as a whole, so at 100 the value term
  // takes the whole clipped step and the policy stops learning; larger values only overflow.
  valueCoef: { kind: 'number', min: 0, max: 100, help: 'value loss weight' },
  gamma: { kind: 'number', min: 0, max: 1, help: 'discount' },
  lambda: { kind: 'number', min: 0, max: 1, help: 'GAE lambda' },
  // Rewards are standardised scores (std 1, see normalizeScores): at beta 100, 0.01 nats of KL
  // already costs as much as the whole spread of scores, so the policy cannot move; larger
  // values only overflow (1e308 made the loss infinite at iteration 2). The adaptive controller
  // may still move beta past 100 during a run.
  klCoef: { kind: 'number', min: 0, max: 100, help: 'initial KL coefficient beta' },
  adaptiveKl: { kind: 'boolean', help: 'adapt beta toward targetKl' },
  // Also sets the rollback's KL limit (4 x targetKl), so 0 would roll back every iteration whose
  // policy moved, even with a fixed KL coefficient.
  targetKl: { kind: 'number', above: 0, help: 'target KL per sequence (nats)' },
  klHorizon: { kind: 'number', min: 1, help: 'adaptive KL horizon (sequences)' },
  klBudget: { kind: 'number', min: 0, help: 'approx-KL early stop per iteration (0 = off)' },
  // In standardised scores (std 1, see normalizeScores) a penalty of 100 already outweighs any
  // score difference a hundredfold; larger values only overflow (1e308 made the loss NaN).
  missingEosPenalty: {
    kind: 'number',
    min: 0,
    max: 100,
    help: 'penalty for hitting maxNewTokens',
  },
  missingEosConvention: { kind: 'enum', values: ['subtract', 'replace'], help: 'penalty form' },
  whitenAdvantages: { kind: 'boolean', help: 'whiten advantages per batch' },
  normalizeScores: {
    kind: 'boolean',
    help: "standardise RM scores by the first rollout's mean and std",
  },
  rollbackRewardDrop: {
    kind: 'number',
    min: 0,
    help: 'held-out reward drop that triggers rollback (in score std with normalizeScores)',
  },
};

export const PPO_DEFAULTS: PpoConfig = {
  ...COMMON_DEFAULTS,
  learningRate: 3e-4,
  rewardModelDir: '',
  iterations: 20,
  // An iteration (rollouts, updates, held-out reward) takes far longer than writing its
  // checkpoint: a lost run loses at most one.
  checkpointEvery: 1,
  promptsPerBatch: 8,
  samplesPerPrompt: 2,
  temperature: 0.9,
  maxNewTokens: 24,
  maxLines: 1,
  ppoEpochs: 2,
  minibatchSize: 8,
  clipRange: 0.2,
  clipRangeValue: 0.2,
  valueCoef: 0.1,
  gamma: 1,
  lambda: 0.95,
  klCoef: 0.05,
  adaptiveKl: true,
  targetKl: 6,
  // K_beta = nSteps / horizon per rollout: 16 sequences / 160 = 0.1, the gain Ziegler et al.
  // (2019) use. TRL's 10000 assumes rollouts of hundreds of sequences; with 16 it moves beta by
  // at most 0.03% per rollout, so the "adaptive" coefficient would stay fixed for a whole run.
  klHorizon: 160,
  klBudget: 0.5,
  missingEosPenalty: 1,
  missingEosConvention: 'subtract',
  whitenAdvantages: true,
  normalizeScores: true,
  rollbackRewardDrop: 1,
};

export const DPO_SPEC: ConfigSpec<DpoConfig> = {
  ...common,
  epochs: EPOCHS_FIELD,
  batchSize: {
    kind: 'number',
    integer: true,
    min: 1,
    max: MAX_BATCH,
    help: 'pairs per optimizer step',
  },
  // beta 0 makes the DPO loss log 2 whatever the policy does: no gradient. The loss is
  // -log sigmoid(beta x margin of log-ratios); published runs use 0.01 to about 1, and at 100 a
  // margin of 0.05 nats already saturates the sigmoid (sigmoid(5) = 0.993), so a larger beta
  // only makes the loss a test of the margin's sign (1e308 made the first loss NaN).
  beta: { kind: 'number', above: 0, max: 100, help: 'DPO beta' },
  validationFraction: { kind: 'number', min: 0.01, max: 0.9, help: 'held-out prompt fraction' },
  patience: PATIENCE_FIELD,
};

export const DPO_DEFAULTS: DpoConfig = {
  ...COMMON_DEFAULTS,
  learningRate: 5e-4,
  epochs: 2,
  batchSize: 8,
  beta: 0.1,
  validationFraction: 0.2,
  patience: 2,
};

/**
 * Keys "Train on my judgments" sets itself in every run (src/extension/trainingSettings.ts says
 * why), which codeRlhf.trainingSettings therefore cannot set.
 */
export const EDITOR_RUN_KEYS = ['modelDir', 'dataFile', 'rewardModelDir', 'targetKl'] as const;

/**
 * Whether codeRlhf.trainingSettings can put back every value of `restore` (a refused resume's
 * checkpoint values, see ResumeRefusedError): undefined (the data or a folder's contents
 * changed) or a key of EDITOR_RUN_KEYS cannot be, so such a run can only start fresh.
 */
export function editorCanRestore(
  restore: Readonly<Record<string, unknown>> | undefined,
): restore is Readonly<Record<string, unknown>> {
  if (!restore) return false;
  return !Object.keys(restore).some((key) => (EDITOR_RUN_KEYS as readonly string[]).includes(key));
}

/**
 * A bad trainer config: an unknown key, or a value of the wrong type or out of range. A
 * SettingError, so error reports print its message (which names the key, the value and what is
 * allowed) without a stack trace.
 */
export class ConfigError extends SettingError {
  override name = 'ConfigError';
}

/** What a number field allows, e.g. "> 0 and <= 1". */
function describeRange(field: { above?: number; min?: number; max?: number }): string {
  const bounds = [
    field.above !== undefined ? `> ${field.above}` : '',
    field.min !== undefined ? `>= ${field.min}` : '',
    field.max !== undefined ? `<= ${field.max}` : '',
  ];
  return bounds.filter((b) => b !== '').join(' and ');
}

/**
 * What `field` allows when `value` is outside it (e.g. "an integer >= 1 and <= 64"), else
 * undefined. Config keys and the CLI's own number flags share it, so both say the same.
 */
export function numberOutOfRange(value: number, field: NumberFieldSpec): string | undefined {
  if (!Number.isFinite(value)) return 'a finite number';
  if (field.integer && !Number.isInteger(value)) return `an integer ${describeRange(field)}`.trim();
  if (
    (field.above !== undefined && !(value > field.above)) ||
    (field.min !== undefined && value < field.min) ||
    (field.max !== undefined && value > field.max)
  ) {
    return describeRange(field);
  }
  return undefined;
}

/** Merges `input` over `defaults`, checking every key against `spec`. */
export function parseConfig<T extends object>(
  input: Record<string, unknown>,
  spec: ConfigSpec<T>,
  defaults: T,
  where = 'config',
): T {
  const out = { ...defaults } as Record<string, unknown>;
  const fields = spec as Record<string, FieldSpec>;
  for (const [key, value] of Object.entries(input)) {
    // Own keys only: "constructor" or "toString" would otherwise find Object's methods, and a
    // JSON "__proto__" key would then be assigned as the result's prototype.
    const field = Object.prototype.hasOwnProperty.call(fields, key) ? fields[key] : undefined;
    if (!field) {
      throw new ConfigError(
        `${where}: unknown key "${key}"; allowed: ${Object.keys(fields).sort().join(', ')}`,
      );
    }
    // String(), not JSON, for a number: JSON writes the Infinity a JSON file's 1e400 parses to
    // as null, and the message would blame a null that is not in the file.
    const shown = typeof value === 'number' ? String(value) : JSON.stringify(value);
    const bad = (allowed: string) =>
      new ConfigError(`${where}: "${key}" is ${shown}; allowed: ${allowed}`);
    switch (field.kind) {
      case 'number': {
        if (typeof value !== 'number') throw bad('a finite number');
        const allowed = numberOutOfRange(value, field);
        if (allowed !== undefined) throw bad(allowed);
        break;
      }
      case 'boolean':
        if (typeof value !== 'boolean') throw bad('true or false');
        break;
      case 'string':
        if (typeof value !== 'string') throw bad('a string');
        break;
      case 'enum':
        if (typeof value !== 'string' || !field.values.includes(value)) {
          throw bad(field.values.map((v) => JSON.stringify(v)).join(', '));
        }
        break;
    }
    out[key] = value;
  }
  return out as T;
}

/** "--key value" help lines for the CLI. */
export function describeConfig<T extends object>(spec: ConfigSpec<T>, defaults: T): string[] {
  return Object.entries(spec as Record<string, FieldSpec>).map(
    ([key, field]) =>
      `  --${key} <${field.kind === 'enum' ? field.values.join('|') : field.kind}>  ${field.help} (default ${JSON.stringify((defaults as Record<string, unknown>)[key])})`,
  );
}

/** Parses the comma-separated LoRA target list, naming a bad entry. */
export function parseLoraTargets(
  value: string,
  allowed: readonly string[] = PROJECTIONS,
): string[] {
  const targets = value
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
  if (targets.length === 0)
    throw new ConfigError('"loraTargets" is empty; name at least one projection');
  for (const t of targets) {
    if (!allowed.includes(t)) {
      throw new ConfigError(
        `"loraTargets" has ${JSON.stringify(t)}; allowed: ${allowed.join(', ')}`,
      );
    }
  }
  return targets;
}
