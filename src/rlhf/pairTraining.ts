/**
 * What the two trainers on preference pairs (the reward model and DPO) share: their options, the
 * start of a run (LoRA targets, resume check, split by prompt) and the checkpoint they write, so
 * that a resume and the held-out prompts mean the same for both.
 */
import * as path from 'path';
import type { LoadedModel } from '../model/loader';
import { PROJECTIONS, type Projection } from '../model/weights';
import { loadLatestCheckpoint, writeCheckpoint, type LoadedCheckpoint } from './checkpoint';
import { parseLoraTargets, type CommonConfig } from './config';
import { packMoments, type ParameterOptimizer } from './optimizer';
import type { TrainingPair } from './preferences';
import {
  checkResume,
  contentDigests,
  dataDigest,
  type ContentDigests,
  type DataDigest,
  type ResumeRules,
} from './resume';
import { splitByPrompt, type Split } from './split';
import { packTensors } from './tensorPack';
import type { TrainerContext } from './trainerContext';

/** The keys a pair trainer's config adds to the common ones that this module reads. */
export type PairTrainerConfig = CommonConfig & { validationFraction: number };

export interface PairTrainerOptions<C extends PairTrainerConfig> {
  model: LoadedModel;
  pairs: readonly TrainingPair[];
  config: C;
  runDir: string;
  /** Continue from the last checkpoint in `runDir/checkpoints/<stage folder>`. */
  resume: boolean;
  ctx: TrainerContext;
  threads?: number;
}

export interface PairRunStart {
  targets: Projection[];
  checkpointsDir: string;
  /** The digest of the pairs a checkpoint records, so a resume on other data is refused. */
  data: DataDigest;
  /** The digests of the folders the config names (the model's), recorded with `data`. */
  contents: ContentDigests;
  /** The checkpoint to resume from, already checked; undefined when starting fresh. */
  ck: LoadedCheckpoint | undefined;
  split: Split<TrainingPair>;
}

/**
 * The start of a pair trainer's run, before any work (encoding the pairs, DPO's reference
 * log-probs): with `resume`, the last checkpoint under `runDir/checkpoints/<stageDir>` is loaded
 * and checked against the config, data and model weights by `rules` (see resume.ts); then the
 * pairs are split by prompt with the config's seed and fraction, as the runners recompute the
 * held-out prompts.
 */
export function startPairRun<C extends PairTrainerConfig>(
  options: PairTrainerOptions<C>,
  stageDir: string,
  rules: ResumeRules<C>,
): PairRunStart {
  const { config, ctx } = options;
  const targets = parseLoraTargets(config.loraTargets, PROJECTIONS) as Projection[];
  const checkpointsDir = path.join(options.runDir, 'checkpoints', stageDir);
  const data = dataDigest(options.pairs, options.pairs.length);
  const contents = contentDigests(config, rules);
  const ck = options.resume ? loadLatestCheckpoint(checkpointsDir) : undefined;
  if (ck) checkResume(ck, config, rules, data, contents, (message) => ctx.log('warn', message));
  const split = splitByPrompt(
    options.pairs,
    (p) => p.prompt,
    config.validationFraction,
    config.seed,
  );
  if (split.train.length === 0)
    throw new Error(`${rules.trainer}: no training pairs after the split`);
  return { targets, checkpointsDir, data, contents, ck, split };
}

/** A copy of every trainable parameter, by name. */
export function copyParams(params: Map<string, Float32Array>): Record<string, Float32Array> {
  return Object.fromEntries([...params].map(([k, v]) => [k, v.slice()]));
}

/**
 * Writes a pair trainer's checkpoint at `step` and reports it: the parameters, the optimizer's
 * moments and the best parameters so far, with the step counters and then `state` (the trainer's
 * losses, early stopping and resume record, in the order its manifest has always had them).
 */
export function savePairCheckpoint(
  checkpointsDir: string,
  step: number,
  optimizer: ParameterOptimizer,
  params: Map<string, Float32Array>,
  best: Record<string, Float32Array>,
  state: Record<string, unknown>,
  ctx: TrainerContext,
): void {
  const moments = optimizer.state();
  const dir = writeCheckpoint(
    checkpointsDir,
    step,
    {
      'params.bin': packTensors(copyParams(params)),
      'optimizer.bin': packMoments(moments),
      'best.bin': packTensors(best),
    },
    { step, optimizerStep: moments.step, ...state },
  );
  ctx.checkpoint(step, dir);
}
