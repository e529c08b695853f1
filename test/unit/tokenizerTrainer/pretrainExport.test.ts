import * as assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineSession, hostTensor, type HostTensor } from '../../../src/engine';
import { ModelRuntime } from '../../../src/model';
import {
  readSafetensorsHeader,
  readTensorF32,
  writeSafetensors,
} from '../../../src/model/safetensors';
import {
  CHECKPOINT_FILE,
  exportHuggingFace,
  loadCheckpoint,
  saveCheckpoint,
} from '../../../scripts/pretrain/checkpoint';
import {
  buildLogitsGraph,
  initParameters,
  parameterSpecs,
  type ModelShape,
} from '../../../scripts/pretrain/model';
import { scheduleStep, SCHEDULE_STEPS } from '../../../scripts/pretrain/timedTrainer';

const shape: ModelShape = {
  vocabSize: 4096,
  hiddenSize: 32,
  intermediateSize: 48,
  numLayers: 2,
  numHeads: 2,
  contextLength: 64,
  ropeTheta: 10000,
  rmsNormEps: 1e-5,
};

const int64 = (values: number[]) =>
  hostTensor('int64', [1, values.length], BigInt64Array.from(values, BigInt));

describe('pretrain: the exported model loads through the product loader', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pretrain-export-'));
    for (const file of ['tokenizer.json', 'tokenizer_config.json']) {
      copyFileSync(join(__dirname, '../../../models/default', file), join(dir, file));
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('gives the same next-token logits as the training-side graph', async () => {
    const params = initParameters(shape, 7);
    // Make the norms non-trivial so a swapped or ignored norm weight would show.
    for (const spec of parameterSpecs(shape)) {
      if (spec.init === 'ones') params.get(spec.name)!.forEach((_, i, a) => (a[i] = 1 + 0.01 * i));
    }
    const hostParams: Record<string, HostTensor> = {};
    for (const spec of parameterSpecs(shape)) {
      hostParams[spec.name] = hostTensor('float32', spec.shape, params.get(spec.name)!);
    }
    exportHuggingFace(dir, shape, hostParams, { step: '0' });
    // The export is F16: compare against the same rounded weights.
    const header = readSafetensorsHeader(join(dir, 'model.safetensors'));
    const rounded: Record<string, HostTensor> = {};
    for (const spec of parameterSpecs(shape)) {
      rounded[spec.name] = hostTensor('float32', spec.shape, readTensorF32(header, spec.name));
    }
    assert.equal(header.tensors.has('lm_head.weight'), false, 'tied head is not stored');

    const ids = [17, 300, 4000, 9, 9, 1024];
    const training = await EngineSession.create(buildLogitsGraph(shape), { threads: 1 });
    const ours = await training.run({
      ...rounded,
      input_ids: int64(ids),
      positions: int64(ids.map((_, i) => i)),
    });
    await training.release();

    const runtime = ModelRuntime.load(dir, { threads: 1 });
    const session = await runtime.session('logits');
    const theirs = await session.run({
      input_ids: int64(ids),
      positions: int64(ids.map((_, i) => i)),
      key_mask: int64(ids.map(() => 1)),
    });
    await session.release();
    const last = (theirs.logits.data as Float32Array).subarray((ids.length - 1) * 4096);
    const mine = ours.logits.data as Float32Array;
    assert.equal(mine.length, 4096);
    let worst = 0;
    for (let v = 0; v < 4096; v++) worst = Math.max(worst, Math.abs(mine[v] - last[v]));
    assert.ok(worst < 1e-4, `largest logit difference ${worst}`);
  });

  it('saves and resumes a checkpoint exactly, and refuses a different config', () => {
    const params = initParameters(shape, 3);
    const state = {
      step: 12,
      params: Object.fromEntries(
        parameterSpecs(shape).map((s) => [
          s.name,
          hostTensor('float32', s.shape, params.get(s.name)!),
        ]),
      ),
      slots: {
        'model.norm.weight.adam_m': hostTensor('float32', [32], new Float32Array(32).fill(0.5)),
      },
    };
    const runDir = join(dir, 'run');
    saveCheckpoint(runDir, state, {
      step: 12,
      tokens: 999,
      trainSeconds: 4.5,
      configJson: '{"a":1}',
    });
    const loaded = loadCheckpoint(runDir, shape, '{"a":1}');
    assert.ok(loaded);
    assert.equal(loaded.progress.step, 12);
    assert.equal(loaded.progress.tokens, 999);
    assert.equal(loaded.progress.trainSeconds, 4.5);
    const name = 'model.layers.1.mlp.down_proj.weight';
    assert.deepEqual(loaded.state.params[name].data, params.get(name));
    assert.deepEqual(
      loaded.state.slots['model.norm.weight.adam_m'].data,
      new Float32Array(32).fill(0.5),
    );
    assert.throws(() => loadCheckpoint(runDir, shape, '{"a":2}'), /saved run config differs/);
  });

  it('names the file, the key and what to do when checkpoint metadata is not readable', () => {
    const params = initParameters(shape, 3);
    const tensors = Object.fromEntries(
      parameterSpecs(shape).map((s) => [
        s.name,
        { dtype: 'F32' as const, shape: s.shape, data: params.get(s.name)! },
      ]),
    );
    const runDir = join(dir, 'damaged');
    const file = join(runDir, CHECKPOINT_FILE);
    const progress = { step: 1, tokens: 2, trainSeconds: 3 };
    const state = { step: 1, params: {}, slots: {} };
    const what = /move it out of the run folder to start the run afresh/;
    const escaped = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    for (const [config, problem] of [
      ['{"a":1', 'is not valid JSON \\(.*\\); allowed: a JSON object of run flags'],
      ['[1]', 'is \\[1\\]; allowed: a JSON object of run flags'],
      ['null', 'is null; allowed: a JSON object of run flags'],
    ]) {
      saveCheckpoint(runDir, state, { ...progress, configJson: config });
      const error = new RegExp(`${escaped}: metadata "config" ${problem}; .*`);
      assert.throws(() => loadCheckpoint(runDir, shape, '{"a":1}'), error);
      assert.throws(() => loadCheckpoint(runDir, shape, '{"a":1}'), what);
    }
    const meta = { step: '1', tokens: '2', train_seconds: '3', config: '{"a":1}' };
    writeSafetensors(file, tensors, { ...meta, slots: '["model.norm.weight.adam_m"' });
    assert.throws(
      () => loadCheckpoint(runDir, shape, '{"a":1}'),
      new RegExp(`${escaped}: metadata "slots" is not valid JSON .*; allowed: a JSON array`),
    );
    writeSafetensors(file, tensors, { ...meta, slots: '{"m":1}' });
    assert.throws(
      () => loadCheckpoint(runDir, shape, '{"a":1}'),
      /metadata "slots" is \{"m":1\}; allowed: a JSON array of optimizer tensor names; .*afresh/,
    );
    writeSafetensors(file, tensors, { ...meta, slots: '[]' });
    assert.equal(loadCheckpoint(runDir, shape, '{"a":1}')?.progress.step, 1);
  });
});

describe('pretrain: schedule that follows the time box', () => {
  const base = { warmupSteps: 10, maxSteps: 1000, budgetSeconds: 600 };

  it('uses the real step during warmup', () => {
    assert.equal(scheduleStep({ ...base, step: 4, seconds: 300 }), 4);
  });

  it('reaches the end of the schedule when either the time or the step limit is spent', () => {
    assert.equal(scheduleStep({ ...base, step: 50, seconds: 600 }), SCHEDULE_STEPS);
    assert.equal(scheduleStep({ ...base, step: 1000, seconds: 1 }), SCHEDULE_STEPS);
    const half = scheduleStep({ ...base, step: 20, seconds: 300 });
    assert.equal(half, 10 + (SCHEDULE_STEPS - 10) * 0.5);
  });

  it('never feeds a step below the real one (AdamW bias correction)', () => {
    assert.equal(scheduleStep({ ...base, maxSteps: 10 ** 9, step: 500, seconds: 0 }), 500);
  });
});
