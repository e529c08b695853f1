/**
 * Small setups the trainer tests share on the tiny Llama fixture: toy preference pairs, a pair
 * trainer config that takes a few steps, and a PPO config, scorer and options that run in seconds.
 */
import * as path from 'path';
import type { LoadedModel } from '../../src/model/loader';
import { initLora } from '../../src/model/lora';
import { PPO_DEFAULTS, type PpoConfig } from '../../src/rlhf/config';
import type { trainPpo } from '../../src/rlhf/ppo';
import type { TrainingPair } from '../../src/rlhf/preferences';
import { RewardScorer } from '../../src/rlhf/rewardModel';
import { directContext } from '../../src/rlhf/trainerContext';

export const TINY_LLAMA_DIR = path.join(__dirname, '../fixtures/model/tiny-llama');

/** How toy pairs vary with their index `i`; by default as in {@link toyPairs}. */
export interface ToyPairShape {
  /** How many distinct `let vN = ` prompts (N is i modulo this). */
  prompts?: number;
  chosen?: (i: number) => string;
  /** Rejected completions, taken in turn. */
  rejected?: readonly string[];
  suffix?: (i: number) => string;
}

/**
 * `count` pairs preferring a number (`${i};\n`) over an open bracket on `let vN = ` prompts
 * (8 of them, rejecting `((` and `[[{` in turn), unless `shape` says otherwise.
 */
export function toyPairs(count: number, shape: ToyPairShape = {}): TrainingPair[] {
  const prompts = shape.prompts ?? 8;
  const rejected = shape.rejected ?? ['((', '[[{'];
  return Array.from({ length: count }, (_, i) => ({
    recordId: `r${i}`,
    prompt: `let v${i % prompts} = `,
    suffix: shape.suffix?.(i) ?? '',
    chosen: shape.chosen?.(i) ?? `${i};\n`,
    rejected: rejected[i % rejected.length],
    target: 1,
    margin: 0,
  }));
}

/**
 * Reward model or DPO settings that train 16 toy pairs in a few steps of 4, with a checkpoint
 * after each; spread over the trainer's defaults and set `epochs`.
 */
export const SMALL_PAIR_TRAINER = Object.freeze({
  modelDir: TINY_LLAMA_DIR,
  batchSize: 4,
  loraRank: 2,
  loraAlpha: 4,
  maxPromptTokens: 8,
  maxCompletionTokens: 4,
  validationFraction: 0.25,
  checkpointEvery: 1,
});

/** One PPO iteration of 2 prompts x 2 samples of 4 tokens, checkpointed; `over` changes any. */
export function tinyPpoConfig(over: Partial<PpoConfig> = {}): PpoConfig {
  return {
    ...PPO_DEFAULTS,
    modelDir: TINY_LLAMA_DIR,
    iterations: 1,
    checkpointEvery: 1,
    promptsPerBatch: 2,
    samplesPerPrompt: 2,
    maxNewTokens: 4,
    minibatchSize: 4,
    ppoEpochs: 1,
    loraRank: 2,
    loraAlpha: 4,
    ...over,
  };
}

/**
 * A fixed reward: the linear read-out `weight` (one per hidden unit) of the last hidden state
 * under a fresh rank-2 q_proj adapter, which leaves the base model's states as they are.
 */
export async function linearScorer(
  model: LoadedModel,
  weight: Float32Array,
): Promise<RewardScorer> {
  const adapter = initLora(model, { rank: 2, alpha: 2, targets: ['q_proj'], useRslora: false }, 5);
  return RewardScorer.create(model, adapter, { weight, bias: new Float32Array(1) });
}

type PpoOptions = Parameters<typeof trainPpo>[0];

/**
 * trainPpo's options: a fresh start on three short prompts, no held-out set, a tiny config,
 * unless `given` says otherwise.
 */
export function ppoOptions(
  given: Pick<PpoOptions, 'model' | 'generator' | 'rewardScorer' | 'runDir'> & Partial<PpoOptions>,
): PpoOptions {
  return {
    prompts: ['let a = ', 'return ', 'x += '],
    heldOutPrompts: [],
    config: tinyPpoConfig(),
    resume: false,
    ctx: directContext(),
    ...given,
  };
}
