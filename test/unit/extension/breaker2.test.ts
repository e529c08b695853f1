import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  adapterChoices,
  readAdapterHistory,
  restorableAdapter,
  type AdapterEntry,
} from '../../../src/extension/adapterHistory';
import { modelFingerprint } from '../../../src/data/modelFingerprint';

describe('breaker 2: adapter history that cannot be read', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adapter-history-b2-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reports a history path that is a folder as a problem instead of throwing', async () => {
    const file = path.join(dir, 'adapters.jsonl');
    fs.mkdirSync(file);
    // "Select adapter" reads this; a throw would end the command with no usable message.
    const read = await readAdapterHistory(file);
    assert.deepStrictEqual(read.entries, []);
    assert.strictEqual(read.problems.length, 1);
    assert.match(read.problems[0], new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
    assert.match(read.problems[0], /cannot be read.*EISDIR/);
    assert.ok(fs.statSync(file).isDirectory(), 'the folder is left as it is');
  });
});

describe('breaker 2: an adapter and the weights it was trained on', () => {
  let dir: string;
  let model: string;
  /** A model folder with a safetensors file of one F32 tensor holding `values`. */
  const writeModel = (values: number[]) => {
    const header = Buffer.from(
      JSON.stringify({
        w: { dtype: 'F32', shape: [values.length], data_offsets: [0, 4 * values.length] },
      }),
    );
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE(BigInt(header.length));
    fs.writeFileSync(
      path.join(model, 'model.safetensors'),
      Buffer.concat([size, header, Buffer.from(new Float32Array(values).buffer)]),
    );
    fs.writeFileSync(path.join(model, 'config.json'), '{"model_type":"llama"}');
  };
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adapter-model-b2-'));
    model = path.join(dir, 'model');
    fs.mkdirSync(model);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('fingerprints the weights: same bytes give the same value, new weights another', () => {
    writeModel([1, 2, 3, 4]);
    const before = modelFingerprint(model);
    assert.ok(before, 'a fingerprint');
    assert.strictEqual(modelFingerprint(model), before);
    // Same shapes (so the same safetensors header), other values: a retrained model in place.
    writeModel([1, 2, 3, 5]);
    assert.notStrictEqual(modelFingerprint(model), before);
    assert.strictEqual(modelFingerprint(path.join(dir, 'missing')), undefined);
  });

  it('does not restore an adapter over new weights in the same folder', () => {
    const saved = { name: 'run-1 ppo', path: '/runs/run-1/ppo/policy', modelDir: model };
    const exists = () => true;
    const trainedOn = { ...saved, modelFingerprint: 'aaaa' };
    assert.deepStrictEqual(restorableAdapter(trainedOn, model, exists, 'aaaa'), {
      adapter: trainedOn,
    });
    const result = restorableAdapter(trainedOn, model, exists, 'bbbb');
    assert.strictEqual(result.adapter, undefined);
    assert.match(
      result.problem!,
      /the weights in .* changed since adapter run-1 ppo was trained on them; using the base model/,
    );
    // A choice saved before fingerprints existed cannot be checked and is kept.
    assert.deepStrictEqual(restorableAdapter(saved, model, exists, 'bbbb'), { adapter: saved });
  });

  it('offers an adapter of earlier weights in the same folder only as a warning', () => {
    const entry: AdapterEntry = {
      runId: 'run-1',
      algorithm: 'ppo',
      time: '2026-12-04T18:00:00.000Z',
      path: '/runs/run-1/ppo/policy',
      modelDir: model,
      modelFingerprint: 'aaaa',
      promoted: true,
      reason: 'won',
    };
    const current = adapterChoices([entry], model, undefined, () => true, 'aaaa').choices[1];
    assert.strictEqual(current.problem, undefined);
    assert.deepStrictEqual(current.target, {
      name: 'run-1 ppo',
      path: entry.path,
      modelDir: model,
      modelFingerprint: 'aaaa',
    });
    const stale = adapterChoices([entry], model, undefined, () => true, 'bbbb').choices[1];
    assert.match(stale.description, /\$\(warning\) trained on earlier weights/);
    assert.match(stale.problem!, /adapter run-1 ppo was trained on earlier weights in /);
  });
});
