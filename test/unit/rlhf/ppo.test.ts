import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createGenerator } from '../../../src/generation';
import { loadModel } from '../../../src/model/loader';
import { initLora } from '../../../src/model/lora';
import { ModelRuntime } from '../../../src/model/runtime';
import { PPO_DEFAULTS, type PpoConfig } from '../../../src/rlhf/config';
import { sha256 } from '../../../src/rlhf/checkpoint';
import { headDigest, loadHead } from '../../../src/rlhf/heads';
import { encodePair } from '../../../src/rlhf/batch';
import { PolicyGraphs, sampleRollouts, trainPpo } from '../../../src/rlhf/ppo';
import { RewardScorer } from '../../../src/rlhf/rewardModel';
import { directContext } from '../../../src/rlhf/trainerContext';
import { createRng, normal } from '../../../src/rlhf/random';
import { linearScorer, ppoOptions as sharedPpoOptions } from '../../support/tinyTraining';

const MODEL = path.join(__dirname, '../../fixtures/model/tiny-llama');

describe('rlhf PPO (tiny Llama fixture)', function () {
  this.timeout(180000);
  const model = loadModel(MODEL);
  const runtime = ModelRuntime.fromModel(model, { threads: 2 });
  const generator = createGenerator(runtime);
  after(() => runtime.dispose());

  /** A fixed reward: a random linear read-out of the base model's last hidden state. */
  function fixedScorer() {
    const rng = createRng(11);
    const weight = Float32Array.from({ length: model.config.hiddenSize }, () => normal(rng));
    return linearScorer(model, weight);
  }

  const config = (over: Partial<PpoConfig> = {}): PpoConfig => ({
    ...PPO_DEFAULTS,
    modelDir: MODEL,
    iterations: 8,
    promptsPerBatch: 8,
    samplesPerPrompt: 4,
    maxNewTokens: 6,
    maxLines: 0,
    minibatchSize: 8,
    ppoEpochs: 2,
    learningRate: 1e-2,
    loraRank: 4,
    loraAlpha: 8,
    temperature: 1,
    klCoef: 0.01,
    klBudget: 0,
    rollbackRewardDrop: 100,
    checkpointEvery: 2,
    maxPromptTokens: 16,
    maxCompletionTokens: 8,
    ...over,
  });
  const prompts = [
    'let a = ',
    'if (x) {',
    'return ',
    'const f = (',
    'while (i < n) ',
    'foo.bar(',
    'x += ',
    '// ',
  ];

  /** trainPpo on this suite's model, generator and prompts: a fresh start, no held-out set. */
  const ppoOptions = (
    rewardScorer: RewardScorer,
    runDir: string,
    over: Partial<Parameters<typeof trainPpo>[0]> = {},
  ): Parameters<typeof trainPpo>[0] =>
    sharedPpoOptions({
      model,
      generator,
      rewardScorer,
      prompts,
      config: config(),
      runDir,
      ...over,
    });

  it('first minibatch has ratio 1 and KL 0; parameters change; the reward rises', async () => {
    const scorer = await fixedScorer();
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ppo-'));
    const result = await trainPpo(
      ppoOptions(scorer, runDir, {
        heldOutPrompts: ['let b = ', 'x = ('],
        // Raw scores: the length penalty of 1 stays small next to this scorer's spread.
        config: config({ normalizeScores: false }),
      }),
    );
    await scorer.release();
    const h = result.history;
    assert.strictEqual(h.length, 8);
    assert.ok(
      Math.abs(h[0]['val/first_ratio'] - 1) < 1e-4,
      `first ratio ${h[0]['val/first_ratio']}`,
    );
    assert.strictEqual(h[0]['objective/kl'], 0); // fresh adapter (B = 0) equals the reference
    assert.ok(
      h[0]['val/logprob_mismatch_max'] < 1e-3,
      `sampler vs graph ${h[0]['val/logprob_mismatch_max']}`,
    );
    assert.ok(result.adapter.factors.size > 0);
    const changed = [...result.adapter.factors.values()].some((f) => f.b.some((x) => x !== 0));
    assert.ok(changed, 'LoRA B stayed zero: no update reached the adapter');
    const early = (h[0]['objective/scores'] + h[1]['objective/scores']) / 2;
    const late = (h[6]['objective/scores'] + h[7]['objective/scores']) / 2;
    assert.ok(late > early, `scores ${early} -> ${late}`);
    for (const name of [
      'objective/kl',
      'objective/entropy',
      'objective/scores',
      'policy/clipfrac_avg',
      'loss/value_avg',
    ]) {
      assert.ok(name in h[0], `metric ${name} missing`);
    }
    // R5: the saved value head is bitwise the trained one.
    const saved = loadHead(result.outputDir, 'value', model.config.hiddenSize);
    assert.strictEqual(headDigest(saved.head), headDigest(result.valueHead));
  });

  it('standardises scores by the first rollout: mean 0 there, raw scores logged, scale kept in the checkpoint', async () => {
    const scorer = await fixedScorer();
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ppo-'));
    const result = await trainPpo(
      ppoOptions(scorer, runDir, {
        config: config({ normalizeScores: true, missingEosPenalty: 0, iterations: 2 }),
      }),
    );
    await scorer.release();
    const h = result.history;
    assert.ok(Math.abs(h[0]['objective/scores']) < 1e-5, `first mean ${h[0]['objective/scores']}`);
    assert.ok(Math.abs(h[0]['objective/raw_scores']) > 1e-3, 'raw scores are logged unscaled');
    const ckDir = path.join(runDir, 'checkpoints', 'policy');
    const latest = fs.readFileSync(path.join(ckDir, 'latest'), 'utf8').trim();
    const manifest = JSON.parse(fs.readFileSync(path.join(ckDir, latest, 'manifest.json'), 'utf8'));
    const norm = manifest.state.scoreNorm as { mean: number; std: number };
    assert.ok(Math.abs(norm.mean - h[0]['objective/raw_scores']) < 1e-4, JSON.stringify(norm));
    assert.ok(norm.std > 0);
  });

  it('R5: resuming without the value head in the checkpoint fails loudly', async () => {
    const scorer = await fixedScorer();
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ppo-'));
    const cfg = config({
      iterations: 2,
      checkpointEvery: 1,
      promptsPerBatch: 2,
      samplesPerPrompt: 2,
    });
    await trainPpo(ppoOptions(scorer, runDir, { config: cfg }));
    const ckDir = path.join(runDir, 'checkpoints', 'policy');
    const latest = fs.readFileSync(path.join(ckDir, 'latest'), 'utf8').trim();
    fs.rmSync(path.join(ckDir, latest, 'value_head.safetensors'));
    await assert.rejects(
      trainPpo(ppoOptions(scorer, runDir, { config: { ...cfg, iterations: 3 }, resume: true })),
      /value_head.safetensors in its manifest, but the file is missing/,
    );
    await scorer.release();
  });

  it("a run interrupted after a checkpoint and resumed, or finished and resumed, writes the straight run's output", async () => {
    const scorer = await fixedScorer();
    const cfg = config({
      iterations: 3,
      checkpointEvery: 1,
      promptsPerBatch: 4,
      samplesPerPrompt: 2,
    });
    const heldOutPrompts = ['let b = ', 'x = ('];
    /** The output folder's files, and run.json without its wall time. */
    const outputOf = (dir: string) => {
      const run = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8'));
      delete run.seconds;
      const bytes = (name: string) => sha256(fs.readFileSync(path.join(dir, name)));
      return {
        run,
        adapter: bytes('adapter_model.safetensors'),
        head: bytes('value_head.safetensors'),
      };
    };
    const straightDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ppo-straight-'));
    const straight = await trainPpo(
      ppoOptions(scorer, straightDir, { heldOutPrompts, config: cfg }),
    );
    const expected = outputOf(straight.outputDir);
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ppo-resumed-'));
    const controller = new AbortController();
    await assert.rejects(
      trainPpo(
        ppoOptions(scorer, runDir, {
          heldOutPrompts,
          config: cfg,
          ctx: directContext({
            signal: controller.signal,
            // Aborted after iteration 2's metrics: its checkpoint is written, 3 never starts.
            onMetrics: (iteration) => iteration === 2 && controller.abort(),
          }),
        }),
      ),
      (e: Error) => e.name === 'AbortError',
    );
    // The best held-out reward seen is a noisy maximum; the straight run compared iteration 3
    // with the last accepted adapter's reward. Made far higher here, a resume that compared
    // with it would roll iteration 3 back.
    const ckDir = path.join(runDir, 'checkpoints', 'policy');
    const manifestFile = path.join(ckDir, 'step-0000002', 'manifest.json');
    const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
    assert.strictEqual(fs.readFileSync(path.join(ckDir, 'latest'), 'utf8').trim(), 'step-0000002');
    manifest.state.bestHeldOut = 1e6;
    fs.writeFileSync(manifestFile, JSON.stringify(manifest));
    const resumed = await trainPpo(
      ppoOptions(scorer, runDir, { heldOutPrompts, config: cfg, resume: true }),
    );
    assert.deepStrictEqual(outputOf(resumed.outputDir), expected);
    assert.deepStrictEqual(
      resumed.history.map((row) => ({ ...row, 'time/iteration_s': 0 })),
      straight.history.map((row) => ({ ...row, 'time/iteration_s': 0 })),
    );
    // Finished (or crashed after its last checkpoint, before its output): nothing left to train,
    // and the output, the held-out rewards and the last KL are the run's own.
    fs.rmSync(straight.outputDir, { recursive: true });
    const again = await trainPpo(
      ppoOptions(scorer, straightDir, { heldOutPrompts, config: cfg, resume: true }),
    );
    await scorer.release();
    assert.deepStrictEqual(outputOf(again.outputDir), expected);
    assert.strictEqual(again.heldOutRewardAfter, straight.heldOutRewardAfter);
    assert.notStrictEqual(again.heldOutRewardAfter, again.heldOutRewardBefore);
    assert.deepStrictEqual(again.history, straight.history);
    fs.rmSync(straightDir, { recursive: true, force: true });
    fs.rmSync(runDir, { recursive: true, force: true });
  });

  it('checkpoints every iteration by default, keeping two, and writes what a run without checkpoints writes', async () => {
    const scorer = await fixedScorer();
    const cfg = (checkpointEvery: number) =>
      config({ iterations: 3, promptsPerBatch: 4, samplesPerPrompt: 2, checkpointEvery });
    const outputOf = (dir: string) =>
      ['adapter_model.safetensors', 'value_head.safetensors'].map((name) =>
        sha256(fs.readFileSync(path.join(dir, name))),
      );
    const defaultDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ppo-default-ck-'));
    const noneDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ppo-no-ck-'));
    const written: number[] = [];
    const withDefault = await trainPpo(
      ppoOptions(scorer, defaultDir, {
        config: cfg(PPO_DEFAULTS.checkpointEvery),
        ctx: { ...directContext(), checkpoint: (step) => written.push(step) },
      }),
    );
    const without = await trainPpo(ppoOptions(scorer, noneDir, { config: cfg(0) }));
    await scorer.release();
    // A lost run resumes at most one iteration back ("PPO at iteration 2 of 3").
    assert.deepStrictEqual(written, [1, 2, 3]);
    assert.deepStrictEqual(fs.readdirSync(path.join(defaultDir, 'checkpoints', 'policy')).sort(), [
      'latest',
      'step-0000002',
      'step-0000003',
    ]);
    assert.deepStrictEqual(outputOf(withDefault.outputDir), outputOf(without.outputDir));
    fs.rmSync(defaultDir, { recursive: true, force: true });
    fs.rmSync(noneDir, { recursive: true, force: true });
  });

  it('a rollback restores the last good adapter, value head and optimizer moments and step', async () => {
    const scorer = await fixedScorer();
    // Iteration 1 starts at the reference (KL exactly 0) and is kept; iteration 2 has a KL above
    // 4 x targetKl, which counts as exploded, and is rolled back.
    const cfg = config({
      iterations: 2,
      checkpointEvery: 1,
      promptsPerBatch: 4,
      samplesPerPrompt: 2,
      targetKl: 1e-9,
      adaptiveKl: false,
    });
    const kept = fs.mkdtempSync(path.join(os.tmpdir(), 'ppo-kept-'));
    await trainPpo(
      ppoOptions(scorer, kept, { heldOutPrompts: ['let b = '], config: { ...cfg, iterations: 1 } }),
    );
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ppo-rollback-'));
    const result = await trainPpo(
      ppoOptions(scorer, runDir, { heldOutPrompts: ['let b = '], config: cfg }),
    );
    await scorer.release();
    assert.deepStrictEqual(
      result.history.map((h) => h['eval/rollback'] ?? 0),
      [0, 1],
    );
    const checkpoint = (dir: string, step: number) => {
      const ck = path.join(dir, 'checkpoints', 'policy', `step-${String(step).padStart(7, '0')}`);
      const manifest = JSON.parse(fs.readFileSync(path.join(ck, 'manifest.json'), 'utf8'));
      const file = (name: string) => fs.readFileSync(path.join(ck, name));
      return { manifest, file };
    };
    const good = checkpoint(kept, 1);
    const last = checkpoint(runDir, 2);
    assert.ok(good.manifest.state.optimizerStep > 0, 'iteration 1 made no update');
    assert.strictEqual(last.manifest.state.optimizerStep, good.manifest.state.optimizerStep);
    for (const name of ['params.bin', 'optimizer.bin', 'value_head.safetensors']) {
      assert.ok(last.file(name).equals(good.file(name)), `${name} differs from the last good one`);
    }
    fs.rmSync(kept, { recursive: true, force: true });
    fs.rmSync(runDir, { recursive: true, force: true });
  });

  // Judgments made in the middle of a file: PPO samples them fill-in-the-middle, as the editor did.
  const contexts = prompts.map((prompt, i) => ({
    prompt,
    suffix: [';\n', ')\n}\n', '\nreturn x;\n', ' + 1;'][i % 4],
  }));

  it('recomputes the sampler log-probs of fill-in-the-middle completions (adapter off)', async () => {
    const fim = model.tokenizer.fim!;
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ppo-fim-'));
    const temperature = 0.9;
    const sampled = await sampleRollouts(
      generator,
      contexts,
      undefined,
      path.join(runDir, 'adapter'),
      { samples: 4, temperature, maxNewTokens: 6, maxLines: 0, seed: 5 },
      directContext(),
    );
    const rows = sampled.filter((s) => s.row.completion.length > 0);
    assert.ok(rows.length >= 16, `${rows.length} non-empty samples`);
    for (const s of rows) {
      assert.strictEqual(s.suffix, contexts[s.promptIndex].suffix);
      assert.ok(s.row.prompt.includes(fim.suffix), 'the rollout prompt has no suffix');
      assert.strictEqual(s.row.prompt[s.row.prompt.length - 1], fim.middle);
    }
    // The policy's graphs with a trained-looking adapter (B off zero) switched off by scale 0.
    const cfg = config();
    const adapter = initLora(
      model,
      { rank: 4, alpha: 8, targets: ['q_proj', 'v_proj'], useRslora: false },
      3,
    );
    const rng = createRng(7);
    for (const f of adapter.factors.values()) f.b.forEach((_, i) => (f.b[i] = 0.1 * normal(rng)));
    const head = { weight: new Float32Array(model.config.hiddenSize), bias: new Float32Array(1) };
    const graphs = await PolicyGraphs.create(model, ['q_proj', 'v_proj']);
    try {
      const maxGap = (recomputed: number[][]) =>
        Math.max(
          ...rows.flatMap((s, i) =>
            s.sampleLogprobs.map((lp, j) => Math.abs(lp - recomputed[i][j])),
          ),
        );
      const off = await graphs.forward(
        rows.map((s) => s.row),
        adapter,
        head,
        temperature,
        0,
      );
      assert.ok(maxGap(off.logprobs) < 1e-4, `sampler vs training graph ${maxGap(off.logprobs)}`);
      // The same completions after the text before the cursor alone are other events: the
      // suffix is part of what the policy is trained on.
      const leftToRight = rows.map((s) => ({
        prompt: encodePair(model.tokenizer, { prompt: s.prompt, suffix: '' }, '', cfg).prompt,
        completion: s.row.completion,
      }));
      const prefixOnly = await graphs.forward(leftToRight, adapter, head, temperature, 0);
      assert.ok(
        maxGap(prefixOnly.logprobs) > 1e-2,
        `prefix-only gap ${maxGap(prefixOnly.logprobs)}`,
      );
    } finally {
      await graphs.release();
      fs.rmSync(runDir, { recursive: true, force: true });
    }
  });

  it('trains on fill-in-the-middle prompts: ratio 1 at the first minibatch, parameters change', async () => {
    const scorer = await fixedScorer();
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ppo-fim-'));
    const result = await trainPpo(
      ppoOptions(scorer, runDir, {
        prompts: contexts,
        heldOutPrompts: [{ prompt: 'let b = ', suffix: ';\n' }],
        config: config({ iterations: 2, checkpointEvery: 0 }),
      }),
    );
    await scorer.release();
    const h = result.history;
    assert.ok(
      h[0]['val/logprob_mismatch_max'] < 1e-4,
      `sampler vs graph ${h[0]['val/logprob_mismatch_max']}`,
    );
    assert.ok(Math.abs(h[0]['val/first_ratio'] - 1) < 1e-4, `ratio ${h[0]['val/first_ratio']}`);
    assert.ok(Number.isFinite(result.heldOutRewardBefore));
    const changed = [...result.adapter.factors.values()].some((f) => f.b.some((x) => x !== 0));
    assert.ok(changed, 'LoRA B stayed zero: no update reached the adapter');
    fs.rmSync(runDir, { recursive: true, force: true });
  });
});
