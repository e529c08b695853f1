/**
 * The job runners behind `train/start`: each trainer reads the preference store named in its
 * config, builds pairs or prompts, and runs the trainer from src/rlhf; "gate" runs the promotion
 * gate on a tuned adapter. Used by the model host and the CLI alike. Config keys are checked
 * against the job's typed config (unknown keys fail).
 *
 * Every trainer writes the prompts its split held out (`held-out-prompts.json`) next to its
 * output, so the gate compares on prompts that no stage trained on. The splits are recomputed
 * here with the trainer's own function, seed and fraction, so they are the trainer's exactly.
 */
import * as path from 'path';
import { isEvaluationRecord } from '../data/blindAb';
import { openStore } from '../data/store';
import type { PreferenceRecord } from '../protocol/records';
import { createGenerator } from '../generation';
import { loadModel } from '../model/loader';
import { ModelRuntime } from '../model/runtime';
import {
  DPO_DEFAULTS,
  DPO_SPEC,
  PPO_DEFAULTS,
  PPO_SPEC,
  RM_DEFAULTS,
  RM_SPEC,
  editorCanRestore,
  parseConfig,
} from '../rlhf/config';
import {
  assertCheckpointsFolderFree,
  removeUnfinishedCheckpoints,
  type RunFolderAdvice,
} from '../rlhf/checkpoint';
import { DPO_DIR, trainDpo } from '../rlhf/dpo';
import {
  ADAPTER_FOLDER,
  MODEL_FOLDER,
  PREFERENCE_STORE,
  REWARD_MODEL_FOLDER,
  assertInputPath,
} from '../rlhf/inputPaths';
import type { PairTrainerConfig, PairTrainerOptions } from '../rlhf/pairTraining';
import { POLICY_DIR, trainPpo } from '../rlhf/ppo';
import { pairsFromRecords, type TrainingPair } from '../rlhf/preferences';
import { contextKey, type PromptContext } from '../rlhf/promptContext';
import {
  heldOutFields,
  parseGateConfig,
  runPromotionGate,
  writeHeldOutPrompts,
} from '../rlhf/promotionGate';
import { warnIfRewardLimitsUnknown } from '../rlhf/rewardLimits';
import { REWARD_MODEL_DIR, RewardScorer, trainRewardModel } from '../rlhf/rewardModel';
import { ResumeRefusedError } from '../rlhf/resume';
import { lockRunFolder, prepareRunFolder } from '../rlhf/runFolder';
import { splitByPrompt } from '../rlhf/split';
import type { TrainingJobContext, TrainingJobResult, TrainingRunners } from './trainingHandlers';

async function readPairs(dataFile: string, ctx: TrainingJobContext) {
  if (!dataFile)
    throw new Error('config "dataFile" is empty: name the preference store (JSONL) to train on');
  const records = await (await openStore(dataFile)).readAll();
  const summary = pairsFromRecords(records);
  ctx.log(
    'info',
    `${dataFile}: ${records.length} records -> ${summary.strictPairs} preference pairs, ` +
      `${summary.tiePairs} ties, ${summary.degenerate} identical pairs dropped, ${summary.unusableRecords} records without pairs, ` +
      `${summary.evaluationRecords} blind A/B evaluation judgments left out`,
  );
  if (summary.pairs.length === 0)
    throw new Error(`${dataFile}: no training pairs (judge some comparisons first)`);
  return { records, summary };
}

/** What each path key of a job's config names, and so must be there before the job starts. */
const INPUT_PATHS = {
  modelDir: { kind: 'folder', expected: MODEL_FOLDER, holds: 'config.json' },
  dataFile: { kind: 'file', expected: PREFERENCE_STORE },
  rewardModelDir: { kind: 'folder', expected: REWARD_MODEL_FOLDER },
  adapterDir: { kind: 'folder', expected: ADAPTER_FOLDER, holds: 'adapter_config.json' },
  baselineAdapterDir: { kind: 'folder', expected: ADAPTER_FOLDER, holds: 'adapter_config.json' },
} as const;

/**
 * Refuses a job whose config names an input file or folder that is not there (or is of the
 * wrong kind, or cannot be read), before the run folder is made or the model loads: a missing
 * store would otherwise read as an empty one ("no training pairs"). Empty values are left to
 * the checks that say what an empty key means for that job.
 */
function assertInputPaths(config: Partial<Record<keyof typeof INPUT_PATHS, string>>): void {
  for (const [key, input] of Object.entries(INPUT_PATHS)) {
    const target = config[key as keyof typeof INPUT_PATHS];
    if (!target) continue;
    assertInputPath({ label: `config "${key}":`, target, ...input });
  }
}

/**
 * The distinct contexts PPO samples from: the text before and after the cursor of every
 * judgment, so the policy completes them as the developer's request was completed
 * (fill-in-the-middle when there is a suffix); except conversational imports and blind A/B
 * evaluation judgments (the prompts an adapter is measured on are not trained on).
 */
export function ppoPrompts(records: readonly PreferenceRecord[]): PromptContext[] {
  return distinctContexts(
    records.flatMap((r) =>
      r.type === 'judgment' && !r.prompt.messages && !isEvaluationRecord(r)
        ? [{ prompt: r.prompt.prefix, suffix: r.prompt.suffix }]
        : [],
    ),
  );
}

/**
 * The contexts `splitByPrompt` held out of `pairs` (as the reward model and DPO split them:
 * grouped by the text before the cursor, so no held-out context shares its prefix with a
 * trained one; see `splitByPrompt`), each once, as `held-out-prompts.json` fields.
 */
function heldOutPairPrompts(
  pairs: readonly TrainingPair[],
  validationFraction: number,
  seed: number,
) {
  const split = splitByPrompt(pairs, (p) => p.prompt, validationFraction, seed);
  return heldOutFields(distinctContexts(split.validation));
}

/**
 * What the job runners' refusals tell the user to do about a run folder, in the caller's terms:
 * the CLI names its flags; the editor names its command, its "Start fresh" choice and the
 * codeRlhf.trainingSettings setting.
 */
export interface RunnerAdvice extends RunFolderAdvice {
  /** Another run holds the folder's lock. */
  busy: string;
  /**
   * A trainer's refusal to resume (which names config keys only, see ResumeRefusedError) as
   * the caller words it: how to resume with the checkpoint's values `refusal.restore`, or to
   * start afresh. `trainer` is the job's kind.
   */
  resume?: (refusal: ResumeRefusedError, trainer: 'rm' | 'ppo' | 'dpo') => string;
}

/** A config value as a command-line argument, quoted when the shell would split or expand it. */
function cliValue(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** The CLI's advice: its flags `--resume` and `--run-dir`, and a flag per config key. */
export const CLI_ADVICE: RunnerAdvice = {
  fresh: 'pass --resume to continue from them, or choose a new --run-dir',
  noPointer: (pointer) =>
    `to resume from one, write its name into ${pointer} and pass --resume; ` +
    'or choose a new --run-dir',
  busy: 'wait for it to end, or choose another --run-dir',
  resume: (refusal) => {
    const flags = Object.entries(refusal.restore ?? {}).map(
      ([key, v]) => `--${key} ${cliValue(v)}`,
    );
    return flags.length > 0
      ? `${refusal.message}. On the command line: --resume ${flags.join(' ')}, or a new --run-dir`
      : `${refusal.message}. On the command line: a new --run-dir`;
  },
};

const NEW_EDITOR_RUN =
  'run "Train on my judgments" again and choose "Start fresh", which starts in a new folder ' +
  '(this one is left as it is)';

export const EDITOR_ADVICE: RunnerAdvice = {
  fresh: NEW_EDITOR_RUN,
  noPointer: () => NEW_EDITOR_RUN,
  busy: `wait for that run to end, or ${NEW_EDITOR_RUN}`,
  // The editor resumes a lost run with the current codeRlhf.trainingSettings (editorRun.ts): the
  // trainer's own advice (its config keys, another run folder) is replaced by the setting's
  // values and the "Start fresh" choice, said once.
  resume: (refusal, trainer) => {
    const { reason, restore } = refusal;
    if (!editorCanRestore(restore)) {
      const why = restore
        ? `${Object.keys(restore).join(', ')} ${Object.keys(restore).length === 1 ? 'is' : 'are'} set by the run itself`
        : 'what changed is not a setting';
      return (
        `${reason}. This run cannot be resumed (${why}): choose "Start fresh", which starts a ` +
        'new run in a new folder (this one is left as it is).'
      );
    }
    return (
      `${reason}. To resume it, put these values back into codeRlhf.trainingSettings: ` +
      `${JSON.stringify({ [trainer]: restore })}; or choose "Start fresh", which starts a new ` +
      'run in a new folder (this one is left as it is).'
    );
  },
};

/**
 * Runs `work` in the job's run folder, before any of its work: checks the folder (see
 * prepareRunFolder: a folder that can be written, its checkpoint and output folders not files),
 * takes its lock for the whole job (see lockRunFolder), refuses a job whose trainer would
 * write beside checkpoints it did not write and prune them (see assertCheckpointsFolderFree),
 * and removes the unfinished checkpoints of a run killed in that folder (see
 * removeUnfinishedCheckpoints). `stageDir` is the trainer's checkpoint folder under
 * `<runDir>/checkpoints/` and its output folder under `<runDir>`, as the trainer names it;
 * undefined for the gate. The lock is released however the job ends: done, failed or cancelled.
 */
async function inRunFolder(
  ctx: TrainingJobContext,
  advice: RunnerAdvice,
  stageDir: string | undefined,
  work: () => Promise<TrainingJobResult>,
): Promise<TrainingJobResult> {
  const { runDir, resume } = ctx.command;
  prepareRunFolder(runDir, stageDir);
  const lock = lockRunFolder(runDir, advice.busy, (message) => ctx.log('warn', message));
  try {
    if (stageDir) {
      const checkpointsDir = path.join(runDir, 'checkpoints', stageDir);
      assertCheckpointsFolderFree(checkpointsDir, resume, advice);
      removeUnfinishedCheckpoints(checkpointsDir, (message) => ctx.log('warn', message));
    }
    return await work();
  } catch (error) {
    if (error instanceof ResumeRefusedError && advice.resume && ctx.command.kind !== 'gate') {
      const message = advice.resume(error, ctx.command.kind);
      throw new ResumeRefusedError(message, error.restore, error.reason);
    }
    throw error;
  } finally {
    lock.release();
  }
}

/** What the job runner reads of a pair trainer's result. */
interface PairTrainerOutcome {
  outputDir: string;
  earlyStopped: boolean;
}

/** A trainer on preference pairs (the reward model or DPO), as its job runner calls it. */
interface PairTrainerJob<C extends PairTrainerConfig, R extends PairTrainerOutcome> {
  /** The stage its held-out prompts are written under ("rm", "dpo"). */
  stage: string;
  /** The trainer's checkpoint and output folder name (see inRunFolder). */
  stageDir: string;
  config: C;
  train: (options: PairTrainerOptions<C>) => Promise<R>;
  /** The job's summary numbers from the trainer's result. */
  summary: (result: R) => Record<string, number>;
}

/**
 * Runs a pair trainer in the job's run folder: reads the pairs of its store, trains, and writes
 * the prompts its split held out beside its output (recomputed with its seed and fraction).
 */
async function runPairTrainer<C extends PairTrainerConfig, R extends PairTrainerOutcome>(
  ctx: TrainingJobContext,
  advice: RunnerAdvice,
  threads: number,
  job: PairTrainerJob<C, R>,
): Promise<TrainingJobResult> {
  const { config } = job;
  assertInputPaths(config);
  return inRunFolder(ctx, advice, job.stageDir, async () => {
    const model = loadModel(config.modelDir);
    const { summary } = await readPairs(config.dataFile, ctx);
    const result = await job.train({
      model,
      pairs: summary.pairs,
      config,
      runDir: ctx.command.runDir,
      resume: ctx.command.resume,
      ctx,
      threads,
    });
    writeHeldOutPrompts(result.outputDir, {
      stage: job.stage,
      seed: config.seed,
      validationFraction: config.validationFraction,
      ...heldOutPairPrompts(summary.pairs, config.validationFraction, config.seed),
    });
    return {
      status: result.earlyStopped ? 'early-stopped' : 'completed',
      outputPath: result.outputDir,
      summary: job.summary(result),
    };
  });
}

/** Each context once, in first-seen order. */
function distinctContexts(items: readonly PromptContext[]): PromptContext[] {
  const contexts = new Map<string, PromptContext>();
  for (const { prompt, suffix } of items) {
    const key = contextKey({ prompt, suffix });
    if (!contexts.has(key)) contexts.set(key, { prompt, suffix });
  }
  return [...contexts.values()];
}

export function createTrainingRunners(
  options: { threads?: number; advice?: RunnerAdvice } = {},
): TrainingRunners {
  const threads = options.threads ?? 2;
  const advice = options.advice ?? CLI_ADVICE;
  return {
    rm: async (ctx) =>
      runPairTrainer(ctx, advice, threads, {
        stage: 'rm',
        stageDir: REWARD_MODEL_DIR,
        config: parseConfig(ctx.command.config, RM_SPEC, RM_DEFAULTS, 'reward model config'),
        train: trainRewardModel,
        summary: (result) => ({
          validationAccuracy: result.validation.accuracy,
          validationLoss: result.validation.loss,
          validationMargin: result.validation.margin,
          steps: result.steps,
        }),
      }),
    ppo: async (ctx) => {
      const config = parseConfig(ctx.command.config, PPO_SPEC, PPO_DEFAULTS, 'PPO config');
      if (!config.rewardModelDir)
        throw new Error('PPO config "rewardModelDir" is empty: train a reward model first');
      assertInputPaths(config);
      return inRunFolder(ctx, advice, POLICY_DIR, async () => {
        const model = loadModel(config.modelDir);
        const { records } = await readPairs(config.dataFile, ctx);
        // The prompts are the contexts developers asked for completions in; a fifth is held out
        // for the held-out reward that drives rollback. Split by the text before the cursor, as
        // the reward model and DPO split their pairs (a prefix judged with two suffixes stays on
        // one side; see splitByPrompt).
        const prompts = ppoPrompts(records);
        const heldOutFraction = 0.2;
        const split = splitByPrompt(prompts, (p) => p.prompt, heldOutFraction, config.seed);
        const runtime = ModelRuntime.fromModel(model, { threads });
        const generator = createGenerator(runtime);
        const scorer = await RewardScorer.load(model, config.rewardModelDir, { threads });
        warnIfRewardLimitsUnknown(scorer, config.rewardModelDir, config, ctx.log);
        try {
          const result = await trainPpo({
            model,
            generator,
            rewardScorer: scorer,
            prompts: split.train,
            heldOutPrompts: split.validation,
            config,
            runDir: ctx.command.runDir,
            resume: ctx.command.resume,
            ctx,
            threads,
          });
          writeHeldOutPrompts(result.outputDir, {
            stage: 'ppo',
            seed: config.seed,
            validationFraction: heldOutFraction,
            ...heldOutFields(split.validation),
          });
          const last = result.history[result.history.length - 1] ?? {};
          return {
            status: 'completed',
            outputPath: result.outputDir,
            summary: {
              iterations: result.iterations,
              rollbacks: result.rollbacks,
              heldOutRewardBefore: result.heldOutRewardBefore,
              heldOutRewardAfter: result.heldOutRewardAfter,
              kl: last['objective/kl'] ?? Number.NaN,
            },
          };
        } finally {
          await scorer.release();
          await generator.dispose();
          await runtime.dispose();
        }
      });
    },
    dpo: async (ctx) =>
      runPairTrainer(ctx, advice, threads, {
        stage: 'dpo',
        stageDir: DPO_DIR,
        config: parseConfig(ctx.command.config, DPO_SPEC, DPO_DEFAULTS, 'DPO config'),
        train: trainDpo,
        summary: (result) => ({
          validationAccuracy: result.validationAccuracy,
          validationLoss: result.validationLoss,
          steps: result.steps,
        }),
      }),
    gate: async (ctx) => {
      const config = parseGateConfig(ctx.command.config);
      assertInputPaths(config);
      return inRunFolder(ctx, advice, undefined, async () => {
        const result = await runPromotionGate({
          config,
          workDir: ctx.command.runDir,
          ctx,
          threads,
        });
        return { status: 'completed', summary: result.summary, decision: result.decision };
      });
    },
  };
}
