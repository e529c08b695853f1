import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadModel } from '../../../src/model/loader';
import type { CodeTokenizer } from '../../../src/model/tokenizer';
import { RM_DEFAULTS, type RewardModelConfig } from '../../../src/rlhf/config';
import { headDigest, loadHead } from '../../../src/rlhf/heads';
import type { TrainingPair } from '../../../src/rlhf/preferences';
import { RewardScorer, encodePairs, trainRewardModel } from '../../../src/rlhf/rewardModel';
import { MetricsWriter } from '../../../src/rlhf/metrics';
import { directContext } from '../../../src/rlhf/trainerContext';

const MODEL = path.join(__dirname, '../../fixtures/model/tiny-llama');

/** A learnable preference: completions made of digits beat completions made of brackets. */
function pairs(n: number): TrainingPair[] {
  const out: TrainingPair[] = [];
  for (let i = 0; i < n; i++) {
    const prompt = `let v${i % 12} = `;
    out.push({
      recordId: `r${i}`,
      prompt,
      suffix: '',
      chosen: `${(i * 7919) % 1000};\n`,
      rejected: ['((', '[[{', '{{(', ')('][i % 4],
      target: i % 10 === 9 ? 0.5 : 1,
      margin: 0,
    });
  }
  return out;
}

const config = (over: Partial<RewardModelConfig> = {}): RewardModelConfig => ({
  ...RM_DEFAULTS,
  modelDir: MODEL,
  epochs: 6,
  batchSize: 8,
  learningRate: 1e-2,
  loraRank: 4,
  loraAlpha: 8,
  validationFraction: 0.25,
  patience: 10,
  maxPromptTokens: 16,
  maxCompletionTokens: 8,
  checkpointEvery: 5,
  ...over,
});

describe('rlhf reward model (tiny Llama fixture)', function () {
  this.timeout(120000);
  const model = loadModel(MODEL);

  it('learns a preference: loss falls, parameters change, validation accuracy rises; head round-trips (R5)', async () => {
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rm-'));
    const metrics: Record<string, number>[] = [];
    const result = await trainRewardModel({
      model,
      pairs: pairs(64),
      config: config(),
      runDir,
      resume: false,
      ctx: directContext({ onMetrics: (_s, row) => metrics.push(row) }),
    });
    const evals = metrics.filter((m) => 'eval/accuracy' in m);
    assert.ok(result.lastLoss < result.firstLoss, `loss ${result.firstLoss} -> ${result.lastLoss}`);
    assert.ok(evals.length >= 2);
    assert.ok(
      result.validation.accuracy >= 0.9,
      `validation accuracy ${result.validation.accuracy}`,
    );
    assert.ok(evals[evals.length - 1]['eval/loss'] < evals[0]['eval/loss']);
    // R5: the saved head is bitwise the trained head, and scores match after a fresh load.
    const saved = loadHead(result.outputDir, 'reward', model.config.hiddenSize);
    assert.strictEqual(headDigest(saved.head), headDigest(result.head));
    const fixed = encodePairs(model, pairs(3), config()).flatMap((p) => [p.chosen, p.rejected]);
    const live = await RewardScorer.create(model, result.adapter, result.head);
    const reloaded = await RewardScorer.load(model, result.outputDir);
    const a = await live.score(fixed);
    const b = await reloaded.score(fixed);
    a.forEach((x, i) => assert.ok(Math.abs(x - b[i]) <= 1e-6, `${x} vs ${b[i]}`));
    // The suffix limit and the completion mark are saved with the model, so scoring encodes
    // rows as training did.
    assert.deepStrictEqual(reloaded.encoding, {
      maxPromptTokens: 16,
      maxSuffixTokens: RM_DEFAULTS.maxSuffixTokens,
      maxCompletionTokens: 8,
      markCompletion: true,
      completionMark: 'fim',
    });
    await live.release();
    await reloaded.release();
    // run.json makes no claim about the head: it starts fresh in every run (a random init, never
    // loaded), and a field that said "headInitializedFresh: false" was false.
    const run = JSON.parse(fs.readFileSync(path.join(result.outputDir, 'run.json'), 'utf8'));
    assert.strictEqual(run.kind, 'reward-model');
    assert.ok(!('headInitializedFresh' in run), Object.keys(run).join(', '));
    fs.rmSync(path.join(result.outputDir, 'reward_head.safetensors'));
    await assert.rejects(RewardScorer.load(model, result.outputDir), /reward head not found at/);
  });

  it('records the completion mark it trained with (FIM tokens, else EOS) and scores rows with it', async () => {
    const noFim = {
      ...model,
      tokenizer: Object.create(model.tokenizer, { fim: { value: undefined } }) as CodeTokenizer,
    };
    const eosId = model.tokenizer.eosId;
    assert.ok(model.tokenizer.fim && eosId !== undefined, 'the fixture has FIM and EOS tokens');
    const data = pairs(16);
    const bare = {
      ...model,
      tokenizer: Object.create(noFim.tokenizer, { eosId: { value: undefined } }) as CodeTokenizer,
    };
    const cases = [
      { m: model, markCompletion: true, mark: 'fim' },
      { m: noFim, markCompletion: true, mark: 'eos' },
      { m: noFim, markCompletion: false, mark: undefined },
      { m: bare, markCompletion: true, mark: 'none' },
    ] as const;
    for (const c of cases) {
      const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rm-mark-'));
      const cfg = config({ epochs: 1, checkpointEvery: 0, markCompletion: c.markCompletion });
      const result = await trainRewardModel({
        model: c.m,
        pairs: data,
        config: cfg,
        runDir,
        resume: false,
        ctx: directContext(),
      });
      const run = JSON.parse(fs.readFileSync(path.join(result.outputDir, 'run.json'), 'utf8'));
      assert.strictEqual(run.completionMark, c.mark, `${c.mark}: run.json's completionMark`);
      assert.strictEqual(result.encoding.completionMark, c.mark);
      // The loaded scorer encodes a pair exactly as training did.
      const scorer = await RewardScorer.load(c.m, result.outputDir);
      const row = scorer.encode(data[0], data[0].chosen, {
        maxPromptTokens: 1,
        maxCompletionTokens: 1,
      });
      assert.deepStrictEqual(row, encodePairs(c.m, [data[0]], cfg)[0].chosen);
      if (c.mark === 'eos') assert.strictEqual(row.prompt.at(-1), eosId);
      if (c.mark === undefined) assert.notStrictEqual(row.prompt.at(-1), eosId);
      await scorer.release();
      if (c.mark === 'none') {
        // Scored with a model that has FIM tokens, its rows stay unmarked, as trained.
        const withFim = await RewardScorer.load(model, result.outputDir);
        const unmarked = encodePairs(model, [data[0]], { ...cfg, markCompletion: false });
        assert.deepStrictEqual(withFim.encode(data[0], data[0].chosen, cfg), unmarked[0].chosen);
        await withFim.release();
      }
      if (c.mark === 'fim') {
        // A model without FIM tokens cannot score it: refused at load, naming both folders.
        await assert.rejects(
          RewardScorer.load(noFim, result.outputDir),
          (e: Error) =>
            e.message.startsWith(path.join(result.outputDir, 'run.json')) &&
            e.message.includes(
              `completionMark "fim", but the model ${model.dir} has no FIM tokens`,
            ),
        );
      }
      fs.rmSync(runDir, { recursive: true, force: true });
    }
  });

  it('outputs a trained model even when no step beats the untrained one on validation', async () => {
    // A learning rate so small that validation accuracy never moves: every evaluation ties the
    // step-0 baseline. The output must still be the trained adapter (LoRA B no longer all zero),
    // not the untrained one that the baseline evaluation scored.
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rm-tie-'));
    const result = await trainRewardModel({
      model,
      pairs: pairs(16),
      config: config({ epochs: 2, learningRate: 1e-9, checkpointEvery: 0 }),
      runDir,
      resume: false,
      ctx: directContext({}),
    });
    const trained = [...result.adapter.factors.values()].some((f) => f.b.some((x) => x !== 0));
    assert.ok(trained, 'the output adapter is the untrained one (every LoRA B is zero)');
    fs.rmSync(runDir, { recursive: true, force: true });
  });

  /** The output folder's files, and run.json without its wall time. */
  function outputOf(dir: string) {
    const run = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8'));
    delete run.seconds;
    const bytes = (name: string) => fs.readFileSync(path.join(dir, name)).toString('base64');
    return {
      run,
      adapter: bytes('adapter_model.safetensors'),
      head: bytes('reward_head.safetensors'),
    };
  }

  /** The rows of a run's metrics file, without the time each was written. */
  function metricRows(runDir: string) {
    const rows = MetricsWriter.read(path.join(runDir, 'reward-model-metrics.jsonl'));
    return rows.map(({ time, ...row }) => (assert.ok(time), row));
  }

  it('resumes from the last checkpoint and ends where an uninterrupted run ends; a finished run resumes to its output', async () => {
    const data = pairs(32);
    const straightDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rm-'));
    // 3 steps per epoch: checkpoints at steps 3 and 6, the last one at the end of the run.
    const cfg = config({ epochs: 2, checkpointEvery: 3 });
    const straight = await trainRewardModel({
      model,
      pairs: data,
      config: cfg,
      runDir: straightDir,
      resume: false,
      ctx: directContext(),
    });
    assert.strictEqual(straight.steps, 6);
    const expected = outputOf(straight.outputDir);
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rm-'));
    const controller = new AbortController();
    let steps = 0;
    await assert.rejects(
      trainRewardModel({
        model,
        pairs: data,
        config: cfg,
        runDir,
        resume: false,
        ctx: directContext({
          signal: controller.signal,
          onMetrics: (_s, row) => {
            if ('loss/train' in row && ++steps === 4) controller.abort();
          },
        }),
      }),
      (e: Error) => e.name === 'AbortError',
    );
    const resumed = await trainRewardModel({
      model,
      pairs: data,
      config: cfg,
      runDir,
      resume: true,
      ctx: directContext(),
    });
    assert.strictEqual(resumed.steps, straight.steps);
    assert.strictEqual(headDigest(resumed.head), headDigest(straight.head));
    assert.deepStrictEqual(outputOf(resumed.outputDir), expected);
    // Each row once, as the straight run wrote them: step 4's row, written before the
    // interruption and again by the resume, is not there twice.
    const straightRows = metricRows(straightDir);
    assert.strictEqual(straightRows.filter((row) => 'loss/train' in row).length, 6);
    assert.deepStrictEqual(metricRows(runDir), straightRows);

    // The run finished (or crashed after its last checkpoint, before writing its output):
    // a resume has no step left and writes the checkpoint's best model and numbers.
    fs.rmSync(straight.outputDir, { recursive: true });
    const again = await trainRewardModel({
      model,
      pairs: data,
      config: cfg,
      runDir: straightDir,
      resume: true,
      ctx: directContext(),
    });
    assert.deepStrictEqual(outputOf(again.outputDir), expected);
    assert.deepStrictEqual(again.validation, straight.validation);
    assert.strictEqual(again.lastLoss, straight.lastLoss);
    assert.deepStrictEqual(metricRows(straightDir), straightRows);
    fs.rmSync(straightDir, { recursive: true, force: true });
    fs.rmSync(runDir, { recursive: true, force: true });
  });
});
