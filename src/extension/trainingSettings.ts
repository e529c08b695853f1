/**
 * `codeRlhf.trainingSettings`: trainer config overrides for the runs "Train on my judgments"
 * starts, one optional object per trainer (`rm`, `ppo`, `dpo`). Each is checked with the
 * trainer's own parser (src/rlhf/config.ts) before a run folder is created, so a typo or an
 * out-of-range value is refused in the editor, naming the setting key, the value and what is
 * allowed, rather than failing a job minutes into the run.
 */
import {
  DPO_DEFAULTS,
  DPO_SPEC,
  EDITOR_RUN_KEYS,
  PPO_DEFAULTS,
  PPO_SPEC,
  RM_DEFAULTS,
  RM_SPEC,
  parseConfig,
  parseLoraTargets,
} from '../rlhf/config';
import { KL_BUDGET } from './trainPipeline';

export const TRAINING_SETTINGS_KEY = 'codeRlhf.trainingSettings';

export type TrainerKind = 'rm' | 'ppo' | 'dpo';

/** Validated overrides per trainer, as given (only the keys the user set). */
export type TrainingSettings = Partial<Record<TrainerKind, Record<string, unknown>>>;

/** Each trainer's config spec and its parser, which also checks the LoRA target list. */
const TRAINERS: Record<
  TrainerKind,
  { keys: readonly string[]; parse: (input: Record<string, unknown>, where: string) => unknown }
> = {
  rm: { keys: Object.keys(RM_SPEC), parse: (i, w) => parseConfig(i, RM_SPEC, RM_DEFAULTS, w) },
  ppo: { keys: Object.keys(PPO_SPEC), parse: (i, w) => parseConfig(i, PPO_SPEC, PPO_DEFAULTS, w) },
  dpo: { keys: Object.keys(DPO_SPEC), parse: (i, w) => parseConfig(i, DPO_SPEC, DPO_DEFAULTS, w) },
};

const own = (table: object, key: string) => Object.prototype.hasOwnProperty.call(table, key);

/**
 * Keys the pipeline sets itself, with why: a run trains the model in use on its own snapshot of
 * the judgments, PPO scores with the reward model of the same run, and PPO's KL target is the
 * promotion gate's KL budget (so the controller aims where the gate measures).
 */
const PIPELINE_KEYS: Record<(typeof EDITOR_RUN_KEYS)[number], string> = {
  modelDir: 'the run trains the model in use (codeRlhf.modelPath)',
  dataFile: "the run trains on its own snapshot of the active preference store's judgments",
  rewardModelDir: 'PPO is scored by the reward model the same run trained',
  targetKl: `PPO's KL target is the promotion gate's KL budget (${KL_BUDGET} nats)`,
};

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const show = (value: unknown) => JSON.stringify(value) ?? String(value);

/**
 * Reads `codeRlhf.trainingSettings` (undefined: none). A bad value is a problem that names the
 * key path (`codeRlhf.trainingSettings.ppo: "iterations" is 0; allowed: an integer >= 1`); the
 * run must not start with it, since training with other settings than the user asked for would
 * waste the run.
 */
export function readTrainingSettings(
  value: unknown,
): { settings: TrainingSettings } | { problem: string } {
  if (value === undefined || value === null) return { settings: {} };
  if (!isObject(value)) {
    return {
      problem:
        `${TRAINING_SETTINGS_KEY} is ${show(value)}; allowed: an object with optional "rm", ` +
        '"ppo" and "dpo" objects of trainer config keys',
    };
  }
  const settings: TrainingSettings = {};
  for (const [kind, overrides] of Object.entries(value)) {
    // Own keys only: "toString" or "constructor" would otherwise be found on Object.prototype.
    if (!own(TRAINERS, kind)) {
      return {
        problem: `${TRAINING_SETTINGS_KEY}: unknown key "${kind}"; allowed: rm, ppo, dpo`,
      };
    }
    const trainer = TRAINERS[kind as TrainerKind];
    const where = `${TRAINING_SETTINGS_KEY}.${kind}`;
    if (!isObject(overrides)) {
      return { problem: `${where} is ${show(overrides)}; allowed: an object of config keys` };
    }
    for (const key of Object.keys(overrides)) {
      if (!trainer.keys.includes(key)) {
        const allowed = trainer.keys.filter((k) => !own(PIPELINE_KEYS, k)).sort();
        return { problem: `${where}: unknown key "${key}"; allowed: ${allowed.join(', ')}` };
      }
      if (own(PIPELINE_KEYS, key)) {
        const why = PIPELINE_KEYS[key as keyof typeof PIPELINE_KEYS];
        return { problem: `${where}: "${key}" cannot be set here; ${why}` };
      }
    }
    try {
      trainer.parse(overrides, where);
      // The trainers check the list only when they build the adapter, after the stages before
      // them trained (PPO's after the reward model's): check it before anything runs.
      if (overrides.loraTargets !== undefined) {
        parseLoraTargets(overrides.loraTargets as string);
      }
    } catch (error) {
      const message = (error as Error).message;
      return { problem: message.startsWith(where) ? message : `${where}: ${message}` };
    }
    settings[kind as TrainerKind] = { ...overrides };
  }
  return { settings };
}
