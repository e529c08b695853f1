/**
 * DPO (Rafailov et al. 2023): the policy's LoRA adapter trained directly on the judgments, with
 * the base model (adapter off) as the reference. Same pairs, split, early stopping and
 * checkpoint scheme as the reward model; the output is a PEFT adapter folder.
 * Metrics use TRL's DPOTrainer names (`rewards/chosen`, `rewards/margins`, ...).
 */
import * as fs from 'fs';
import * as path from 'path';
import { EngineSession } from '../engine';
import type { LoadedModel } from '../model/loader';
import { initLora, savePeftAdapter, type LoraAdapter } from '../model/lora';
import { encodePair, float32, sequenceBatch, type TokenRow } from './batch';
import { writeFileAtomic } from './checkpoint';
import type { DpoConfig } from './config';
import type { Head } from './heads';
import { DPO_METRICS, METRICS_ROWS_KEY, MetricsWriter, formatMetricLine } from './metrics';
import { adamWTraining, ParameterOptimizer, unpackMoments } from './optimizer';
import {
  copyParams,
  savePairCheckpoint,
  startPairRun,
  type PairTrainerOptions,
} from './pairTraining';
import { dpoLoss } from './ppoMath';
import type { TrainingPair } from './preferences';
import { createRng, shuffled } from './random';
import { numbersFromJson, resumeRecord, type ResumeRules } from './resume';
import { EarlyStopping } from './split';
import { unpackParams } from './tensorPack';
import { throwIfCancelled } from './trainerContext';
import {
  adapterFeeds,
  buildPolicyScoreGraph,
  dpoTrainingLoss,
  headFeeds,
  loraScaleFeed,
  trainableParameters,
} from './trainGraphs';

export const DPO_DIR = 'dpo-policy';

interface EncodedPair {
  pair: TrainingPair;
  chosen: TokenRow;
  rejected: TokenRow;
  refChosen: number;
  refRejected: number;
}

export interface DpoResult {
  outputDir: string;
  adapter: LoraAdapter;
  steps: number;
  firstLoss: number;
  lastLoss: number;
  /** Validation preference accuracy of the implicit reward (chosen > rejected). */
  validationAccuracy: number;
  validationLoss: number;
  earlyStopped: boolean;
}

/** Sequence log-probabilities (sum over completion tokens) at temperature 1. */
async function sequenceLogps(
  session: EngineSession,
  model: LoadedModel,
  adapter: LoraAdapter,
  rows: readonly TokenRow[],
  scale: number | undefined,
  batchSize: number,
): Promise<number[]> {
  const zeroHead: Head = {
    weight: new Float32Array(model.config.hiddenSize),
    bias: new Float32Array(1),
  };
  const out: number[] = [];
  for (let i = 0; i < rows.length; i += batchSize) {
    const chunk = rows.slice(i, i + batchSize);
    const batch = sequenceBatch(chunk);
    const result = await session.run(
      {
        ...batch.feeds,
        ...adapterFeeds(model, adapter, scale),
        ...headFeeds('value_head', zeroHead),
        temperature: float32([1], []),
      },
      ['logprobs'],
    );
    const lp = result.logprobs.data as Float32Array;
    const r = batch.responseWidth;
    chunk.forEach((row, k) => {
      let sum = 0;
      for (let j = 0; j < row.completion.length; j++) sum += lp[k * r + j];
      out.push(sum);
    });
  }
  return out;
}

/**
 * What a resumed DPO run may change (see resume.ts): more epochs, patience, and how often to
 * checkpoint. Any other key (data, model, encoding, LoRA shape, seed, batch size, learning rate,
 * beta, validation fraction) changes what is trained, and so do other weights in the model folder.
 */
export const DPO_RESUME: ResumeRules<DpoConfig> = {
  trainer: 'DPO',
  mayChange: ['epochs', 'patience', 'checkpointEvery'],
  pathKeys: ['modelDir', 'dataFile'],
  listKeys: ['loraTargets'],
  contentKeys: { modelDir: 'modelWeights' },
  dataNoun: 'training pairs',
};

/**
 * Trains the policy's adapter with DPO. With `resume`, continues from the last checkpoint in
 * `runDir/checkpoints/dpo-policy`: the data and the config must be the checkpoint's, except the
 * keys of `DPO_RESUME.mayChange`.
 */
export async function trainDpo(options: PairTrainerOptions<DpoConfig>): Promise<DpoResult> {
  const { model, config, ctx } = options;
  const started = Date.now();
  // The resume is checked before any work (the reference log-probs of every pair, below).
  const { targets, checkpointsDir, data, contents, ck, split } = startPairRun(
    options,
    DPO_DIR,
    DPO_RESUME,
  );
  const adapter = initLora(
    model,
    { rank: config.loraRank, alpha: config.loraAlpha, targets, useRslora: false },
    config.seed,
  );
  const params = trainableParameters(model, adapter);
  const threads = options.threads ?? 2;
  const metricsWriter = MetricsWriter.forRun(
    path.join(options.runDir, 'dpo-metrics.jsonl'),
    ck,
    'step',
    (message) => ctx.log('warn', `DPO: ${message}`),
  );
  const score = await EngineSession.create(buildPolicyScoreGraph(model, targets), { threads });
  // Everything that can throw once the scoring session exists (opening the optimizer's session,
  // a checkpoint's moments of another size, training) runs in the try below, which releases
  // every session opened.
  const sessions: { release(): Promise<void> }[] = [score];
  const earlyStopping = new EarlyStopping({
    patience: config.patience,
    minDelta: 1e-4,
    mode: 'max',
  });

  const encode = async (pairs: readonly TrainingPair[]): Promise<EncodedPair[]> => {
    // In the context the pair was judged in: the policy's FIM prompt when it has a suffix.
    const rows = pairs.map((pair) => ({
      pair,
      chosen: encodePair(model.tokenizer, pair, pair.chosen, config),
      rejected: encodePair(model.tokenizer, pair, pair.rejected, config),
    }));
    // The reference never changes: its log-probs are computed once (adapter scale 0).
    const ref = await ctx.step(() =>
      sequenceLogps(
        score,
        model,
        adapter,
        rows.flatMap((r) => [r.chosen, r.rejected]),
        0,
        16,
      ),
    );
    return rows.map((r, i) => ({ ...r, refChosen: ref[2 * i], refRejected: ref[2 * i + 1] }));
  };

  let step = 0;
  let firstLoss = Number.NaN;
  let lastLoss = Number.NaN;
  let best = copyParams(params);
  let bestEval = { accuracy: Number.NaN, loss: Number.NaN };
  let earlyStopped = false;
  try {
    const optimizer = await ParameterOptimizer.create(
      adamWTraining(
        dpoTrainingLoss(model, targets, config.loraRank, config.beta),
        config.learningRate,
      ),
      params,
      threads,
    );
    sessions.push(optimizer);
    const trainSet = await encode(split.train);
    const validation = await encode(split.validation);
    ctx.log(
      'info',
      `DPO: ${trainSet.length} train pairs, ${validation.length} validation pairs, beta ${config.beta}`,
    );
    const stepsPerEpoch = Math.ceil(trainSet.length / config.batchSize);
    const totalSteps = stepsPerEpoch * config.epochs;
    if (options.resume) {
      if (ck) {
        const saved = unpackParams(ck.read('params.bin'), `${ck.dir}/params.bin`, params);
        for (const [name, p] of params) p.set(saved[name]);
        const state = ck.manifest.state as {
          firstLoss: number | null;
          lastLoss?: number | null;
          earlyStopping?: { best: number; bestStep: number; sinceBest: number };
          bestEval?: { accuracy: number | null; loss: number | null };
        };
        optimizer.restore(
          unpackMoments(
            ck.read('optimizer.bin'),
            `${ck.dir}/optimizer.bin`,
            ck.counter('optimizerStep'),
          ),
        );
        step = ck.counter('step');
        firstLoss = state.firstLoss ?? Number.NaN;
        best = unpackParams(ck.read('best.bin'), `${ck.dir}/best.bin`, params);
        // Without them (checkpoints written before they were kept) the first evaluation after
        // the resume became the best whatever it scored, and patience started again from 0,
        // so a resumed run could output another adapter than a straight one.
        if (state.earlyStopping) earlyStopping.restore(state.earlyStopping);
        if (state.bestEval) bestEval = numbersFromJson(state.bestEval) as typeof bestEval;
        lastLoss = state.lastLoss ?? Number.NaN;
        ctx.log('info', `DPO: resumed from ${ck.dir} at step ${step}`);
      } else {
        ctx.log(
          'warn',
          `DPO: resume asked, but ${checkpointsDir} has no checkpoint; starting fresh`,
        );
      }
    }
    // `candidate` false: the step-0 evaluation is a logged baseline only, so the output is always
    // a trained adapter (a later step that merely ties the untrained one would otherwise leave the
    // reference policy as the output).
    const evaluate = async (candidate = true) => {
      if (validation.length === 0) return;
      const logps = await ctx.step(() =>
        sequenceLogps(
          score,
          model,
          adapter,
          validation.flatMap((r) => [r.chosen, r.rejected]),
          undefined,
          16,
        ),
      );
      let loss = 0;
      let correct = 0;
      let strict = 0;
      let margin = 0;
      validation.forEach((r, i) => {
        const d = dpoLoss(
          {
            policyChosen: logps[2 * i],
            policyRejected: logps[2 * i + 1],
            refChosen: r.refChosen,
            refRejected: r.refRejected,
            target: r.pair.target,
          },
          config.beta,
        );
        loss += d.loss;
        if (r.pair.target === 1) {
          strict++;
          margin += d.rewardChosen - d.rewardRejected;
          if (d.rewardChosen > d.rewardRejected) correct++;
        }
      });
      const accuracy = strict ? correct / strict : Number.NaN;
      const row = {
        'eval/loss': loss / validation.length,
        'eval/rewards/accuracies': accuracy,
        'eval/rewards/margins': strict ? margin / strict : Number.NaN,
      };
      ctx.metrics(step, row);
      metricsWriter.append(step, row);
      ctx.log('info', formatMetricLine(step, row, DPO_METRICS));
      if (!candidate) return;
      if (earlyStopping.observe(accuracy, step) || Number.isNaN(bestEval.accuracy)) {
        best = copyParams(params);
        bestEval = { accuracy, loss: loss / validation.length };
      }
    };
    if (step === 0) await evaluate(false);
    while (step < totalSteps) {
      throwIfCancelled(ctx.signal);
      const epoch = Math.floor(step / stepsPerEpoch);
      const order = shuffled(trainSet, createRng(config.seed * 1000 + epoch));
      const b = step % stepsPerEpoch;
      const chunk = order.slice(b * config.batchSize, (b + 1) * config.batchSize);
      const rows = [...chunk.map((p) => p.chosen), ...chunk.map((p) => p.rejected)];
      const batch = sequenceBatch(rows);
      // One run: loss, gradients and the AdamW update of the LoRA factors.
      const update = await ctx.step(() =>
        optimizer.update(
          {
            ...batch.feeds,
            ...loraScaleFeed(adapter),
            temperature: float32([1], []),
            response_mask: {
              dtype: 'float32',
              shape: [rows.length, batch.responseWidth],
              data: batch.responseMask,
            },
            ref_logps: float32(
              [...chunk.map((p) => p.refChosen), ...chunk.map((p) => p.refRejected)],
              [rows.length],
            ),
            pair_target: float32(
              chunk.map((p) => p.pair.target),
              [chunk.length],
            ),
          },
          `DPO step ${step + 1}`,
        ),
      );
      const { loss, outputs: out } = update;
      step++;
      if (Number.isNaN(firstLoss)) firstLoss = loss;
      lastLoss = loss;
      const rc = Array.from(out.reward_chosen.data as Float32Array);
      const rr = Array.from(out.reward_rejected.data as Float32Array);
      const seq = Array.from(out.seq_logps.data as Float32Array);
      const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
      const row = {
        loss,
        'rewards/chosen': mean(rc),
        'rewards/rejected': mean(rr),
        'rewards/accuracies': mean(rc.map((c, i) => (c > rr[i] ? 1 : 0))),
        'rewards/margins': mean(rc.map((c, i) => c - rr[i])),
        'logps/chosen': mean(seq.slice(0, chunk.length)),
        'logps/rejected': mean(seq.slice(chunk.length)),
        lr: config.learningRate,
        epoch: step / stepsPerEpoch,
      };
      ctx.metrics(step, row);
      metricsWriter.append(step, row);
      ctx.progress('dpo', step, totalSteps);
      if (step % stepsPerEpoch === 0) {
        await evaluate();
        if (earlyStopping.shouldStop) {
          earlyStopped = true;
          break;
        }
      }
      if (config.checkpointEvery > 0 && step % config.checkpointEvery === 0) {
        savePairCheckpoint(
          checkpointsDir,
          step,
          optimizer,
          params,
          best,
          {
            firstLoss,
            lastLoss,
            earlyStopping: earlyStopping.state(),
            bestEval,
            ...resumeRecord(config, DPO_RESUME, data, contents),
            [METRICS_ROWS_KEY]: metricsWriter.rows,
          },
          ctx,
        );
      }
    }
    if (validation.length > 0) for (const [name, p] of params) p.set(best[name]);
  } finally {
    for (const session of sessions.reverse()) await session.release();
  }
  const outputDir = path.join(options.runDir, DPO_DIR);
  fs.mkdirSync(outputDir, { recursive: true });
  savePeftAdapter(outputDir, adapter, model.dir);
  writeFileAtomic(
    path.join(outputDir, 'run.json'),
    JSON.stringify(
      {
        kind: 'dpo',
        config,
        steps: step,
        firstLoss,
        lastLoss,
        validation: bestEval,
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
    steps: step,
    firstLoss,
    lastLoss,
    validationAccuracy: bestEval.accuracy,
    validationLoss: bestEval.loss,
    earlyStopped,
  };
}
