// A resumed run's metrics file: the rows an interrupted attempt wrote after its last checkpoint
// are trained again and written again, so the file must hold each of them once.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createGenerator } from '../../../src/generation';
import { loadModel } from '../../../src/model/loader';
import { ModelRuntime } from '../../../src/model/runtime';
import type { LoadedCheckpoint } from '../../../src/rlhf/checkpoint';
import { METRICS_ROWS_KEY, MetricsWriter } from '../../../src/rlhf/metrics';
import { POLICY_DIR, trainPpo } from '../../../src/rlhf/ppo';
import { directContext } from '../../../src/rlhf/trainerContext';
import {
  TINY_LLAMA_DIR,
  linearScorer,
  ppoOptions,
  tinyPpoConfig,
} from '../../support/tinyTraining';

/** A checkpoint at `step` with this manifest state and no files. */
function fakeCheckpoint(step: number, state: Record<string, unknown> = {}): LoadedCheckpoint {
  const manifest = { step, time: '', files: {}, state: { step, ...state } };
  return {
    dir: '/runs/x/checkpoints/toy/step-0000003',
    manifest,
    read: () => Buffer.alloc(0),
    counter: (key) => {
      const value = manifest.state[key as keyof typeof manifest.state];
      if (!Number.isSafeInteger(value) || (value as number) < 0) throw new Error(`bad ${key}`);
      return value as number;
    },
  };
}

const steps = (file: string) => MetricsWriter.read(file).map((row) => row.step);

describe('rlhf metrics on resume', function () {
  this.timeout(180000);
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metrics-resume-'));
    file = path.join(dir, 'toy-metrics.jsonl');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** Rows of steps 0 (a baseline), 1..5, and step 5's evaluation, then a row torn by a kill. */
  function killedRun(): string {
    const writer = MetricsWriter.forRun(file, undefined, 'step');
    writer.append(0, { 'eval/loss': 1 });
    for (let step = 1; step <= 5; step++) writer.append(step, { 'loss/train': 1 / step });
    writer.append(5, { 'eval/loss': 0.5 });
    assert.strictEqual(writer.rows, 7);
    fs.appendFileSync(file, '{"step":6,"loss/tr');
    return fs.readFileSync(file, 'utf8');
  }

  it('keeps the rows the checkpoint counted, byte for byte, and drops the rest and a torn row', () => {
    const before = killedRun();
    // The checkpoint of step 3 was written when the file held rows 0..3.
    const writer = MetricsWriter.forRun(file, fakeCheckpoint(3, { [METRICS_ROWS_KEY]: 4 }), 'step');
    assert.strictEqual(writer.rows, 4);
    assert.strictEqual(
      fs.readFileSync(file, 'utf8'),
      before.split('\n').slice(0, 4).join('\n') + '\n',
    );
    writer.append(4, { 'loss/train': 0.25 });
    assert.deepStrictEqual(steps(file), [0, 1, 2, 3, 4]);
    assert.strictEqual(writer.rows, 5);
  });

  it('warns when the file lost rows the checkpoint counted, and keeps no row past its step', () => {
    const ck = fakeCheckpoint(3, { [METRICS_ROWS_KEY]: 4 });
    const warnings: string[] = [];
    // A row deleted by hand from the middle: the first 4 rows now reach step 4.
    killedRun();
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    fs.writeFileSync(file, [...lines.slice(0, 2), ...lines.slice(3)].join('\n'));
    let writer = MetricsWriter.forRun(file, ck, 'step', (m) => warnings.push(m));
    assert.deepStrictEqual(steps(file), [0, 1, 3]);
    assert.strictEqual(writer.rows, 3);
    // Cut short, and deleted.
    killedRun();
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').split('\n').slice(0, 2).join('\n') + '\n');
    writer = MetricsWriter.forRun(file, ck, 'step', (m) => warnings.push(m));
    assert.deepStrictEqual(steps(file), [0, 1]);
    fs.rmSync(file);
    writer = MetricsWriter.forRun(file, ck, 'step', (m) => warnings.push(m));
    assert.strictEqual(writer.rows, 0);
    assert.deepStrictEqual(
      warnings.map((w) => w.replace(file, 'FILE')),
      [3, 2, 0].map(
        (n) =>
          `FILE: holds ${n} of the 4 rows of steps up to 3 that checkpoint ${ck.dir} covers (the ` +
          'file was changed since); the resumed run appends after them, so the missing rows stay ' +
          'missing',
      ),
    );
    // An intact file warns nothing.
    killedRun();
    MetricsWriter.forRun(file, ck, 'step', (m) => warnings.push(m));
    assert.strictEqual(warnings.length, 3);
  });

  it('keeps the rows up to the step of a checkpoint that did not count them', () => {
    killedRun();
    // A checkpoint of the version before: PPO's counter is "iteration".
    const writer = MetricsWriter.forRun(file, fakeCheckpoint(3, { iteration: 3 }), 'iteration');
    assert.deepStrictEqual(steps(file), [0, 1, 2, 3]);
    assert.strictEqual(writer.rows, 4);
    // A torn row that a later row was glued to is no row.
    fs.writeFileSync(file, '{"step":1}\n{"step":2,"a{"step":2}\n{"step":3}\n');
    MetricsWriter.forRun(file, fakeCheckpoint(5), 'step');
    assert.deepStrictEqual(steps(file), [1, 3]);
  });

  it('starts a run from the beginning with no rows, and leaves a file that needs nothing alone', () => {
    killedRun();
    assert.strictEqual(MetricsWriter.forRun(file, undefined, 'step').rows, 0);
    assert.strictEqual(fs.readFileSync(file, 'utf8'), '');
    fs.rmSync(file);
    MetricsWriter.forRun(file, undefined, 'step');
    assert.ok(!fs.existsSync(file), 'no file is made before a row is written');
    fs.writeFileSync(file, '{"step":1}\n');
    const mtime = fs.statSync(file).mtimeMs;
    MetricsWriter.forRun(file, fakeCheckpoint(1, { [METRICS_ROWS_KEY]: 1 }), 'step');
    assert.strictEqual(fs.statSync(file).mtimeMs, mtime);
    assert.throws(
      () => MetricsWriter.forRun(file, fakeCheckpoint(1, { [METRICS_ROWS_KEY]: -1 }), 'step'),
      /bad metricsRows/,
    );
  });

  it('PPO: a run killed between a row and its checkpoint has each iteration once after resume', async () => {
    const model = loadModel(TINY_LLAMA_DIR);
    const runtime = ModelRuntime.fromModel(model, { threads: 2 });
    const generator = createGenerator(runtime);
    const weight = Float32Array.from({ length: model.config.hiddenSize }, (_, i) => Math.sin(i));
    const scorer = await linearScorer(model, weight);
    const config = tinyPpoConfig({ iterations: 4, checkpointEvery: 2 });
    const options = ppoOptions({ model, generator, rewardScorer: scorer, runDir: dir });
    const metrics = path.join(dir, 'ppo-metrics.jsonl');
    try {
      const controller = new AbortController();
      await assert.rejects(
        trainPpo({
          ...options,
          config,
          // Stopped after iteration 3's row; its last checkpoint is iteration 2's.
          ctx: directContext({
            signal: controller.signal,
            onMetrics: (iteration) => iteration === 3 && controller.abort(),
          }),
        }),
        (e: Error) => e.name === 'AbortError',
      );
      assert.deepStrictEqual(steps(metrics), [1, 2, 3]);
      const latest = path.join(dir, 'checkpoints', POLICY_DIR, 'latest');
      assert.strictEqual(fs.readFileSync(latest, 'utf8').trim(), 'step-0000002');
      const resumed = await trainPpo({ ...options, config, resume: true });
      assert.strictEqual(resumed.iterations, 4);
      assert.deepStrictEqual(steps(metrics), [1, 2, 3, 4]);
    } finally {
      await scorer.release();
      await generator.dispose();
      await runtime.dispose();
    }
  });
});
