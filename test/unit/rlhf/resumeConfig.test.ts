import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { LoadedCheckpoint } from '../../../src/rlhf/checkpoint';
import { DPO_DEFAULTS, RM_DEFAULTS } from '../../../src/rlhf/config';
import { DPO_DIR, trainDpo } from '../../../src/rlhf/dpo';
import { loadModel } from '../../../src/model/loader';
import { ModelRuntime } from '../../../src/model/runtime';
import { createGenerator } from '../../../src/generation';
import { POLICY_DIR, trainPpo } from '../../../src/rlhf/ppo';
import {
  ResumeRefusedError,
  checkResume,
  contentDigests,
  dataDigest,
  resumeRecord,
  type ResumeRules,
} from '../../../src/rlhf/resume';
import { REWARD_MODEL_DIR, RM_RESUME, trainRewardModel } from '../../../src/rlhf/rewardModel';
import {
  directContext,
  type LogLevel,
  type TrainerContext,
} from '../../../src/rlhf/trainerContext';
import { runCli } from '../../../src/cli/main';
import { appendOracleJudgments } from '../../support/oracleJudgments';
import {
  SMALL_PAIR_TRAINER,
  linearScorer,
  ppoOptions,
  tinyPpoConfig,
  toyPairs,
} from '../../support/tinyTraining';

const MODEL = path.join(__dirname, '../../fixtures/model/tiny-llama');

interface Toy {
  modelDir: string;
  seed: number;
  epochs: number;
  rate: number;
}
const RULES: ResumeRules<Toy> = {
  trainer: 'toy',
  mayChange: ['epochs'],
  pathKeys: ['modelDir'],
  dataNoun: 'rows',
};

/** A checkpoint with this manifest state and no files (checkResume reads only the state). */
function fakeCheckpoint(state: Record<string, unknown>): LoadedCheckpoint {
  return {
    dir: '/runs/x/checkpoints/toy/step-0000004',
    manifest: { step: 4, time: '', files: {}, state },
    read: () => Buffer.alloc(0),
    counter: () => 4,
  };
}

/** The latest checkpoint's manifest file under `checkpointsDir`. */
function latestManifest(checkpointsDir: string): string {
  const latest = fs.readFileSync(path.join(checkpointsDir, 'latest'), 'utf8').trim();
  return path.join(checkpointsDir, latest, 'manifest.json');
}

/** A copy of the tiny Llama fixture in a folder of its own, whose weights a test may change. */
function modelCopy(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'model-copy-'));
  fs.cpSync(MODEL, dir, { recursive: true });
  return dir;
}

/** Changes the last byte of `file` (a weight's low byte, in a model's safetensors file). */
function flipLastByte(file: string): void {
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 1] ^= 0x01;
  fs.writeFileSync(file, bytes);
}

/** Removes what checkpoints recorded of their folders' contents, as an older version's. */
function dropContents(manifestFile: string): void {
  const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
  assert.ok(manifest.state.contents, `${manifestFile} records no contents`);
  delete manifest.state.contents;
  fs.writeFileSync(manifestFile, JSON.stringify(manifest));
}

/** Removes what checkpoints recorded for resume checks, as a checkpoint of an older version. */
function makeOld(manifestFile: string): void {
  const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
  delete manifest.state.config;
  delete manifest.state.data;
  fs.writeFileSync(manifestFile, JSON.stringify(manifest));
}

describe("rlhf resume: the config and data must be the checkpoint's", function () {
  this.timeout(180000);

  describe('checkResume', () => {
    const config: Toy = { modelDir: 'models/m', seed: 1, epochs: 2, rate: 0.5 };
    const data = dataDigest(['a', 'b'], 2);
    const ck = fakeCheckpoint({ ...resumeRecord(config, RULES, data, {}) });

    it('accepts the same config, a path named absolutely, and a change of a key that may change', () => {
      const warnings: string[] = [];
      checkResume(ck, config, RULES, data, {}, (m) => warnings.push(m));
      checkResume(ck, { ...config, modelDir: path.resolve('models/m') }, RULES, data, {}, (m) =>
        warnings.push(m),
      );
      checkResume(ck, { ...config, epochs: 9 }, RULES, data, {}, (m) => warnings.push(m));
      assert.deepStrictEqual(warnings, []);
    });

    it('compares list keys by their entries: spaces around commas are the same list', () => {
      type Lora = { modelDir: string; loraTargets: string };
      const rules: ResumeRules<Lora> = {
        trainer: 'toy',
        mayChange: [],
        pathKeys: ['modelDir'],
        listKeys: ['loraTargets'],
        dataNoun: 'rows',
      };
      const spaced = { modelDir: 'models/m', loraTargets: 'q_proj, v_proj' };
      // A checkpoint of this version records the canonical list; an older one, as written.
      const recorded = fakeCheckpoint({ ...resumeRecord(spaced, rules, data, {}) });
      const asWritten = fakeCheckpoint({
        config: { ...spaced, modelDir: path.resolve('models/m') },
        data,
      });
      assert.strictEqual(
        (recorded.manifest.state as { config: Lora }).config.loraTargets,
        'q_proj,v_proj',
      );
      for (const ck of [recorded, asWritten]) {
        for (const loraTargets of ['q_proj,v_proj', ' q_proj ,v_proj,', 'q_proj, v_proj']) {
          checkResume(ck, { ...spaced, loraTargets }, rules, data, {}, () => {});
        }
        // Another order or another target is another list.
        for (const loraTargets of ['v_proj,q_proj', 'q_proj']) {
          assert.throws(
            () => checkResume(ck, { ...spaced, loraTargets }, rules, data, {}, () => {}),
            new RegExp(`loraTargets \\(checkpoint "q_proj,? ?v_proj", now "${loraTargets}"\\)`),
          );
        }
      }
    });

    it("refuses other changes, naming each key with the checkpoint's and the new value", () => {
      assert.throws(
        () =>
          checkResume(ck, { ...config, seed: 2, rate: 0.25, epochs: 3 }, RULES, data, {}, () => {}),
        (e: Error) =>
          e instanceof ResumeRefusedError &&
          e.message ===
            'toy: cannot resume from /runs/x/checkpoints/toy/step-0000004: this run differs from ' +
              "the checkpoint's in what is trained: seed (checkpoint 1, now 2); rate (checkpoint " +
              "0.5, now 0.25). Resume with the checkpoint's values (only epochs may change on " +
              'resume), or start a fresh run in another run folder' &&
          // What the caller may pass back to resume, in its own terms (the CLI's flags).
          JSON.stringify(e.restore) === JSON.stringify({ seed: 1, rate: 0.5 }),
      );
      assert.throws(
        () => checkResume(ck, { ...config, modelDir: 'models/other' }, RULES, data, {}, () => {}),
        new RegExp(
          `modelDir \\(checkpoint ${JSON.stringify(path.resolve('models/m'))}, now ` +
            `${JSON.stringify(path.resolve('models/other'))}\\)`,
        ),
      );
      // A key the checkpoint does not have (or the config no longer has) is a change too, and
      // no value of it resumes.
      const extra = { ...config, extra: true } as Toy;
      assert.throws(
        () => checkResume(ck, extra, RULES, data, {}, () => {}),
        (e: Error) =>
          /extra \(checkpoint \(absent\), now true\)/.test(e.message) &&
          e instanceof ResumeRefusedError &&
          e.restore === undefined,
      );
    });

    it('refuses other data, and names a damaged record', () => {
      assert.throws(
        () => checkResume(ck, config, RULES, dataDigest(['a', 'b', 'c'], 3), {}, () => {}),
        new RegExp(
          `the rows \\(checkpoint 2, sha256 ${data.sha256.slice(0, 12)}\\.\\.\\.; now 3, ` +
            'sha256 [0-9a-f]{12}\\.\\.\\.: the data file changed since the checkpoint\\)',
        ),
      );
      // Other data: no config value resumes it.
      assert.throws(
        () => checkResume(ck, { ...config, seed: 2 }, RULES, dataDigest(['c'], 1), {}, () => {}),
        (e: Error) => e instanceof ResumeRefusedError && e.restore === undefined,
      );
      assert.throws(
        () => checkResume(fakeCheckpoint({ config: 5, data }), config, RULES, data, {}, () => {}),
        /step-0000004\/manifest\.json: "state\.config" is 5; allowed: a JSON object/,
      );
      assert.throws(
        () => checkResume(fakeCheckpoint({ config, data: [] }), config, RULES, data, {}, () => {}),
        /"state\.data" is \[\]; allowed/,
      );
    });

    it('resumes a checkpoint written before checkpoints recorded their config, with a warning', () => {
      const warnings: string[] = [];
      checkResume(fakeCheckpoint({ step: 4 }), config, RULES, data, {}, (m) => warnings.push(m));
      assert.deepStrictEqual(warnings, [
        'toy: /runs/x/checkpoints/toy/step-0000004 was written before checkpoints recorded ' +
          'their config and data, so this run could not be checked against it: resuming it ' +
          "with this config, which must be the checkpoint's (only epochs may change)",
      ]);
    });

    it('refuses an unrecorded checkpoint when a key differs from the default it was trained with', () => {
      const rules: ResumeRules<Toy> = { ...RULES, legacyDefaults: { rate: 0.5, seed: 1 } };
      const old = fakeCheckpoint({ step: 4 });
      assert.throws(
        () => checkResume(old, { ...config, rate: 0.25, seed: 2 }, rules, data, {}, () => {}),
        (e: Error) =>
          e instanceof ResumeRefusedError &&
          e.message ===
            'toy: cannot resume from /runs/x/checkpoints/toy/step-0000004: it was written before ' +
              'checkpoints recorded their config, by a version that trained with rate 0.5, ' +
              'seed 1; this run has rate 0.25, seed 2, which would train the rest of the run ' +
              'another way (and run.json would claim it for all of it). Resume with rate 0.5, ' +
              'seed 1, or start a fresh run in another run folder' &&
          JSON.stringify(e.restore) === JSON.stringify({ rate: 0.5, seed: 1 }),
      );
      const warnings: string[] = [];
      checkResume(old, config, rules, data, {}, (m) => warnings.push(m));
      assert.strictEqual(warnings.length, 1, 'the legacy values resume, with the warning');
      // A checkpoint that records its config is compared with it, not with the legacy values.
      checkResume(ck, config, { ...RULES, legacyDefaults: { rate: 0.1 } }, data, {}, () => {});
    });

    it("refuses other contents behind a folder's path; an older checkpoint warns that it could not check them", () => {
      const rules: ResumeRules<Toy> = { ...RULES, contentKeys: { modelDir: 'files' } };
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'resume-contents-'));
      try {
        const file = path.join(dir, 'weights.bin');
        fs.writeFileSync(file, 'one');
        const cfg = { ...config, modelDir: dir };
        const before = contentDigests(cfg, rules);
        assert.match(String(before.modelDir), /^[0-9a-f]{64}$/);
        const saved = fakeCheckpoint({ ...resumeRecord(cfg, rules, data, before) });
        const check = (warn: (m: string) => void = () => {}) =>
          checkResume(saved, cfg, rules, data, contentDigests(cfg, rules), warn);
        const warnings: string[] = [];
        check((m) => warnings.push(m));
        // The temporary file of an atomic write in progress is not part of the contents.
        fs.writeFileSync(path.join(dir, '.weights.bin.123.tmp'), 'partial');
        check((m) => warnings.push(m));
        assert.deepStrictEqual(warnings, []);

        fs.writeFileSync(file, 'two');
        const now = contentDigests(cfg, rules).modelDir as string;
        assert.throws(
          () => check(),
          (e: Error) =>
            e instanceof ResumeRefusedError &&
            e.message ===
              `toy: cannot resume from /runs/x/checkpoints/toy/step-0000004: this run differs ` +
                `from the checkpoint's in what is trained: the contents of modelDir ` +
                `(${JSON.stringify(dir)}: checkpoint ${before.modelDir!.slice(0, 12)}..., now ` +
                `${now.slice(0, 12)}...: its files changed since the checkpoint, at the same ` +
                "path). Resume with the checkpoint's values (only epochs may change on resume), " +
                'or start a fresh run in another run folder' &&
            // No setting resumes it.
            e.restore === undefined,
        );
        fs.rmSync(dir, { recursive: true });
        assert.throws(
          () => check(),
          /modelDir \(.*: checkpoint [0-9a-f]{12}\.\.\., now \(unreadable\)/,
        );

        // Another folder: named once, as the changed path.
        const other = { ...cfg, modelDir: 'models/other' };
        assert.throws(
          () => checkResume(saved, other, rules, data, contentDigests(other, rules), () => {}),
          (e: Error) =>
            /modelDir \(checkpoint/.test(e.message) && !/the contents of/.test(e.message),
        );

        // Written before checkpoints recorded folder contents: the rest is checked, and the
        // resume goes on with a warning.
        const older = fakeCheckpoint({
          ...resumeRecord(cfg, rules, data, {}),
          contents: undefined,
        });
        const olderWarnings: string[] = [];
        const digest = { modelDir: 'f'.repeat(64) };
        checkResume(older, cfg, rules, data, digest, (m) => olderWarnings.push(m));
        assert.deepStrictEqual(olderWarnings, [
          'toy: /runs/x/checkpoints/toy/step-0000004 was written before checkpoints recorded ' +
            'the contents of the folders they name, so whether modelDir changed since could not ' +
            'be checked: resuming it with them as they are now',
        ]);
        assert.throws(
          () => checkResume(older, { ...cfg, seed: 9 }, rules, data, {}, () => {}),
          /seed \(checkpoint 1, now 9\)/,
        );
        assert.throws(
          () =>
            checkResume(
              fakeCheckpoint({ ...resumeRecord(cfg, rules, data, {}), contents: [5] }),
              cfg,
              rules,
              data,
              {},
              () => {},
            ),
          /step-0000004\/manifest\.json: "state\.contents" is \[5\]; allowed: a JSON object/,
        );
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('in the trainers (tiny Llama fixture)', () => {
    const model = loadModel(MODEL);
    const pairs = toyPairs(16);
    const logged = () => {
      const lines: string[] = [];
      const ctx = directContext({
        onLog: (level: LogLevel, message: string) => lines.push(`${level}: ${message}`),
      });
      return { lines, ctx };
    };

    it('reward model: refuses a changed markCompletion, extends epochs, resumes an old checkpoint unmarked with a warning', async () => {
      const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rm-resume-cfg-'));
      const config = { ...RM_DEFAULTS, ...SMALL_PAIR_TRAINER, epochs: 1 };
      const options = { model, pairs, runDir, ctx: directContext() };
      const first = await trainRewardModel({ ...options, config, resume: false });
      const manifest = latestManifest(path.join(runDir, 'checkpoints', REWARD_MODEL_DIR));
      assert.strictEqual(JSON.parse(fs.readFileSync(manifest, 'utf8')).state.step, first.steps);
      await assert.rejects(
        trainRewardModel({
          ...options,
          config: { ...config, epochs: 3, markCompletion: false },
          resume: true,
        }),
        (e: Error) =>
          e.message.includes(
            "differs from the checkpoint's in what is trained: markCompletion " +
              '(checkpoint true, now false). Resume',
          ) && e.message.includes(`only ${RM_RESUME.mayChange.join(', ')} may change`),
      );
      await assert.rejects(
        trainRewardModel({ ...options, pairs: pairs.slice(1), config, resume: true }),
        /the training pairs \(checkpoint 16, sha256 [0-9a-f]{12}\.\.\.; now 15,/,
      );
      // Written before checkpoints kept their config, so before the completion mark: the
      // default markCompletion true would switch the encoding mid-run, and is refused.
      makeOld(manifest);
      await assert.rejects(
        trainRewardModel({ ...options, config: { ...config, epochs: 2 }, resume: true }),
        (e: Error) =>
          e.message.includes(
            'by a version that trained with markCompletion false; this run has markCompletion ' +
              'true, which would train the rest of the run another way',
          ) && e.message.includes('Resume with markCompletion false, or start a fresh run'),
      );
      // With the legacy value: resumed, with a warning.
      const { lines, ctx } = logged();
      const extended = await trainRewardModel({
        ...options,
        ctx,
        config: { ...config, epochs: 2, markCompletion: false },
        resume: true,
      });
      assert.strictEqual(extended.steps, 2 * first.steps);
      assert.ok(
        lines.some((l) => /^warn: reward model: .* could not be checked against it/.test(l)),
        lines.join('\n'),
      );
      fs.rmSync(runDir, { recursive: true, force: true });
    });

    it('reward model and DPO: a resume that finds no checkpoint warns and starts fresh', async () => {
      const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'resume-none-'));
      const options = { model, pairs, runDir, resume: true };
      try {
        const rm = logged();
        await trainRewardModel({
          ...options,
          ctx: rm.ctx,
          config: { ...RM_DEFAULTS, ...SMALL_PAIR_TRAINER, epochs: 1 },
        });
        const dpo = logged();
        await trainDpo({
          ...options,
          ctx: dpo.ctx,
          config: { ...DPO_DEFAULTS, ...SMALL_PAIR_TRAINER, epochs: 1 },
        });
        for (const [lines, trainer, dir] of [
          [rm.lines, 'reward model', REWARD_MODEL_DIR],
          [dpo.lines, 'DPO', DPO_DIR],
        ] as const) {
          const checkpoints = path.join(runDir, 'checkpoints', dir);
          assert.deepStrictEqual(
            lines.filter((l) => l.startsWith('warn: ')),
            [
              `warn: ${trainer}: resume asked, but ${checkpoints} has no checkpoint; starting fresh`,
            ],
          );
        }
      } finally {
        fs.rmSync(runDir, { recursive: true, force: true });
      }
    });

    it('DPO: refuses a changed beta and learning rate; accepts more epochs', async () => {
      const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dpo-resume-cfg-'));
      const config = { ...DPO_DEFAULTS, ...SMALL_PAIR_TRAINER, epochs: 1 };
      const options = { model, pairs, runDir, ctx: directContext() };
      const first = await trainDpo({ ...options, config, resume: false });
      await assert.rejects(
        trainDpo({
          ...options,
          config: { ...config, beta: 0.5, learningRate: 1e-2 },
          resume: true,
        }),
        /DPO: cannot resume from .*: learningRate \(checkpoint 0\.0005, now 0\.01\); beta \(checkpoint 0\.1, now 0\.5\)/,
      );
      const extended = await trainDpo({
        ...options,
        config: { ...config, epochs: 2 },
        resume: true,
      });
      assert.strictEqual(extended.steps, 2 * first.steps);
      const manifest = JSON.parse(
        fs.readFileSync(latestManifest(path.join(runDir, 'checkpoints', DPO_DIR)), 'utf8'),
      );
      assert.strictEqual(manifest.state.config.epochs, 2);
      fs.rmSync(runDir, { recursive: true, force: true });
    });

    it('PPO: refuses a changed reward model folder and prompts; accepts more iterations', async () => {
      const runtime = ModelRuntime.fromModel(model, { threads: 2 });
      const generator = createGenerator(runtime);
      const weight = Float32Array.from({ length: model.config.hiddenSize }, (_, i) =>
        Math.sin(i + 1),
      );
      const scorer = await linearScorer(model, weight);
      const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ppo-resume-cfg-'));
      const config = tinyPpoConfig({ rewardModelDir: 'rm-a' });
      const options = ppoOptions({ model, generator, rewardScorer: scorer, runDir });
      try {
        await trainPpo({ ...options, config, resume: false });
        await assert.rejects(
          trainPpo({
            ...options,
            config: { ...config, iterations: 2, rewardModelDir: 'rm-b' },
            resume: true,
          }),
          new RegExp(
            `PPO: cannot resume from .*: rewardModelDir \\(checkpoint ` +
              `${JSON.stringify(path.resolve('rm-a'))}, now ${JSON.stringify(path.resolve('rm-b'))}\\)\\. `,
          ),
        );
        await assert.rejects(
          trainPpo({ ...options, prompts: ['let a = '], config, resume: true }),
          /the prompts \(training and held-out\) \(checkpoint 3, .*now 1,/,
        );
        const extended = await trainPpo({
          ...options,
          config: { ...config, iterations: 2 },
          resume: true,
        });
        assert.strictEqual(extended.iterations, 2);
        const manifest = latestManifest(path.join(runDir, 'checkpoints', POLICY_DIR));
        assert.strictEqual(JSON.parse(fs.readFileSync(manifest, 'utf8')).state.iteration, 2);
      } finally {
        await scorer.release();
        await generator.dispose();
        await runtime.dispose();
        fs.rmSync(runDir, { recursive: true, force: true });
      }
    });

    it('reward model and DPO: refuse other weights behind modelDir; a checkpoint without their digest resumes with a warning', async () => {
      const modelDir = modelCopy();
      const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pair-resume-weights-'));
      const weights = path.join(modelDir, 'model.safetensors');
      const original = fs.readFileSync(weights);
      try {
        const stages = [
          {
            trainer: 'reward model',
            stageDir: REWARD_MODEL_DIR,
            train: (ctx: TrainerContext, resume: boolean) =>
              trainRewardModel({
                ...{ model, pairs, runDir, ctx, resume },
                config: { ...RM_DEFAULTS, ...SMALL_PAIR_TRAINER, modelDir, epochs: 1 },
              }),
          },
          {
            trainer: 'DPO',
            stageDir: DPO_DIR,
            train: (ctx: TrainerContext, resume: boolean) =>
              trainDpo({
                ...{ model, pairs, runDir, ctx, resume },
                config: { ...DPO_DEFAULTS, ...SMALL_PAIR_TRAINER, modelDir, epochs: 1 },
              }),
          },
        ];
        for (const { trainer, stageDir, train } of stages) {
          fs.writeFileSync(weights, original);
          const run = (ctx = directContext()) => train(ctx, true);
          await train(directContext(), false);
          flipLastByte(weights);
          await assert.rejects(
            run(),
            new RegExp(
              `^ResumeRefusedError: ${trainer}: cannot resume from .*: this run differs from the checkpoint's ` +
                `in what is trained: the contents of modelDir \\(${JSON.stringify(modelDir)}: ` +
                'checkpoint [0-9a-f]{12}\\.\\.\\., now [0-9a-f]{12}\\.\\.\\.: its files changed ' +
                'since the checkpoint, at the same path\\)\\. Resume',
            ),
          );
          // A checkpoint of the version before: resumed on the weights as they are, with a
          // warning that they could not be checked.
          dropContents(latestManifest(path.join(runDir, 'checkpoints', stageDir)));
          const { lines, ctx } = logged();
          await run(ctx);
          assert.ok(
            lines.some((l) =>
              l.startsWith(
                `warn: ${trainer}: ${path.join(runDir, 'checkpoints', stageDir)}` +
                  '/step-0000003 was written before checkpoints recorded the contents of the ' +
                  'folders they name, so whether modelDir changed since could not be checked',
              ),
            ),
            lines.join('\n'),
          );
        }
      } finally {
        fs.rmSync(modelDir, { recursive: true, force: true });
        fs.rmSync(runDir, { recursive: true, force: true });
      }
    });

    it('PPO: refuses a reward model retrained, or other weights, at the same path', async () => {
      const runtime = ModelRuntime.fromModel(model, { threads: 2 });
      const generator = createGenerator(runtime);
      const weight = Float32Array.from({ length: model.config.hiddenSize }, (_, i) =>
        Math.cos(i + 1),
      );
      const scorer = await linearScorer(model, weight);
      const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ppo-resume-contents-'));
      const modelDir = modelCopy();
      // A reward model folder as `train rm` writes it; the scorer above stands in for it.
      const rewardModelDir = path.join(runDir, 'rm', REWARD_MODEL_DIR);
      fs.mkdirSync(rewardModelDir, { recursive: true });
      const files = ['adapter_config.json', 'adapter_model.safetensors', 'reward_head.safetensors'];
      for (const name of files) {
        fs.writeFileSync(path.join(rewardModelDir, name), `${name} of reward model 1`);
      }
      const headFile = path.join(rewardModelDir, 'reward_head.safetensors');
      const runJson = path.join(rewardModelDir, 'run.json');
      const writeRun = (maxPromptTokens: number, seconds: number) =>
        fs.writeFileSync(
          runJson,
          JSON.stringify({ config: { maxPromptTokens, maxCompletionTokens: 8 }, seconds }),
        );
      writeRun(16, 12.5);
      const weights = path.join(modelDir, 'model.safetensors');
      const config = tinyPpoConfig({ modelDir, rewardModelDir });
      const options = ppoOptions({ model, generator, rewardScorer: scorer, runDir });
      const resume = () =>
        trainPpo({ ...options, config: { ...config, iterations: 2 }, resume: true });
      const refusal = (key: string, dir: string) =>
        new RegExp(
          `^ResumeRefusedError: PPO: cannot resume from .*: this run differs from the checkpoint's in what ` +
            `is trained: the contents of ${key} \\(${JSON.stringify(dir)}: checkpoint ` +
            '[0-9a-f]{12}\\.\\.\\., now [0-9a-f]{12}\\.\\.\\.: its files changed since the ' +
            'checkpoint, at the same path\\)\\. Resume',
        );
      try {
        await trainPpo({ ...options, config, resume: false });
        // Retrained into the same folder: the held-out reward before and after, the rollback
        // test and the score standardisation would mix two reward models.
        fs.writeFileSync(headFile, 'reward_head.safetensors of reward model 2');
        await assert.rejects(resume(), refusal('rewardModelDir', rewardModelDir));
        fs.writeFileSync(headFile, 'reward_head.safetensors of reward model 1');
        // Its run.json with another encoding scores another way too.
        writeRun(32, 12.5);
        await assert.rejects(resume(), refusal('rewardModelDir', rewardModelDir));
        // Only the wall time changed (`train rm --resume` of the finished run rewrites run.json):
        // the same reward model, so it is no reason to refuse (checked by the last resume below).
        writeRun(16, 99.25);
        // Nor is another file in the folder (held-out prompts, a user's notes).
        fs.writeFileSync(path.join(rewardModelDir, 'notes.txt'), 'compared with rm-3');
        flipLastByte(weights);
        await assert.rejects(resume(), refusal('modelDir', modelDir));
        flipLastByte(weights);
        // Both as they were: the run goes on.
        assert.strictEqual((await resume()).iterations, 2);
      } finally {
        await scorer.release();
        await generator.dispose();
        await runtime.dispose();
        fs.rmSync(runDir, { recursive: true, force: true });
        fs.rmSync(modelDir, { recursive: true, force: true });
      }
    });
  });

  describe('on the command line', () => {
    it('src/rlhf names config keys; the CLI adds the flags that set them', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'resume-cli-'));
      try {
        const data = path.join(dir, 'prefs.jsonl');
        await appendOracleJudgments(data, 16, 'm');
        const train = async (...flags: string[]) => {
          const lines: string[] = [];
          const io = { out: (t: string) => lines.push(t), err: (t: string) => lines.push(t) };
          const args = [
            ...['train', 'rm', '--run-dir', path.join(dir, 'run'), '--modelDir', MODEL],
            ...['--dataFile', data, '--epochs', '1', '--batchSize', '4', '--loraRank', '2'],
            ...['--maxPromptTokens', '8', '--maxCompletionTokens', '4', '--checkpointEvery', '1'],
          ];
          const code = await runCli([...args, ...flags], io);
          return { code, text: lines.join('\n') };
        };
        assert.strictEqual((await train()).code, 0);
        const changed = await train('--resume', '--markCompletion', 'false', '--seed', '3');
        assert.strictEqual(changed.code, 1);
        assert.match(
          changed.text,
          new RegExp(
            'seed \\(checkpoint 0, now 3\\); markCompletion \\(checkpoint true, now false\\)\\. ' +
              "Resume with the checkpoint's values \\(only .* may change on resume\\), or start " +
              'a fresh run in another run folder\\. On the command line: --resume ' +
              '--seed 0 --markCompletion true, or a new --run-dir',
          ),
        );
        // Other data: only a fresh run is offered.
        await appendOracleJudgments(data, 17, 'm'); // judgments 0-15 are stored already
        const otherData = await train('--resume');
        const refusal =
          /data file changed since the checkpoint\)\. Resume .*\. On the command line: (.*)$/m;
        assert.strictEqual(refusal.exec(otherData.text)?.[1], 'a new --run-dir', otherData.text);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
