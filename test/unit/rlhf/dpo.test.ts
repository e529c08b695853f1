import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadModel } from '../../../src/model/loader';
import { loadPeftAdapter } from '../../../src/model/lora';
import { sha256 } from '../../../src/rlhf/checkpoint';
import { DPO_DEFAULTS, type DpoConfig } from '../../../src/rlhf/config';
import { DPO_DIR, trainDpo } from '../../../src/rlhf/dpo';
import { MetricsWriter } from '../../../src/rlhf/metrics';
import { directContext } from '../../../src/rlhf/trainerContext';
import { SMALL_PAIR_TRAINER, toyPairs } from '../../support/tinyTraining';

const MODEL = path.join(__dirname, '../../fixtures/model/tiny-llama');

describe('rlhf DPO (tiny Llama fixture)', function () {
  this.timeout(120000);
  /** 48 pairs over 12 prompts and four bracket openings: enough for the loss to fall. */
  const learnablePairs = (suffix?: (i: number) => string) =>
    toyPairs(48, {
      prompts: 12,
      chosen: (i) => `${(i * 37) % 100};\n`,
      rejected: ['((', '[[{', '{{(', ')('],
      suffix,
    });
  /** Settings under which the loss of those pairs falls within 4 epochs of 5 steps. */
  const learning = {
    ...DPO_DEFAULTS,
    modelDir: MODEL,
    epochs: 4,
    batchSize: 8,
    learningRate: 1e-2,
    loraRank: 4,
    loraAlpha: 8,
    maxPromptTokens: 16,
    maxCompletionTokens: 8,
    validationFraction: 0.25,
  };

  it('starts at loss ln 2 (policy = reference), the loss falls and the adapter changes (with and without suffixes)', async () => {
    const model = loadModel(MODEL);
    // Half the judgments were made mid-file: those pairs train on fill-in-the-middle prompts.
    const pairs = learnablePairs((i) => (i % 2 === 0 ? '' : '\nexport { v0 };\n'));
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dpo-'));
    const rows: Record<string, number>[] = [];
    const result = await trainDpo({
      model,
      pairs,
      config: { ...learning, patience: 5 },
      runDir,
      resume: false,
      ctx: directContext({ onMetrics: (_s, row) => rows.push(row) }),
    });
    assert.ok(Math.abs(result.firstLoss - Math.LN2) < 1e-5, `first loss ${result.firstLoss}`);
    assert.ok(
      result.lastLoss < result.firstLoss - 0.1,
      `loss ${result.firstLoss} -> ${result.lastLoss}`,
    );
    assert.ok(result.validationAccuracy > 0.8, `validation accuracy ${result.validationAccuracy}`);
    const saved = loadPeftAdapter(result.outputDir, model);
    assert.ok([...saved.factors.values()].some((f) => f.b.some((x) => x !== 0)));
    assert.ok(rows.some((r) => 'rewards/margins' in r && 'logps/chosen' in r));
  });

  it("a run interrupted after a checkpoint and resumed, or finished and resumed, writes the straight run's output", async () => {
    const model = loadModel(MODEL);
    const pairs = learnablePairs();
    // 5 steps per epoch: a checkpoint after each epoch's evaluation.
    const base = { ...learning, checkpointEvery: 5 };
    /** The output folder's files, and run.json without its wall time. */
    const outputOf = (dir: string) => {
      const run = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8'));
      delete run.seconds;
      const adapter = sha256(fs.readFileSync(path.join(dir, 'adapter_model.safetensors')));
      return { run, adapter };
    };
    const train = (config: DpoConfig, runDir: string, resume: boolean, abortAt?: number) => {
      const controller = new AbortController();
      let steps = 0;
      const ctx = directContext({
        signal: controller.signal,
        onMetrics: (_s, row) => {
          if ('loss' in row && ++steps === abortAt) controller.abort();
        },
      });
      return trainDpo({ model, pairs, config, runDir, resume, ctx });
    };
    /** The rows of a run's metrics file, without the time each was written. */
    const metricRows = (runDir: string) =>
      MetricsWriter.read(path.join(runDir, 'dpo-metrics.jsonl')).map(
        ({ time, ...row }) => (assert.ok(time), row),
      );
    const dirs: string[] = [];
    const tmp = (name: string) => {
      dirs.push(fs.mkdtempSync(path.join(os.tmpdir(), name)));
      return dirs[dirs.length - 1];
    };

    // Interrupted at step 7 and resumed from the checkpoint of step 5. Validation accuracy peaks
    // early, so with patience 1 the straight run stops early; which evaluation is the best and
    // when patience runs out depend on the evaluations before the resume.
    const stopping = { ...base, patience: 1 };
    const straightDir = tmp('dpo-straight-');
    const straight = await train(stopping, straightDir, false);
    assert.ok(straight.earlyStopped && straight.steps > 5, `${straight.steps} steps`);
    const expected = outputOf(straight.outputDir);
    const runDir = tmp('dpo-resumed-');
    await assert.rejects(train(stopping, runDir, false, 7), (e: Error) => e.name === 'AbortError');
    const resumed = await train(stopping, runDir, true);
    assert.deepStrictEqual(outputOf(resumed.outputDir), expected);
    assert.strictEqual(resumed.validationAccuracy, straight.validationAccuracy);
    // Each row once, as the straight run wrote them: the rows of steps 6 and 7, written before
    // the interruption and again by the resume, are not there twice.
    assert.deepStrictEqual(metricRows(runDir), metricRows(straightDir));

    // Finished (its last checkpoint at its last step), or crashed after that checkpoint before
    // writing its output: nothing is left to train; the output and numbers are the run's own.
    const full = { ...base, epochs: 2, patience: 10 };
    const finishedDir = tmp('dpo-finished-');
    const finished = await train(full, finishedDir, false);
    assert.strictEqual(finished.steps, 10);
    const finishedOutput = outputOf(finished.outputDir);
    const finishedRows = metricRows(finishedDir);
    assert.ok(Number.isFinite(finished.validationAccuracy));
    fs.rmSync(finished.outputDir, { recursive: true });
    const again = await train(full, finishedDir, true);
    assert.deepStrictEqual(outputOf(again.outputDir), finishedOutput);
    assert.strictEqual(again.validationAccuracy, finished.validationAccuracy);
    assert.strictEqual(again.validationLoss, finished.validationLoss);
    assert.deepStrictEqual(metricRows(finishedDir), finishedRows);
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('checkpoints every few steps by default and writes what a run without checkpoints writes', async () => {
    const model = loadModel(MODEL);
    const pairs = learnablePairs();
    // 5 steps per epoch: the old default (20) wrote no checkpoint in a run this long.
    const config = (checkpointEvery: number) => ({ ...learning, epochs: 2, checkpointEvery });
    const train = async (checkpointEvery: number) => {
      const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dpo-ck-'));
      const written: number[] = [];
      const ctx = { ...directContext(), checkpoint: (step: number) => written.push(step) };
      const result = await trainDpo({
        model,
        pairs,
        config: config(checkpointEvery),
        runDir,
        resume: false,
        ctx,
      });
      const adapter = sha256(
        fs.readFileSync(path.join(result.outputDir, 'adapter_model.safetensors')),
      );
      fs.rmSync(runDir, { recursive: true, force: true });
      return { written, adapter, steps: result.steps };
    };
    const withDefault = await train(DPO_DEFAULTS.checkpointEvery);
    const without = await train(0);
    assert.strictEqual(withDefault.steps, 10);
    assert.deepStrictEqual(withDefault.written, [5, 10]);
    assert.deepStrictEqual(without.written, []);
    assert.strictEqual(withDefault.adapter, without.adapter);
  });

  it('refuses to resume from a checkpoint whose step counter is damaged, and keeps it', async () => {
    const model = loadModel(MODEL);
    const pairs = toyPairs(16, { prompts: 4, rejected: ['(('] });
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dpo-resume-'));
    const config = { ...DPO_DEFAULTS, ...SMALL_PAIR_TRAINER, epochs: 1 };
    await trainDpo({ model, pairs, config, runDir, resume: false, ctx: directContext() });
    const checkpoints = path.join(runDir, 'checkpoints', DPO_DIR);
    const latest = fs.readFileSync(path.join(checkpoints, 'latest'), 'utf8').trim();
    const manifest = path.join(checkpoints, latest, 'manifest.json');
    const good = JSON.parse(fs.readFileSync(manifest, 'utf8'));
    // The manifest is not covered by the file digests; `step < total` is false for these, so
    // a resume that trusted them would end at once and output the checkpoint as trained.
    for (const step of [undefined, 'x', -1, 1.5]) {
      const text = JSON.stringify({ ...good, state: { ...good.state, step } });
      fs.writeFileSync(manifest, text);
      await assert.rejects(
        trainDpo({ model, pairs, config, runDir, resume: true, ctx: directContext() }),
        new RegExp(
          `manifest\\.json: "state\\.step" is ${step === undefined ? 'undefined' : JSON.stringify(step)}; ` +
            'allowed: a non-negative integer; checkpoint step-\\d+ is damaged',
        ),
      );
      assert.strictEqual(fs.readFileSync(manifest, 'utf8'), text, 'the checkpoint was changed');
    }
  });
});
