/**
 * Reward model: base + LoRA + scalar head read at the last real token, trained with the
 * Bradley-Terry loss (ties as target 0.5, optional margins) on pairs split by prompt, with
 * validation accuracy, loss and margin logged, early stopping on validation accuracy, atomic
 * checkpoints and resume. The best adapter and head (by validation accuracy) are the output.
 *
 * Output folder: `adapter_config.json` + `adapter_model.safetensors` (PEFT), the head as
 * `reward_head.safetensors`, and `run.json` with the config and final numbers.
 */
import * as fs from 'fs';
import * as path from 'path';
import { EngineSession } from '../engine';
import type { LoadedModel } from '../model/loader';
import { initLora, loadPeftAdapter, savePeftAdapter, type LoraAdapter } from '../model/lora';
import { evaluatePairs, type PairEvaluation } from './bradleyTerry';
import { writeFileAtomic } from './checkpoint';
import type { RewardModelConfig } from './config';
import { headDigest, headFileName, loadHead, saveHead, type Head } from './heads';
import {
  completionMarkFor,
  encodePair,
  missingMarkTokens,
  float32,
  sequenceBatch,
  type CompletionMark,
  type EncodingLimits,
  type TokenRow,
} from './batch';
import { METRICS_ROWS_KEY, MetricsWriter, RM_METRICS, formatMetricLine } from './metrics';
import { adamWTraining, ParameterOptimizer, unpackMoments, type OptimizerState } from './optimizer';
import {
  copyParams,
  savePairCheckpoint,
  startPairRun,
  type PairTrainerOptions,
} from './pairTraining';
import type { TrainingPair } from './preferences';
import { contextKey, toContext, type PromptContext, type PromptInput } from './promptContext';
import { createRng, normal, shuffled } from './random';
import { filesDigest, numbersFromJson, resumeRecord, type ResumeRules } from './resume';
import { EarlyStopping } from './split';
import { unpackParams } from './tensorPack';
import { throwIfCancelled } from './trainerContext';
import {
  adapterFeeds,
  buildRewardGraph,
  headFeeds,
  loraScaleFeed,
  rewardTrainingLoss,
  trainableParameters,
} from './trainGraphs';

export const REWARD_MODEL_DIR = 'reward-model';

interface EncodedPair {
  pair: TrainingPair;
  chosen: TokenRow;
  rejected: TokenRow;
}

/** One judgment: its distinct candidate sequences, scored once, and its pairs as row indices. */
export interface ComparisonGroup extends PromptContext {
  rows: TokenRow[];
  pairs: { chosen: number; rejected: number; target: number; margin: number }[];
}

/** Groups pairs by the judgment they came from; each distinct text becomes one row. */
export function encodeGroups(
  model: LoadedModel,
  pairs: readonly TrainingPair[],
  config: EncodingLimits,
): ComparisonGroup[] {
  const byRecord = new Map<
    string,
    { context: PromptContext; texts: string[]; pairs: TrainingPair[] }
  >();
  for (const pair of pairs) {
    const key = `${pair.recordId}\u0000${contextKey(pair)}`;
    let group = byRecord.get(key);
    if (!group) {
      const context = { prompt: pair.prompt, suffix: pair.suffix };
      byRecord.set(key, (group = { context, texts: [], pairs: [] }));
    }
    for (const text of [pair.chosen, pair.rejected])
      if (!group.texts.includes(text)) group.texts.push(text);
    group.pairs.push(pair);
  }
  return [...byRecord.values()].map((group) => ({
    ...group.context,
    rows: group.texts.map((text) => encodePair(model.tokenizer, group.context, text, config)),
    pairs: group.pairs.map((p) => ({
      chosen: group.texts.indexOf(p.chosen),
      rejected: group.texts.indexOf(p.rejected),
      target: p.target,
      margin: p.margin,
    })),
  }));
}

/** Concatenates groups into one batch: rows, and pair indices offset into them. */
function mergeGroups(groups: readonly ComparisonGroup[]): ComparisonGroup {
  const rows: TokenRow[] = [];
  const pairs: ComparisonGroup['pairs'] = [];
  for (const g of groups) {
    const offset = rows.length;
    rows.push(...g.rows);
    for (const p of g.pairs)
      pairs.push({ ...p, chosen: p.chosen + offset, rejected: p.rejected + offset });
  }
  return { prompt: '', suffix: '', rows, pairs };
}

/**
 * How (prompt, suffix, completion) text was cut into tokens when the reward model was trained.
 * `maxSuffixTokens` is absent for reward models trained before suffixes were read: they score
 * left-to-right prompts, as they were trained.
 */
export type RewardEncoding = EncodingLimits;

/**
 * The encoding a reward model trained with `config` on `model` uses: the config's limits, and
 * with markCompletion the mark this model can make (FIM tokens, else EOS, else 'none';
 * `completionMarkFor`), recorded in run.json so scoring marks rows as training did.
 */
export function rewardEncoding(model: LoadedModel, config: RewardModelConfig): RewardEncoding {
  const { maxPromptTokens, maxSuffixTokens, maxCompletionTokens, markCompletion } = config;
  const encoding: RewardEncoding = {
    maxPromptTokens,
    maxSuffixTokens,
    maxCompletionTokens,
    markCompletion,
  };
  if (markCompletion) encoding.completionMark = completionMarkFor(model.tokenizer);
  return encoding;
}

const COMPLETION_MARKS: readonly CompletionMark[] = ['fim', 'eos', 'none'];

/** Reads the training encoding from a reward-model folder's run.json; undefined when absent. */
export function readRewardEncoding(dir: string): RewardEncoding | undefined {
  const file = path.join(dir, 'run.json');
  if (!fs.existsSync(file)) return undefined;
  let run: unknown;
  try {
    run = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`${file}: not valid JSON (${(error as Error).message})`);
  }
  // `null.config` would fail with a bare TypeError, and 5 or [] as "maxPromptTokens is undefined".
  if (typeof run !== 'object' || run === null || Array.isArray(run)) {
    throw new Error(
      `${file}: expected a JSON object with "config", got ${String(JSON.stringify(run)).slice(0, 80)}`,
    );
  }
  const { maxPromptTokens, maxSuffixTokens, maxCompletionTokens, markCompletion } =
    (run as { config?: Partial<RewardEncoding> }).config ?? {};
  const { completionMark } = run as { completionMark?: unknown };
  for (const [key, value] of Object.entries({ maxPromptTokens, maxCompletionTokens })) {
    if (!(typeof value === 'number' && Number.isInteger(value) && value >= 1)) {
      throw new Error(
        `${file}: config.${key} is ${JSON.stringify(value)}; allowed: an integer >= 1`,
      );
    }
  }
  const encoding: RewardEncoding = {
    maxPromptTokens: maxPromptTokens!,
    maxCompletionTokens: maxCompletionTokens!,
  };
  if (maxSuffixTokens !== undefined) {
    const valid = typeof maxSuffixTokens === 'number' && Number.isInteger(maxSuffixTokens);
    if (!valid || maxSuffixTokens < 0) {
      throw new Error(
        `${file}: config.maxSuffixTokens is ${JSON.stringify(maxSuffixTokens)}; allowed: an ` +
          'integer >= 0, or absent (a reward model trained before suffixes were read)',
      );
    }
    encoding.maxSuffixTokens = maxSuffixTokens;
  }
  if (markCompletion !== undefined) {
    if (typeof markCompletion !== 'boolean') {
      throw new Error(
        `${file}: config.markCompletion is ${JSON.stringify(markCompletion)}; allowed: true, ` +
          'false, or absent (a reward model trained before completions were marked)',
      );
    }
    encoding.markCompletion = markCompletion;
  }
  if (completionMark !== undefined) {
    if (!COMPLETION_MARKS.includes(completionMark as CompletionMark)) {
      throw new Error(
        `${file}: completionMark is ${JSON.stringify(completionMark)}; allowed: ` +
          `${COMPLETION_MARKS.map((m) => `"${m}"`).join(', ')}, or absent (a reward model ` +
          "trained before marks were recorded: 'fim' when the model has FIM tokens, else none)",
      );
    }
    encoding.completionMark = completionMark as CompletionMark;
  }
  return encoding;
}

/**
 * What decides a reward-model folder's scores, for resume checks (PPO_RESUME): every byte of its
 * adapter and head files, and the encoding its run.json records; not run.json's numbers and
 * wall time (a resume of the finished reward model writes them anew), nor any other file in the
 * folder (held-out prompts, a user's notes). Null when one of those files cannot be read; a
 * damaged run.json throws, naming it.
 */
export function rewardModelDigest(dir: string): string | null {
  const encoding = readRewardEncoding(dir);
  const files = ['adapter_config.json', 'adapter_model.safetensors', headFileName('reward')];
  return filesDigest(dir, files, JSON.stringify(encoding ?? null));
}

/** Scores (prompt, completion) token rows with a reward adapter and head; forward only. */
export class RewardScorer {
  private constructor(
    private readonly session: EngineSession,
    readonly model: LoadedModel,
    readonly adapter: LoraAdapter,
    readonly head: Head,
    private readonly batchSize: number,
    /** The encoding the model was trained with, when known (see `encode`). */
    readonly encoding: RewardEncoding | undefined,
  ) {}

  static async create(
    model: LoadedModel,
    adapter: LoraAdapter,
    head: Head,
    options: { threads?: number; batchSize?: number; encoding?: RewardEncoding } = {},
  ): Promise<RewardScorer> {
    const session = await EngineSession.create(buildRewardGraph(model, adapter.config.targets), {
      threads: options.threads ?? 2,
    });
    return new RewardScorer(
      session,
      model,
      adapter,
      head,
      options.batchSize ?? 16,
      options.encoding,
    );
  }

  /**
   * Loads a reward-model output folder; a missing head file is an error (R5). The prompt and
   * completion token limits it was trained with come from its run.json.
   */
  static async load(
    model: LoadedModel,
    dir: string,
    options: { threads?: number } = {},
  ): Promise<RewardScorer> {
    const encoding = readRewardEncoding(dir);
    // Refused here, naming both folders, rather than by the first row encoded.
    const mark = encoding?.markCompletion ? encoding.completionMark : undefined;
    const missing = mark === undefined ? undefined : missingMarkTokens(model.tokenizer, mark);
    if (missing) {
      throw new Error(
        `${path.join(dir, 'run.json')}: the reward model marks completions with completionMark ` +
          `"${mark}", but the model ${model.dir} has no ${missing}; score it with the model it ` +
          'was trained on (its config.modelDir)',
      );
    }
    const adapter = loadPeftAdapter(dir, model);
    const { head } = loadHead(dir, 'reward', model.config.hiddenSize);
    return RewardScorer.create(model, adapter, head, { ...options, encoding });
  }

  /**
   * Tokenises a completion in its context for scoring, cut exactly as the training pairs were:
   * a reward model trained on 64 prompt tokens and queried with 96 scores inputs it never saw,
   * and one trained without suffixes never sees one. `fallback` applies only when the training
   * encoding is unknown.
   */
  encode(context: PromptInput, completion: string, fallback: RewardEncoding): TokenRow {
    return encodePair(
      this.model.tokenizer,
      toContext(context),
      completion,
      this.encoding ?? fallback,
    );
  }

  async score(rows: readonly TokenRow[]): Promise<Float32Array> {
    const out = new Float32Array(rows.length);
    for (let i = 0; i < rows.length; i += this.batchSize) {
      const chunk = rows.slice(i, i + this.batchSize);
      const batch = sequenceBatch(chunk, 0, false);
      const result = await this.session.run(
        {
          ...batch.feeds,
          ...adapterFeeds(this.model, this.adapter),
          ...headFeeds('reward_head', this.head),
        },
        ['rewards'],
      );
      out.set(result.rewards.data as Float32Array, i);
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

export interface RewardModelResult {
  outputDir: string;
  adapter: LoraAdapter;
  head: Head;
  /** How its rows are encoded; score with it (`RewardScorer.create`'s `encoding`). */
  encoding: RewardEncoding;
  validation: PairEvaluation;
  trainPairs: number;
  validationPairs: number;
  steps: number;
  firstLoss: number;
  lastLoss: number;
  earlyStopped: boolean;
}

function int64Feed(values: readonly number[]) {
  return {
    dtype: 'int64' as const,
    shape: [values.length],
    data: BigInt64Array.from(values.map(BigInt)),
  };
}

function freshHead(hidden: number, seed: number): Head {
  const rng = createRng(seed ^ 0x5eed);
  const weight = new Float32Array(hidden);
  for (let i = 0; i < hidden; i++) weight[i] = normal(rng) / Math.sqrt(hidden);
  return { weight, bias: new Float32Array(1) };
}

function digestParams(params: Map<string, Float32Array>): string {
  return headDigest({
    weight: Float32Array.from([...params.values()].flatMap((a) => Array.from(a))),
    bias: new Float32Array(1),
  });
}

export async function evaluateRewardModel(
  scorer: RewardScorer,
  groups: readonly ComparisonGroup[],
): Promise<PairEvaluation> {
  if (groups.length === 0) return evaluatePairs([]);
  const merged = mergeGroups(groups);
  const scores = await scorer.score(merged.rows);
  return evaluatePairs(
    merged.pairs.map((p) => ({
      chosen: scores[p.chosen],
      rejected: scores[p.rejected],
      target: p.target,
      margin: p.margin,
    })),
  );
}

export function encodePairs(
  model: LoadedModel,
  pairs: readonly TrainingPair[],
  config: RewardModelConfig,
): EncodedPair[] {
  const encoding = rewardEncoding(model, config);
  return pairs.map((pair) => ({
    pair,
    chosen: encodePair(model.tokenizer, pair, pair.chosen, encoding),
    rejected: encodePair(model.tokenizer, pair, pair.rejected, encoding),
  }));
}

/**
 * What a resumed reward-model run may change: more epochs extend it, patience lets it go on
 * (or stop) past the checkpoint's early-stopping count, and checkpoints do not touch training.
 * Any other key (data, model, encoding, markCompletion, LoRA shape, seed, batch size, learning
 * rate, validation fraction, evaluation interval, margins) changes what is trained, and so do
 * other weights in the model folder.
 */
export const RM_RESUME: ResumeRules<RewardModelConfig> = {
  trainer: 'reward model',
  mayChange: ['epochs', 'patience', 'checkpointEvery'],
  pathKeys: ['modelDir', 'dataFile'],
  listKeys: ['loraTargets'],
  contentKeys: { modelDir: 'modelWeights' },
  dataNoun: 'training pairs',
  // Checkpoints written before they recorded their config were trained unmarked: resuming one
  // with the default markCompletion true would train the rest of the run marked.
  legacyDefaults: { markCompletion: false },
};

/**
 * Trains the reward model. With `resume`, continues from the last checkpoint in
 * `runDir/checkpoints/reward-model`: the data and the config must be the checkpoint's, except
 * the keys of `RM_RESUME.mayChange` (checked; see resume.ts); the split and shuffles are seeded
 * so the run continues exactly where it stopped.
 */
export async function trainRewardModel(
  options: PairTrainerOptions<RewardModelConfig>,
): Promise<RewardModelResult> {
  const { model, config, ctx } = options;
  const started = Date.now();
  const { targets, checkpointsDir, data, contents, ck, split } = startPairRun(
    options,
    REWARD_MODEL_DIR,
    RM_RESUME,
  );
  const encoding = rewardEncoding(model, config);
  const train = encodeGroups(model, split.train, encoding);
  const validation = encodeGroups(model, split.validation, encoding);
  ctx.log(
    'info',
    `reward model: ${split.train.length} train pairs in ${train.length} judgments (${split.trainPrompts} prompts), ` +
      `${split.validation.length} validation pairs in ${validation.length} judgments (${split.validationPrompts} prompts), ` +
      `targets ${targets.join(',')}`,
  );

  const adapter = initLora(
    model,
    { rank: config.loraRank, alpha: config.loraAlpha, targets, useRslora: false },
    config.seed,
  );
  const head = freshHead(model.config.hiddenSize, config.seed);
  const params = trainableParameters(model, adapter, { prefix: 'reward_head', head });
  const earlyStopping = new EarlyStopping({
    patience: config.patience,
    minDelta: 1e-4,
    mode: 'max',
  });
  const stepsPerEpoch = Math.ceil(train.length / config.batchSize);
  const totalSteps = stepsPerEpoch * config.epochs;
  const evalEvery = config.evalEvery > 0 ? config.evalEvery : stepsPerEpoch;
  const metricsFile = path.join(options.runDir, 'reward-model-metrics.jsonl');
  const metricsWriter = MetricsWriter.forRun(metricsFile, ck, 'step', (message) =>
    ctx.log('warn', `reward model: ${message}`),
  );

  let step = 0;
  let firstLoss = Number.NaN;
  let lastLoss = Number.NaN;
  let best = copyParams(params);
  let bestEval: PairEvaluation | undefined;
  let savedMoments: OptimizerState | undefined;
  // Taken before a resume restores the checkpoint's parameters: "did training change them" is
  // asked of the whole run, so a resume with no step left (the run had finished, or crashed
  // before writing its output) still passes with the checkpoint's trained parameters.
  const initialDigest = digestParams(params);
  if (options.resume) {
    if (ck) {
      const saved = unpackParams(ck.read('params.bin'), `${ck.dir}/params.bin`, params);
      for (const [name, p] of params) p.set(saved[name]);
      savedMoments = unpackMoments(
        ck.read('optimizer.bin'),
        `${ck.dir}/optimizer.bin`,
        ck.counter('optimizerStep'),
      );
      const state = ck.manifest.state as {
        earlyStopping: { best: number; bestStep: number; sinceBest: number };
        firstLoss: number;
        lastLoss?: number | null;
        bestEval?: PairEvaluation;
      };
      earlyStopping.restore(state.earlyStopping);
      best = unpackParams(ck.read('best.bin'), `${ck.dir}/best.bin`, params);
      // JSON wrote NaN (no strict validation pairs, say) as null.
      bestEval = state.bestEval && numbersFromJson(state.bestEval);
      step = ck.counter('step');
      firstLoss = state.firstLoss ?? Number.NaN;
      // Absent in checkpoints written before it was kept: then only a resume that trains on
      // reports it.
      lastLoss = state.lastLoss ?? Number.NaN;
      ctx.log('info', `reward model: resumed from ${ck.dir} at step ${step}`);
    } else {
      ctx.log(
        'warn',
        `reward model: resume asked, but ${checkpointsDir} has no checkpoint; starting fresh`,
      );
    }
  }

  const optimizer = await ParameterOptimizer.create(
    adamWTraining(rewardTrainingLoss(model, targets, config.loraRank), config.learningRate),
    params,
    options.threads ?? 2,
  );
  const saveCheckpoint = () =>
    savePairCheckpoint(
      checkpointsDir,
      step,
      optimizer,
      params,
      best,
      {
        earlyStopping: earlyStopping.state(),
        firstLoss,
        lastLoss,
        bestEval,
        ...resumeRecord(config, RM_RESUME, data, contents),
        [METRICS_ROWS_KEY]: metricsWriter.rows,
      },
      ctx,
    );

  let earlyStopped = false;
  // Everything that can throw once the optimizer's session exists (restore, on moments of
  // another size; opening the next session; training) runs in the try, which releases every
  // session opened.
  const sessions: { release(): Promise<void> }[] = [optimizer];
  try {
    if (savedMoments) optimizer.restore(savedMoments);
    const scorer = await RewardScorer.create(model, adapter, head, { threads: options.threads });
    sessions.push(scorer);
    // `candidate` false: the step-0 evaluation is a logged baseline only. The output is always a
    // trained model: if the untrained one were a candidate, a later step that only ties its
    // accuracy (common with a handful of validation pairs) would leave it as the output.
    const evaluate = async (candidate = true) => {
      const result = await ctx.step(() => evaluateRewardModel(scorer, validation));
      const row = {
        'eval/loss': result.loss,
        'eval/accuracy': result.accuracy,
        'eval/margin': result.margin,
        'eval/ties': result.tiePairs,
        'eval/equal_scores': result.equalScores,
        epoch: step / stepsPerEpoch,
      };
      ctx.metrics(step, row);
      metricsWriter.append(step, row);
      ctx.log('info', formatMetricLine(step, row, RM_METRICS));
      if (!candidate) return;
      if (earlyStopping.observe(result.accuracy, step) || bestEval === undefined) {
        best = copyParams(params);
        bestEval = result;
      }
    };
    if (validation.length > 0 && step === 0) await evaluate(false);
    while (step < totalSteps) {
      throwIfCancelled(ctx.signal);
      const epoch = Math.floor(step / stepsPerEpoch);
      const order = shuffled(train, createRng(config.seed * 1000 + epoch));
      const b = step % stepsPerEpoch;
      const batch = mergeGroups(order.slice(b * config.batchSize, (b + 1) * config.batchSize));
      const tokens = sequenceBatch(batch.rows, 0, false);
      // One run: loss, gradients and the AdamW update of the LoRA factors and the head.
      const update = await ctx.step(() =>
        optimizer.update(
          {
            ...tokens.feeds,
            ...loraScaleFeed(adapter),
            pair_chosen: int64Feed(batch.pairs.map((p) => p.chosen)),
            pair_rejected: int64Feed(batch.pairs.map((p) => p.rejected)),
            pair_target: float32(
              batch.pairs.map((p) => p.target),
              [batch.pairs.length],
            ),
            pair_margin: float32(
              batch.pairs.map((p) => (config.useMargins && p.target === 1 ? p.margin : 0)),
              [batch.pairs.length],
            ),
          },
          `reward model step ${step + 1}`,
        ),
      );
      const { loss, gradNorm } = update;
      step++;
      if (Number.isNaN(firstLoss)) firstLoss = loss;
      lastLoss = loss;
      const row = {
        'loss/train': loss,
        'grad/norm': gradNorm,
        lr: config.learningRate,
        epoch: step / stepsPerEpoch,
      };
      ctx.metrics(step, row);
      metricsWriter.append(step, row);
      ctx.progress('reward-model', step, totalSteps);
      if (validation.length > 0 && step % evalEvery === 0) {
        await evaluate();
        if (earlyStopping.shouldStop) {
          earlyStopped = true;
          ctx.log(
            'info',
            `reward model: early stop at step ${step}; best accuracy at step ${earlyStopping.bestStep}`,
          );
          break;
        }
      }
      if (config.checkpointEvery > 0 && step % config.checkpointEvery === 0) saveCheckpoint();
    }
    if (validation.length > 0 && step % evalEvery !== 0 && !earlyStopped) await evaluate();
  } finally {
    for (const session of sessions.reverse()) await session.release();
  }
  if (digestParams(params) === initialDigest && step > 0) {
    throw new Error(
      'reward model: parameters did not change during training (no gradient reached them)',
    );
  }
  // The output is the best adapter and head by validation accuracy (the last when no validation).
  if (validation.length > 0) for (const [name, p] of params) p.set(best[name]);
  const outputDir = path.join(options.runDir, REWARD_MODEL_DIR);
  fs.mkdirSync(outputDir, { recursive: true });
  savePeftAdapter(outputDir, adapter, model.dir);
  saveHead(outputDir, 'reward', head);
  const finalEval = bestEval ?? evaluatePairs([]);
  writeFileAtomic(
    path.join(outputDir, 'run.json'),
    JSON.stringify(
      {
        kind: 'reward-model',
        config,
        ...(encoding.completionMark === undefined
          ? {}
          : { completionMark: encoding.completionMark }),
        steps: step,
        trainPairs: split.train.length,
        validationPairs: split.validation.length,
        validation: finalEval,
        firstLoss,
        lastLoss,
        earlyStopped,
        seconds: (Date.now() - started) / 1000,
      },
      null,
      2,
    ),
  );
  return {
    outputDir,
    adapter,
    head,
    encoding,
    validation: finalEval,
    trainPairs: split.train.length,
    validationPairs: split.validation.length,
    steps: step,
    firstLoss,
    lastLoss,
    earlyStopped,
  };
}
