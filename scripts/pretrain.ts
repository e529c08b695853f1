/**
 * `npm run pretrain`: trains the embedded default model on the engine and writes it to
 * models/default in Hugging Face layout, with its model card.
 *
 *   1. Load the tokenizer and the corpus token streams (encoded once, cached in .corpus/).
 *   2. Build the training graph (forward, loss, backward, AdamW) and the eval/logits graphs.
 *   3. Resume from <run-dir>/checkpoint.safetensors when it exists (same config required).
 *   4. Train until --steps or --max-minutes: one line per step on stdout, metrics JSONL,
 *      a quick validation every --eval-every steps, a checkpoint every --checkpoint-every.
 *   5. Final held-out evaluation, 10 sample completions, HF export and MODEL_CARD.md.
 *
 * Usage: npm run pretrain -- [--steps 1500] [--max-minutes 55] [--hidden 256] [--layers 4] ...
 * (`--help` lists every flag with its default).
 */
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EngineSession, hostTensor, type HostTensor } from '../src/engine';
import { Rng } from '../src/model/random';
import { readCorpus } from './tokenizer/main';
import {
  CHECKPOINT_FILE,
  exportHuggingFace,
  loadCheckpoint,
  saveCheckpoint,
} from './pretrain/checkpoint';
import { writeModelCard, type CardSample } from './pretrain/card';
import { IGNORE, loadTokenStream, sampleBatch, TextCodec } from './pretrain/data';
import {
  evaluateFimMiddle,
  evaluateLeftToRight,
  greedyComplete,
  promptIds,
  samplePrompts,
  validationFimRows,
  validationWindows,
  type EvalResult,
} from './pretrain/evaluate';
import { scheduleStep, SCHEDULE_STEPS, TimedTrainer } from './pretrain/timedTrainer';
import {
  buildEvalGraph,
  buildLogitsGraph,
  buildTrainGraph,
  initParameters,
  parameterCount,
  type ModelShape,
  type OptimizerSettings,
} from './pretrain/model';

/** Every knob of a pretraining run, with its default and meaning. */
export interface PretrainConfig {
  corpus: string;
  out: string;
  runDir: string;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  seqLen: number;
  batchSize: number;
  steps: number;
  warmupSteps: number;
  learningRate: number;
  minLearningRate: number;
  weightDecay: number;
  beta2: number;
  maxGradNorm: number;
  fimRate: number;
  seed: number;
  threads: number;
  evalEvery: number;
  evalWindows: number;
  checkpointEvery: number;
  maxMinutes: number;
  samples: number;
}

const FLAGS: Record<string, [keyof PretrainConfig, string]> = {
  '--corpus': ['corpus', 'folder with train.jsonl / validation.jsonl (npm run corpus)'],
  '--out': ['out', 'model folder written at the end (HF layout + MODEL_CARD.md)'],
  '--run-dir': ['runDir', 'checkpoint and metrics.jsonl folder; an existing checkpoint resumes'],
  '--hidden': ['hidden', 'model width (hidden_size)'],
  '--layers': ['layers', 'decoder layers'],
  '--heads': ['heads', 'attention heads (head dim = hidden / heads)'],
  '--intermediate': ['intermediate', 'SwiGLU width (intermediate_size)'],
  '--seq-len': ['seqLen', 'tokens per training row = context length'],
  '--batch-size': ['batchSize', 'rows per step'],
  '--steps': [
    'steps',
    'step limit; the cosine ends at this limit or at --max-minutes, whichever is first',
  ],
  '--warmup-steps': ['warmupSteps', 'linear warmup steps'],
  '--lr': ['learningRate', 'peak AdamW learning rate'],
  '--min-lr': ['minLearningRate', 'learning rate at the end of the cosine'],
  '--weight-decay': ['weightDecay', 'decoupled weight decay on matrices'],
  '--beta2': ['beta2', 'AdamW beta2'],
  '--max-grad-norm': ['maxGradNorm', 'global gradient-norm clip'],
  '--fim-rate': ['fimRate', 'fraction of rows laid out as fill-in-the-middle (PSM)'],
  '--seed': ['seed', 'seed for initialization and data order'],
  '--threads': ['threads', 'onnxruntime intra-op threads (the machine is shared: at most 2)'],
  '--eval-every': ['evalEvery', 'steps between quick validations'],
  '--eval-windows': ['evalWindows', 'validation windows in a quick validation'],
  '--checkpoint-every': ['checkpointEvery', 'steps between checkpoints'],
  '--max-minutes': ['maxMinutes', 'training time budget; stops early and saves when spent'],
  '--samples': ['samples', 'sample completions in the model card (half FIM)'],
};

const DEFAULTS: PretrainConfig = {
  corpus: '.corpus',
  out: 'models/default',
  runDir: '.corpus/pretrain',
  hidden: 256,
  layers: 4,
  heads: 4,
  intermediate: 688,
  seqLen: 256,
  batchSize: 8,
  steps: 1500,
  warmupSteps: 50,
  learningRate: 3e-3,
  minLearningRate: 3e-4,
  weightDecay: 0.1,
  beta2: 0.95,
  maxGradNorm: 1,
  fimRate: 0.5,
  seed: 1234,
  threads: 2,
  evalEvery: 100,
  evalWindows: 32,
  checkpointEvery: 50,
  maxMinutes: 55,
  samples: 10,
};

function parseArgs(argv: string[]): PretrainConfig {
  const config = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i];
    if (flag === '--help') {
      const lines = Object.entries(FLAGS).map(
        ([name, [key, help]]) => `  ${name.padEnd(20)} ${help} (default ${DEFAULTS[key]})`,
      );
      process.stdout.write(`npm run pretrain -- [flags]\n${lines.join('\n')}\n`);
      process.exit(0);
    }
    const entry = FLAGS[flag];
    if (!entry) {
      throw new Error(`pretrain: unknown flag ${flag}; allowed: ${Object.keys(FLAGS).join(', ')}`);
    }
    const [key] = entry;
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`pretrain: ${flag} needs a value`);
    if (typeof DEFAULTS[key] === 'string') {
      (config as Record<string, unknown>)[key] = value;
    } else {
      const number = Number(value);
      if (!Number.isFinite(number) || number < 0) {
        throw new Error(`pretrain: ${flag} ${value} must be a non-negative number`);
      }
      (config as Record<string, unknown>)[key] = number;
    }
  }
  if (config.hidden % config.heads !== 0 || (config.hidden / config.heads) % 2 !== 0) {
    throw new Error(
      `pretrain: --hidden ${config.hidden} / --heads ${config.heads} must be an even integer`,
    );
  }
  if (config.threads < 1 || config.threads > 2) {
    throw new Error(`pretrain: --threads ${config.threads} must be 1 or 2 (shared machine)`);
  }
  if (config.fimRate > 1) throw new Error(`pretrain: --fim-rate ${config.fimRate} must be <= 1`);
  if (config.warmupSteps >= config.steps) {
    throw new Error(
      `pretrain: --warmup-steps ${config.warmupSteps} must be < --steps ${config.steps}`,
    );
  }
  return config;
}

/**
 * The config fields that change the trained function; output paths and budgets (minutes and the
 * step limit) do not, so a run can be resumed with a larger budget.
 */
function resumeKey(config: PretrainConfig): string {
  const {
    corpus: _c,
    out: _o,
    runDir: _r,
    maxMinutes: _m,
    steps: _n,
    samples: _s,
    threads: _t,
    ...rest
  } = config;
  return JSON.stringify(rest);
}

function record(run: { metrics: string }, entry: Record<string, number | string>): void {
  appendFileSync(run.metrics, JSON.stringify(entry) + '\n');
}

async function main(): Promise<void> {
  const config = parseArgs(process.argv.slice(2));
  const started = Date.now();
  mkdirSync(config.runDir, { recursive: true });
  const run = { metrics: join(config.runDir, 'metrics.jsonl') };

  // 1. Tokenizer and data.
  const codec = new TextCodec(config.out);
  const train = loadTokenStream(config.corpus, 'train', codec);
  const validation = loadTokenStream(config.corpus, 'validation', codec);
  const vocabSize = Object.keys(
    JSON.parse(readFileSync(join(config.out, 'tokenizer.json'), 'utf8')).model.vocab,
  ).length;
  process.stdout.write(
    `data: train ${train.tokens.length} tokens (${train.starts.length - 1} files), validation ` +
      `${validation.tokens.length} tokens (${validation.starts.length - 1} files), ` +
      `${((Date.now() - started) / 1000).toFixed(1)}s\n`,
  );

  // 2. Graphs.
  const shape: ModelShape = {
    vocabSize,
    hiddenSize: config.hidden,
    intermediateSize: config.intermediate,
    numLayers: config.layers,
    numHeads: config.heads,
    contextLength: config.seqLen,
    ropeTheta: 10000,
    rmsNormEps: 1e-5,
  };
  const settings: OptimizerSettings = {
    learningRate: config.learningRate,
    minLearningRate: config.minLearningRate,
    warmupSteps: config.warmupSteps,
    totalSteps: SCHEDULE_STEPS,
    beta1: 0.9,
    beta2: config.beta2,
    weightDecay: config.weightDecay,
    maxGradNorm: config.maxGradNorm,
  };
  const training = buildTrainGraph(shape, IGNORE, settings);
  const session = { threads: config.threads };
  const evalSession = await EngineSession.create(buildEvalGraph(shape, IGNORE), session);
  const logitsSession = await EngineSession.create(buildLogitsGraph(shape), session);

  // 3. Fresh start or resume.
  const key = resumeKey(config);
  const resumed = loadCheckpoint(config.runDir, shape, key);
  const initial: Record<string, HostTensor> = {};
  const specs = training.params;
  const init = initParameters(shape, config.seed);
  for (const p of specs)
    initial[p.name] = hostTensor('float32', p.shape as number[], init.get(p.name)!);
  const trainer = await TimedTrainer.create(training, initial, config.threads, resumed?.state);
  let tokens = resumed?.progress.tokens ?? 0;
  let trainSeconds = resumed?.progress.trainSeconds ?? 0;
  process.stdout.write(
    `model: ${parameterCount(shape)} parameters, ${JSON.stringify(shape)}\n` +
      (resumed
        ? `resumed from ${join(config.runDir, CHECKPOINT_FILE)} at step ${resumed.progress.step}\n`
        : 'fresh start\n'),
  );
  const quickRows = validationWindows(validation, config.seqLen, config.evalWindows);
  const checkpoint = () =>
    saveCheckpoint(config.runDir, trainer.state(), {
      step: trainer.step,
      tokens,
      trainSeconds,
      configJson: key,
    });

  // 4. Training loop: one line per step.
  const budgetSeconds = config.maxMinutes * 60;
  let stopReason = `reached --steps ${config.steps}`;
  while (trainer.step < config.steps) {
    if (trainSeconds >= budgetSeconds) {
      stopReason = `time budget of ${config.maxMinutes} min spent`;
      break;
    }
    const step = trainer.step + 1;
    // Data order depends only on (seed, step), so a resumed run sees the same batches.
    const batch = sampleBatch(
      train,
      codec,
      config.batchSize,
      config.seqLen,
      config.fimRate,
      new Rng(config.seed, 1000 + step),
    );
    const shapeBT = [config.batchSize, config.seqLen];
    const positions = new BigInt64Array(batch.inputs.length);
    for (let i = 0; i < positions.length; i++) positions[i] = BigInt(i % config.seqLen);
    const t0 = Date.now();
    const virtualStep = scheduleStep({
      step,
      warmupSteps: config.warmupSteps,
      maxSteps: config.steps,
      seconds: trainSeconds,
      budgetSeconds,
    });
    const metrics = await trainer.update(
      {
        input_ids: hostTensor('int64', shapeBT, batch.inputs),
        positions: hostTensor('int64', shapeBT, positions),
        targets: hostTensor('int64', shapeBT, batch.targets),
      },
      virtualStep,
    );
    const seconds = (Date.now() - t0) / 1000;
    trainSeconds += seconds;
    tokens += batch.inputs.length;
    const tokensPerSecond = batch.inputs.length / seconds;
    process.stdout.write(
      `step ${String(step).padStart(5)}/${config.steps} | loss ${metrics.loss.toFixed(4)} | ` +
        `lr ${metrics.learningRate.toExponential(2)} | grad ${metrics.gradNorm.toFixed(3)} | ` +
        `fim ${batch.fimRows}/${config.batchSize} | ${tokensPerSecond.toFixed(0)} tok/s | ` +
        `${seconds.toFixed(2)}s | ${(trainSeconds / 60).toFixed(1)} min\n`,
    );
    if (!Number.isFinite(metrics.loss))
      throw new Error(`pretrain: loss is ${metrics.loss} at step ${step}`);
    record(run, {
      kind: 'train',
      step,
      loss: metrics.loss,
      lr: metrics.learningRate,
      gradNorm: metrics.gradNorm,
      fimRows: batch.fimRows,
      tokens,
      seconds,
      tokensPerSecond,
      trainSeconds,
    });
    if (step % config.evalEvery === 0) {
      const quick = await evaluateLeftToRight(
        evalSession,
        trainer.parameters,
        quickRows,
        config.seqLen,
        config.batchSize,
      );
      process.stdout.write(
        `eval  ${String(step).padStart(5)} | val loss ${quick.loss.toFixed(4)} | ` +
          `val top-1 ${(quick.accuracy * 100).toFixed(2)}% | ${quick.tokens} tokens\n`,
      );
      record(run, { kind: 'eval', step, valLoss: quick.loss, valAccuracy: quick.accuracy, tokens });
    }
    if (step % config.checkpointEvery === 0) checkpoint();
  }
  checkpoint();
  process.stdout.write(`stopped: ${stopReason}; step ${trainer.step}, ${tokens} tokens\n`);

  // 5. Final evaluation on every validation window, FIM middles, samples, export, card.
  const evalStarted = Date.now();
  const allRows = validationWindows(validation, config.seqLen, Number.MAX_SAFE_INTEGER);
  const leftToRight = await evaluateLeftToRight(
    evalSession,
    trainer.parameters,
    allRows,
    config.seqLen,
    config.batchSize,
  );
  const fimRows = validationFimRows(validation, codec, config.seqLen, 128);
  const fim = await evaluateFimMiddle(
    evalSession,
    trainer.parameters,
    fimRows,
    config.seqLen,
    config.batchSize,
  );
  const report = (name: string, r: EvalResult) =>
    `${name}: loss ${r.loss.toFixed(4)}, top-1 ${(r.accuracy * 100).toFixed(2)}% over ${r.tokens} tokens`;
  process.stdout.write(
    `final ${report('validation', leftToRight)}\nfinal ${report('FIM middle', fim)}\n`,
  );
  record(run, {
    kind: 'final',
    step: trainer.step,
    valLoss: leftToRight.loss,
    valAccuracy: leftToRight.accuracy,
    valTokens: leftToRight.tokens,
    fimLoss: fim.loss,
    fimAccuracy: fim.accuracy,
    fimTokens: fim.tokens,
    trainSeconds,
  });

  const prompts = samplePrompts(
    readCorpus(join(config.corpus, 'validation.jsonl')),
    Math.ceil(config.samples / 2),
  );
  const samples: CardSample[] = [];
  for (const prompt of prompts.slice(0, config.samples)) {
    const ids = await greedyComplete(
      logitsSession,
      trainer.parameters,
      promptIds(codec, prompt),
      48,
      config.seqLen,
    );
    samples.push({ ...prompt, completion: codec.decode(ids) });
  }
  const evalSeconds = (Date.now() - evalStarted) / 1000;

  exportHuggingFace(config.out, shape, trainer.parameters, {
    step: String(trainer.step),
    tokens: String(tokens),
  });
  writeModelCard(join(config.out, 'MODEL_CARD.md'), {
    config,
    shape,
    parameters: parameterCount(shape),
    command: `npm run pretrain -- ${process.argv.slice(2).join(' ')}`.trim(),
    metricsFile: run.metrics,
    manifestFile: join(config.out, 'corpus-manifest.json'),
    trainTokensAvailable: train.tokens.length,
    validationTokens: validation.tokens.length,
    leftToRight,
    fim,
    samples,
    steps: trainer.step,
    tokens,
    trainSeconds,
    evalSeconds,
    stopReason,
  });
  await Promise.all([trainer.release(), evalSession.release(), logitsSession.release()]);
  process.stdout.write(
    `wrote ${config.out}/{config.json,generation_config.json,model.safetensors,MODEL_CARD.md} ` +
      `in ${((Date.now() - started) / 60000).toFixed(1)} min total\n`,
  );
}

if (require.main === module) {
  main().catch((error: Error) => {
    process.stderr.write(`${error.stack ?? error.message}\n`);
    process.exit(1);
  });
}
