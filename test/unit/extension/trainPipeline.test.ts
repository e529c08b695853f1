import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { appendOracleJudgments } from '../../support/oracleJudgments';
import { recordingLogger } from '../../support/recordingLogger';
import { ModelHostClient } from '../../../src/extension/modelHostClient';
import {
  decidePromotion,
  describeResult,
  KL_BUDGET,
  readTrainingAlgorithm,
  runHostJob,
  runTrainPipeline,
} from '../../../src/extension/trainPipeline';
import { TrainingDashboardFeed } from '../../../src/extension/trainingDashboardFeed';
import type { TrainingEvent, TrainingKind } from '../../../src/protocol/training';
import {
  parseHostToTrainingDashboard,
  type HostToTrainingDashboard,
} from '../../../src/protocol/trainingDashboard';
import { loadModel } from '../../../src/model/loader';
import { initLora, savePeftAdapter } from '../../../src/model/lora';
import { rewardVerdict, winRateByPrompt, type ComparisonItem } from '../../../src/rlhf/evaluate';
import { decidePromotion as decideByRule } from '../../../src/rlhf/promotionRule';

const HOST = path.join(__dirname, '../../../src/host/main.ts');
const MODEL = path.join(__dirname, '../../fixtures/model/tiny-llama');

async function judgments(dir: string): Promise<string> {
  const file = path.join(dir, 'prefs.jsonl');
  await appendOracleJudgments(file, 32, 'm');
  return file;
}

const small = { loraRank: 2, maxPromptTokens: 12, maxCompletionTokens: 6, checkpointEvery: 0 };

describe('Train on my judgments: decisions', () => {
  const gate = (
    status: 'completed' | 'cancelled' | 'failed' | 'early-stopped',
    extra: Record<string, unknown> = {},
  ) => ({ type: 'train/done' as const, jobId: 'r-gate', status, ...extra });

  it("promotes exactly when the gate's verdict says so, and never without a completed gate", () => {
    const verdict = { promote: true, reason: 'reward-model win rate 80.0% [...]' };
    assert.deepStrictEqual(decidePromotion(gate('completed', { decision: verdict })), verdict);
    const keep = { promote: false, reason: 'only 3 held-out prompts' };
    assert.deepStrictEqual(decidePromotion(gate('completed', { decision: keep })), keep);
    assert.deepStrictEqual(decidePromotion(gate('completed')), {
      promote: false,
      reason: 'the promotion gate gave no verdict',
    });
    assert.deepStrictEqual(decidePromotion(gate('cancelled', { decision: verdict })), {
      promote: false,
      reason: 'the promotion gate ended cancelled',
    });
    assert.deepStrictEqual(decidePromotion(gate('failed', { error: 'adapter gone' })), {
      promote: false,
      reason: 'the promotion gate failed: adapter gone',
    });
  });

  it('reports a job lost when the model host is replaced, and drops invalid or foreign events', async () => {
    const sent: unknown[] = [];
    const listeners = new Map<string, (m: Record<string, unknown>) => void>();
    let pid = 100;
    const channel = {
      send: (m: unknown) => sent.push(m),
      on: (type: string, listener: (m: Record<string, unknown>) => void) => {
        listeners.set(type, listener);
        return { dispose: () => listeners.delete(type) };
      },
      request: async () => ({ pid, model: null }),
    } as unknown as Parameters<typeof runHostJob>[0];
    const log = recordingLogger();
    const seen: TrainingEvent[] = [];
    const command = {
      type: 'train/start' as const,
      jobId: 'j1',
      kind: 'rm' as const,
      runDir: '/r',
      resume: false,
      config: {},
    };
    const job = runHostJob(channel, command, {
      signal: new AbortController().signal,
      log,
      livenessMs: 20,
      onEvent: (e) => seen.push(e),
    });
    await new Promise((r) => setTimeout(r, 5));
    assert.deepStrictEqual(sent, [command]);
    const progress = listeners.get('train/progress')!;
    progress({ type: 'train/progress', jobId: 'other', phase: 'p', step: 1, totalSteps: 2 });
    progress({ type: 'train/progress', jobId: 'j1', phase: 'p', step: -1, totalSteps: 2 });
    progress({ type: 'train/progress', jobId: 'j1', phase: 'p', step: 1, totalSteps: 2 });
    assert.deepStrictEqual(
      seen.map((e) => e.type === 'train/progress' && e.step),
      [1],
    );
    assert.ok(log.lines.some((l) => /dropped training event of job j1: .*"step"/.test(l)));
    pid = 101; // the host crashed and was restarted
    const done = await job;
    assert.strictEqual(done.status, 'failed');
    // Running the command again offers to resume the run; no folder /r, so no checkpoints.
    assert.strictEqual(
      done.error,
      'model host restarted (pid 100 -> 101); the job was lost. Run "Code RLHF: Train on my ' +
        'judgments" again to resume this run (the reward model starts over: it wrote no ' +
        'checkpoint).',
    );
    assert.strictEqual(listeners.size, 0, 'listeners left behind');
  });

  it('says that a lost job left checkpoints only when its run folder holds some', async () => {
    /** The error of a job whose model host is replaced at once. */
    const lostJobError = async (runDir: string) => {
      let pid = 100;
      const channel = {
        send: () => undefined,
        on: () => ({ dispose: () => undefined }),
        request: async () => ({ pid: pid++, model: null }),
      } as unknown as Parameters<typeof runHostJob>[0];
      const command = { type: 'train/start' as const, jobId: 'j', kind: 'rm' as const };
      const done = await runHostJob(
        channel,
        { ...command, runDir, resume: false, config: {} },
        { signal: new AbortController().signal, log: recordingLogger(), livenessMs: 5 },
      );
      return done.error!;
    };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lost-job-'));
    try {
      // Lost before its first checkpoint: a run folder with only an empty checkpoint folder.
      fs.mkdirSync(path.join(dir, 'checkpoints', 'reward-model'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'metrics.jsonl'), '');
      assert.match(
        await lostJobError(dir),
        /the job was lost\. Run .* again to resume this run \(the reward model starts over: it wrote no checkpoint\)\.$/,
      );
      fs.mkdirSync(path.join(dir, 'checkpoints', 'reward-model', 'step-0000002'));
      assert.ok(
        (await lostJobError(dir)).endsWith(
          `again to resume this run from its last checkpoint in ${dir}.`,
        ),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads the algorithm setting and names a bad value', () => {
    assert.deepStrictEqual(readTrainingAlgorithm(undefined), { algorithm: 'ppo' });
    assert.deepStrictEqual(readTrainingAlgorithm('dpo'), { algorithm: 'dpo' });
    const bad = readTrainingAlgorithm('sft');
    assert.strictEqual(bad.algorithm, 'ppo');
    assert.match(bad.problem!, /codeRlhf\.trainingAlgorithm is "sft"; allowed: "ppo", "dpo"/);
  });
});

describe('Train on my judgments against a real model host', function () {
  this.timeout(180_000);
  let client: ModelHostClient;
  let log: ReturnType<typeof recordingLogger>;
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'train-cmd-'));
    log = recordingLogger();
    client = new ModelHostClient({ modulePath: HOST, execArgv: ['--import', 'tsx'], log });
  });
  afterEach(() => {
    client.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs the reward model, DPO and the promotion gate against the previous adapter, streaming to the dashboard feed', async () => {
    const dataFile = await judgments(dir);
    // The previous policy: a fresh adapter of the fixture model (B = 0, so it equals the base).
    const fixture = loadModel(MODEL);
    const baselineDir = path.join(dir, 'previous');
    savePeftAdapter(
      baselineDir,
      initLora(fixture, { rank: 2, alpha: 4, targets: ['q_proj', 'v_proj'], useRslora: false }),
    );
    const posted: HostToTrainingDashboard[] = [];
    const feed = new TrainingDashboardFeed((m) => posted.push(m));
    feed.runStarted('r1', 'dpo', dir);
    const events: Array<[TrainingKind, TrainingEvent]> = [];
    const result = await runTrainPipeline({
      client,
      log,
      algorithm: 'dpo',
      modelDir: MODEL,
      dataFile,
      runDir: path.join(dir, 'run'),
      runId: 'r1',
      signal: new AbortController().signal,
      baseline: { name: 'run-0 dpo', path: baselineDir },
      overrides: {
        // A quarter of 16 prompts: 4 held out, the fewest the gate may decide on.
        rm: { ...small, epochs: 1, batchSize: 4, learningRate: 0.01, validationFraction: 0.25 },
        dpo: { ...small, epochs: 1, batchSize: 4, learningRate: 0.01, validationFraction: 0.25 },
        gate: { samplesPerPrompt: 2, maxNewTokens: 4, maxPromptTokens: 12 },
      },
      onStage: (kind, command) => feed.stageStarted('r1', kind, command),
      onEvent: (kind, event) => {
        events.push([kind, event]);
        feed.event('r1', kind, event);
      },
    });
    assert.deepStrictEqual(
      result.stages.map((s) => [s.kind, s.done.status !== 'failed']),
      [
        ['rm', true],
        ['dpo', true],
        ['gate', true],
      ],
      JSON.stringify(result),
    );
    assert.ok(result.promotion, 'no promotion decision');
    assert.ok(fs.existsSync(path.join(result.promotion.adapterPath, 'adapter_model.safetensors')));
    // The gate compared the DPO adapter with the baseline adapter on the 4 held-out prompts,
    // 2 samples each, and its verdict follows the rule on its own numbers.
    const gateDone = result.stages[2].done;
    const e = gateDone.summary!;
    assert.strictEqual(e.prompts, 4, JSON.stringify(e));
    assert.strictEqual(e.comparisons, 8);
    assert.strictEqual(e.wins + e.losses + e.ties, 8);
    assert.ok(e.winRateLow <= e.winRate && e.winRate <= e.winRateHigh);
    assert.ok(Number.isFinite(e.meanKl));
    assert.deepStrictEqual(result.promotion.evaluation, e);
    const written = JSON.parse(
      fs.readFileSync(path.join(dir, 'run', 'gate', 'evaluation.json'), 'utf8'),
    );
    const expected = decideByRule(
      {
        prompts: e.prompts,
        rewardWinRate: winRateByPrompt(written.items as ComparisonItem[], rewardVerdict),
        meanKl: e.meanKl,
        baseline: 'adapter run-0 dpo',
      },
      { minPrompts: 4, klBudget: KL_BUDGET },
    );
    assert.deepStrictEqual(
      { promote: result.promotion.promote, reason: result.promotion.reason },
      expected,
    );
    const gateConfig = posted.find((m) => m.type === 'trainingStage' && m.stage === 'gate');
    assert.ok(gateConfig?.type === 'trainingStage');
    assert.strictEqual(gateConfig.config.baselineAdapterDir, baselineDir);
    assert.strictEqual(gateConfig.config.adapterDir, result.promotion.adapterPath);
    assert.ok(
      events.some(([k, ev]) => k === 'gate' && ev.type === 'train/progress'),
      'the gate sent no progress',
    );
    assert.strictEqual(written.items.length, 8);
    assert.deepStrictEqual(written.decision, gateDone.decision);
    assert.match(
      describeResult(result),
      /^reward model (completed|early-stopped) \(validation accuracy/,
    );
    // Events of both jobs arrived, validated, tagged with their stage.
    assert.ok(
      events.some(
        ([k, e]) => k === 'rm' && e.type === 'train/metrics' && 'eval/accuracy' in e.metrics,
      ),
    );
    assert.ok(
      events.some(
        ([k, e]) => k === 'dpo' && e.type === 'train/metrics' && 'rewards/accuracies' in e.metrics,
      ),
    );
    // Every dashboard message survives JSON and the webview's validation.
    for (const message of posted) {
      assert.deepStrictEqual(
        parseHostToTrainingDashboard(JSON.parse(JSON.stringify(message))),
        message,
      );
    }
    const stage = posted.find((m) => m.type === 'trainingStage' && m.stage === 'dpo');
    assert.ok(stage?.type === 'trainingStage' && stage.config.dataFile === dataFile);
    assert.strictEqual(
      feed.replay().length,
      posted.length - posted.filter((m) => m.type === 'trainingProgress').length + 1,
    );
  });

  it('runs PPO against the reward model the first stage trained', async () => {
    const dataFile = await judgments(dir);
    const stages: Array<[TrainingKind, Record<string, unknown>]> = [];
    const metrics = new Set<string>();
    const result = await runTrainPipeline({
      client,
      log,
      algorithm: 'ppo',
      modelDir: MODEL,
      dataFile,
      runDir: path.join(dir, 'run'),
      runId: 'r3',
      signal: new AbortController().signal,
      overrides: {
        rm: { ...small, epochs: 1, batchSize: 4, learningRate: 0.01 },
        ppo: {
          ...small,
          iterations: 2,
          promptsPerBatch: 2,
          samplesPerPrompt: 2,
          maxNewTokens: 4,
          minibatchSize: 4,
          ppoEpochs: 1,
        },
      },
      onStage: (kind, command) => stages.push([kind, command.config]),
      onEvent: (kind, event) => {
        if (kind === 'ppo' && event.type === 'train/metrics') {
          Object.keys(event.metrics).forEach((k) => metrics.add(k));
        }
      },
    });
    assert.deepStrictEqual(
      result.stages.map((s) => s.kind),
      ['rm', 'ppo', 'gate'],
      JSON.stringify(result),
    );
    assert.notStrictEqual(result.status, 'failed', JSON.stringify(result));
    assert.strictEqual(stages[1][1].rewardModelDir, result.stages[0].done.outputPath);
    assert.strictEqual(stages[1][1].targetKl, KL_BUDGET);
    for (const name of [
      'objective/kl',
      'objective/entropy',
      'objective/scores',
      'loss/value_avg',
    ]) {
      assert.ok(metrics.has(name), `PPO sent no ${name}; got ${[...metrics].join(', ')}`);
    }
    // 16 prompts hold out 3, fewer than the gate's default minimum of 4: no sampling, and a
    // verdict that says why.
    const gateDone = result.stages[2].done;
    assert.strictEqual(gateDone.status, 'completed', JSON.stringify(gateDone));
    assert.deepStrictEqual(gateDone.summary, { heldOutPrompts: 3, prompts: 3 });
    assert.deepStrictEqual(result.promotion, {
      promote: false,
      reason:
        'only 3 held-out prompts to compare on (at least 4 needed); judge comparisons in more ' +
        'places and train again',
      adapterPath: result.stages[1].done.outputPath,
      evaluation: gateDone.summary,
    });
    assert.strictEqual(stages[2][1].baselineAdapterDir, '');
    assert.strictEqual(stages[2][1].klBudget, KL_BUDGET);
    assert.match(describeResult(result), /promotion gate completed \(3 held-out prompts\)/);

    // The same run resumed after its PPO had stopped early: only the gate runs, and the run
    // ends as its stages did then, with their numbers.
    const [rm, ppo] = result.stages.map((s) => s.done);
    const ppoSummary = { ...ppo.summary, heldOutRewardBefore: 0.25, heldOutRewardAfter: 0.5 };
    const reused = await runTrainPipeline({
      client,
      log,
      algorithm: 'ppo',
      modelDir: MODEL,
      dataFile,
      runDir: path.join(dir, 'run'),
      runId: 'r3',
      signal: new AbortController().signal,
      finished: {
        rm: { outputPath: rm.outputPath!, status: 'completed', summary: rm.summary! },
        ppo: { outputPath: ppo.outputPath!, status: 'early-stopped', summary: ppoSummary },
      },
    });
    assert.deepStrictEqual(
      reused.stages.map((s) => s.kind),
      ['gate'],
    );
    assert.strictEqual(reused.status, 'early-stopped', JSON.stringify(reused));
    assert.deepStrictEqual(
      reused.reused?.map(({ kind, done }) => [kind, done.status, done.summary]),
      [
        ['rm', 'completed', rm.summary],
        ['ppo', 'early-stopped', ppoSummary],
      ],
    );
    assert.match(
      describeResult(reused),
      /^reward model completed \(validation accuracy [\d.]+%\), reused from the interrupted run; PPO early-stopped \(held-out reward 0\.250 -> 0\.500, KL [\d.-]+\), reused from the interrupted run; promotion gate completed/,
    );
  });

  it('cancel stops the running job in the model host, which stays up and skips the next stage', async () => {
    const dataFile = await judgments(dir);
    const controller = new AbortController();
    let progressBeforeCancel = 0;
    let progressAfterCancel = 0;
    let totalSteps = 0;
    const result = await runTrainPipeline({
      client,
      log,
      algorithm: 'ppo',
      modelDir: MODEL,
      dataFile,
      runDir: path.join(dir, 'run'),
      runId: 'r2',
      signal: controller.signal,
      overrides: { rm: { ...small, epochs: 20, batchSize: 2, learningRate: 0.01 } },
      onEvent: (_kind, event) => {
        if (event.type !== 'train/progress') return;
        totalSteps = event.totalSteps;
        if (controller.signal.aborted) progressAfterCancel++;
        else if (++progressBeforeCancel === 2) controller.abort();
      },
    });
    assert.strictEqual(result.status, 'cancelled', JSON.stringify(result));
    assert.deepStrictEqual(
      result.stages.map((s) => [s.kind, s.done.status]),
      [['rm', 'cancelled']],
    );
    assert.ok(totalSteps > 20, `expected a long job, got ${totalSteps} steps`);
    // Steps already running or reported when the cancel arrives may still report; the job must
    // stop long before its end.
    assert.ok(
      progressBeforeCancel + progressAfterCancel < totalSteps / 2,
      `${progressAfterCancel} steps ran after the cancel (of ${totalSteps})`,
    );
    assert.ok(log.lines.some((l) => /cancelling training job r2-rm/.test(l)));
    // The same host process is alive and serves requests (nothing was killed to cancel).
    const starts = client.starts;
    await client.request('ping', {});
    assert.strictEqual(client.starts, starts);
    assert.strictEqual(starts, 1);
  });
});
