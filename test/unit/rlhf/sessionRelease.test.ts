import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createGenerator } from '../../../src/generation';
import { loadModel } from '../../../src/model/loader';
import { ModelRuntime } from '../../../src/model/runtime';
import { sha256 } from '../../../src/rlhf/checkpoint';
import { DPO_DEFAULTS, RM_DEFAULTS } from '../../../src/rlhf/config';
import { trainDpo } from '../../../src/rlhf/dpo';
import { packMoments, unpackMoments } from '../../../src/rlhf/optimizer';
import { POLICY_DIR, trainPpo } from '../../../src/rlhf/ppo';
import { REWARD_MODEL_DIR, trainRewardModel } from '../../../src/rlhf/rewardModel';
import { directContext } from '../../../src/rlhf/trainerContext';
import {
  SMALL_PAIR_TRAINER,
  linearScorer,
  ppoOptions,
  tinyPpoConfig,
  toyPairs,
} from '../../support/tinyTraining';
import { trackSessions } from '../engine/sessionTracker';

const MODEL = path.join(__dirname, '../../fixtures/model/tiny-llama');

/** The latest checkpoint folder and its parsed manifest under `checkpointsDir`. */
function latest(checkpointsDir: string) {
  const name = fs.readFileSync(path.join(checkpointsDir, 'latest'), 'utf8').trim();
  const dir = path.join(checkpointsDir, name);
  const file = path.join(dir, 'manifest.json');
  return { dir, file, manifest: JSON.parse(fs.readFileSync(file, 'utf8')) };
}

/**
 * Replaces a checkpoint file and its digest in the manifest: the damage a resume cannot see
 * before it reads the contents (here, moments of another size).
 */
function rewriteFile(checkpointsDir: string, name: string, bytes: Uint8Array): void {
  const { dir, file, manifest } = latest(checkpointsDir);
  fs.writeFileSync(path.join(dir, name), bytes);
  manifest.files[name] = { bytes: bytes.length, sha256: sha256(bytes) };
  fs.writeFileSync(file, JSON.stringify(manifest));
}

describe('rlhf trainers release their engine sessions when setup or resume fails', function () {
  this.timeout(180000);
  const model = loadModel(MODEL);
  const pairs = toyPairs(16);
  let runDir = '';
  beforeEach(() => (runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'session-release-'))));
  afterEach(() => fs.rmSync(runDir, { recursive: true, force: true }));

  /**
   * Runs `train` with sessions tracked (the `failAt`-th fails to open); it must reject with
   * `error`, leaving none open.
   */
  async function assertReleased(
    train: () => Promise<unknown>,
    error: RegExp,
    failAt?: number,
  ): Promise<void> {
    const tracker = trackSessions({ failAt });
    try {
      await assert.rejects(train(), error);
      if (failAt !== undefined) assert.strictEqual(tracker.created, failAt, 'sessions opened');
      assert.strictEqual(tracker.live, 0, 'sessions left open');
    } finally {
      tracker.uninstall();
    }
  }

  it('reward model: moments of another size in optimizer.bin, and a session that fails to open', async () => {
    const options = { model, pairs, runDir, ctx: directContext() };
    const config = { ...RM_DEFAULTS, ...SMALL_PAIR_TRAINER, epochs: 1 };
    // The first session is the optimizer's, the second the scorer's.
    await assertReleased(
      () => trainRewardModel({ ...options, config, resume: false }),
      /session 2: creation failed/,
      2,
    );
    await trainRewardModel({ ...options, config, resume: false });
    const checkpoints = path.join(runDir, 'checkpoints', REWARD_MODEL_DIR);
    const saved = unpackMoments(
      fs.readFileSync(path.join(latest(checkpoints).dir, 'optimizer.bin')),
      'optimizer.bin',
      0,
    );
    const name = Object.keys(saved.m)[0];
    saved.m[name] = saved.m[name].subarray(1);
    rewriteFile(checkpoints, 'optimizer.bin', packMoments(saved));
    await assertReleased(
      () => trainRewardModel({ ...options, config: { ...config, epochs: 2 }, resume: true }),
      /optimizer\.bin: no AdamW moment m:/,
    );
  });

  it('PPO: a checkpoint without its value head, and a session that fails to open', async () => {
    const runtime = ModelRuntime.fromModel(model, { threads: 2 });
    const generator = createGenerator(runtime);
    const weight = Float32Array.from({ length: model.config.hiddenSize }, (_, i) => Math.sin(i));
    const scorer = await linearScorer(model, weight);
    const config = tinyPpoConfig();
    const options = ppoOptions({ model, generator, rewardScorer: scorer, runDir });
    try {
      // The first session is the optimizer's, the second the policy's forward graph.
      await assertReleased(
        () => trainPpo({ ...options, config, resume: false }),
        /session 2: creation failed/,
        2,
      );
      await trainPpo({ ...options, config, resume: false });
      const { dir, file, manifest } = latest(path.join(runDir, 'checkpoints', POLICY_DIR));
      delete manifest.files['value_head.safetensors'];
      fs.writeFileSync(file, JSON.stringify(manifest));
      fs.rmSync(path.join(dir, 'value_head.safetensors'));
      await assertReleased(
        () => trainPpo({ ...options, config: { ...config, iterations: 2 }, resume: true }),
        /value head not found/,
      );
    } finally {
      await scorer.release();
      await generator.dispose();
      await runtime.dispose();
    }
  });

  it('DPO: the optimizer session fails to open after the scoring session', async () => {
    await assertReleased(
      () =>
        trainDpo({
          model,
          pairs,
          config: { ...DPO_DEFAULTS, ...SMALL_PAIR_TRAINER, epochs: 1 },
          runDir,
          resume: false,
          ctx: directContext(),
        }),
      /session 2: creation failed/,
      2,
    );
  });
});
