/**
 * The promotion gate as a job in a real model-host process on the default model: a tuned
 * adapter against the base model and against itself, judged by a reward model, on the prompts
 * both stages held out.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Logger } from '../../../src/extension/log';
import { ModelHostClient } from '../../../src/extension/modelHostClient';
import { runHostJob } from '../../../src/extension/trainPipeline';
import { loadModel } from '../../../src/model/loader';
import { initLora, savePeftAdapter } from '../../../src/model/lora';
import type { TrainDoneEvent, TrainingEvent } from '../../../src/protocol/training';
import { saveHead } from '../../../src/rlhf/heads';
import { writeHeldOutPrompts } from '../../../src/rlhf/promotionGate';
import { rewardVerdict, winRateByPrompt, type ComparisonItem } from '../../../src/rlhf/evaluate';
import { decidePromotion } from '../../../src/rlhf/promotionRule';
import { createRng, normal } from '../../../src/rlhf/random';

const HOST = path.join(__dirname, '../../../src/host/main.ts');
const MODEL = path.resolve(__dirname, '../../../models/default');

const PROMPTS = [
  'function add(a, b) {\n  return ',
  'const items = [1, 2, 3];\nconst doubled = items.map(',
  'def greet(name):\n    print(',
  'for (let i = 0; i < n; i++) {\n    ',
  'import * as path from ',
];

const quiet: Logger = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };

describe('promotion gate job in a real model host (default model)', function () {
  this.timeout(180_000);
  let dir: string;
  let client: ModelHostClient;
  let rewardModelDir: string;
  let tunedDir: string;

  before(() => {
    assert.ok(fs.existsSync(path.join(MODEL, 'config.json')), `${MODEL} has no model`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gate-'));
    const model = loadModel(MODEL);
    const lora = { rank: 2, alpha: 4, targets: ['q_proj', 'v_proj'] as const, useRslora: false };
    const rng = createRng(11);
    // Reward model: base trunk (B = 0) and a random head, as a reward-model run writes it.
    rewardModelDir = path.join(dir, 'rm', 'reward-model');
    savePeftAdapter(rewardModelDir, initLora(model, { ...lora, targets: [...lora.targets] }, 1));
    const hidden = model.config.hiddenSize;
    saveHead(rewardModelDir, 'reward', {
      weight: Float32Array.from({ length: hidden }, () => normal(rng) / Math.sqrt(hidden)),
      bias: new Float32Array(1),
    });
    // The tuned adapter: B moved off zero, so it samples differently from the base.
    tunedDir = path.join(dir, 'dpo', 'policy');
    const tuned = initLora(model, { ...lora, targets: [...lora.targets] }, 2);
    for (const f of tuned.factors.values()) f.b.forEach((_, i) => (f.b[i] = 0.05 * normal(rng)));
    savePeftAdapter(tunedDir, tuned, model.dir);
    // The reward model held out the first four prompts, the tuned stage all five.
    writeHeldOutPrompts(rewardModelDir, {
      stage: 'rm',
      seed: 0,
      validationFraction: 0.2,
      prompts: PROMPTS.slice(0, 4),
    });
    writeHeldOutPrompts(tunedDir, {
      stage: 'dpo',
      seed: 0,
      validationFraction: 0.2,
      prompts: PROMPTS,
    });
    client = new ModelHostClient({ modulePath: HOST, execArgv: ['--import', 'tsx'], log: quiet });
  });
  after(() => {
    client?.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const gate = async (jobId: string, config: Record<string, unknown>) => {
    const events: TrainingEvent[] = [];
    const done: TrainDoneEvent = await runHostJob(
      client,
      {
        type: 'train/start',
        jobId,
        kind: 'gate',
        runDir: path.join(dir, jobId),
        resume: false,
        config: {
          modelDir: MODEL,
          rewardModelDir,
          adapterDir: tunedDir,
          samplesPerPrompt: 2,
          maxNewTokens: 8,
          ...config,
        },
      },
      { signal: new AbortController().signal, log: quiet, onEvent: (e) => events.push(e) },
    );
    return { done, events };
  };

  let againstBase: TrainDoneEvent;

  it('compares the tuned adapter with the base on the prompts both stages held out', async () => {
    const started = Date.now();
    const { done, events } = await gate('vs-base', {});
    const seconds = (Date.now() - started) / 1000;
    assert.strictEqual(done.status, 'completed', JSON.stringify(done));
    const s = done.summary!;
    assert.strictEqual(s.heldOutPrompts, 4, 'the fifth prompt was not held out by the RM');
    assert.strictEqual(s.prompts, 4);
    assert.strictEqual(s.comparisons, 8);
    assert.strictEqual(s.wins + s.losses + s.ties, 8);
    assert.ok(Number.isFinite(s.meanKl) && s.meanKl !== 0, `mean KL ${s.meanKl}`);
    assert.ok(Number.isFinite(s.meanRewardTuned) && Number.isFinite(s.meanRewardBaseline));
    const written = JSON.parse(
      fs.readFileSync(path.join(dir, 'vs-base', 'evaluation.json'), 'utf8'),
    );
    // The verdict is the rule applied to the job's own samples, 2 per prompt, clustered by prompt.
    const rewardWinRate = winRateByPrompt(written.items as ComparisonItem[], rewardVerdict);
    assert.deepStrictEqual(
      [rewardWinRate.prompts, s.winRateLow, s.winRateHigh, s.effectiveComparisons],
      [4, rewardWinRate.low, rewardWinRate.high, rewardWinRate.effectiveN],
    );
    assert.deepStrictEqual(
      done.decision,
      decidePromotion(
        { prompts: s.prompts, rewardWinRate, meanKl: s.meanKl, baseline: 'the base model' },
        { minPrompts: 4, klBudget: 6 },
      ),
    );
    // This reward model has no run.json: scored with the gate's limits, unmarked, and the log
    // says so.
    const warnings = events.flatMap((e) =>
      e.type === 'train/log' && e.level === 'warn' ? [e.message] : [],
    );
    assert.deepStrictEqual(warnings, [
      `reward model ${rewardModelDir} has no run.json, so the token limits it was trained with ` +
        "are unknown; scoring with this job's limits instead (maxPromptTokens 96, " +
        'maxSuffixTokens 32, maxCompletionTokens 32), which cut its inputs differently if its ' +
        'training used others, and with rows unmarked (no completion mark): a reward model ' +
        'trained with markCompletion (the default) scores them off-distribution',
    ]);
    const progress = events.filter((e) => e.type === 'train/progress');
    assert.ok(progress.length >= 8, `only ${progress.length} progress events`);
    const last = progress[progress.length - 1];
    assert.ok(last.type === 'train/progress' && last.step === last.totalSteps);
    assert.strictEqual(written.items.length, 8);
    assert.ok(
      written.items.every((item: { prompt: string }) => PROMPTS.slice(0, 4).includes(item.prompt)),
    );
    againstBase = done;
    console.log(`      gate: 4 prompts x 2 samples in ${seconds.toFixed(1)} s`);
  });

  it('never promotes an adapter over itself: same seeds give the same samples, all ties', async () => {
    const { done } = await gate('vs-self', {
      baselineAdapterDir: tunedDir,
      baselineName: 'adapter self',
    });
    assert.strictEqual(done.status, 'completed', JSON.stringify(done));
    const s = done.summary!;
    assert.strictEqual(s.ties, 8, JSON.stringify(s));
    assert.strictEqual(s.winRate, 0.5);
    // The KL is against the base model, whatever the baseline: same samples, same KL.
    assert.strictEqual(s.meanKl, againstBase.summary!.meanKl);
    assert.strictEqual(done.decision!.promote, false);
    assert.match(done.decision!.reason, /against adapter self 50\.0% .*not above 50%/);
  });

  it('fails with the file named when the tuned adapter has no held-out prompts', async () => {
    const bare = path.join(dir, 'bare');
    fs.cpSync(tunedDir, bare, { recursive: true });
    fs.rmSync(path.join(bare, 'held-out-prompts.json'));
    const { done } = await gate('bare', { adapterDir: bare });
    assert.strictEqual(done.status, 'failed');
    assert.match(done.error!, /bare\/held-out-prompts\.json is missing/);
    assert.strictEqual(done.decision, undefined);
  });
});
