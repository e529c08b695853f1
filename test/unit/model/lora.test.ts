import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { EngineSession, Graph, nn } from '../../../src/engine';
import { exportMergedCheckpoint } from '../../../src/model/export';
import {
  initLora,
  loadPeftAdapter,
  loraScale,
  mergeIntoWeight,
  savePeftAdapter,
  type LoraAdapter,
} from '../../../src/model/lora';
import { ModelRuntime } from '../../../src/model/runtime';
import {
  readSafetensorsHeader,
  readTensorF32,
  writeSafetensors,
} from '../../../src/model/safetensors';

const FIXTURES = path.join(__dirname, '../../fixtures/model');
const ADAPTER = path.join(FIXTURES, 'tiny-llama-lora');

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.strictEqual(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

describe('LoRA (R6)', () => {
  let runtime: ModelRuntime;
  let dir: string;
  const reference = JSON.parse(
    fs.readFileSync(path.join(FIXTURES, 'reference/tiny-llama.json'), 'utf8'),
  );
  before(() => {
    runtime = ModelRuntime.load(path.join(FIXTURES, 'tiny-llama'), { threads: 1 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lora-'));
  });
  after(async () => {
    await runtime.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('scales by alpha / r: W = I, r = 1, alpha = 2 gives [7, 2] unmerged and merged', async () => {
    const config = { rank: 1, alpha: 2, targets: ['q_proj' as const], useRslora: false };
    assert.strictEqual(loraScale(config), 2);
    assert.strictEqual(loraScale({ ...config, rank: 4, alpha: 8, useRslora: true }), 4);
    const g = new Graph('one-linear');
    const x = g.input('x', 'float32', [1, 2]);
    const w = g.input('w', 'float32', [2, 2]);
    const a = g.input('a', 'float32', [1, 2]);
    const b = g.input('b', 'float32', [2, 1]);
    g.output('y', nn.linear(x, w, { lora: { a, b, scale: loraScale(config) } }));
    g.output('y_merged', nn.linear(x, w));
    const session = await EngineSession.create(g.build());
    const identity = Float32Array.of(1, 0, 0, 1);
    const factors = {
      a: Float32Array.of(1, 1),
      b: Float32Array.of(1, 0),
      inFeatures: 2,
      outFeatures: 2,
    };
    const merged = mergeIntoWeight(identity, factors, 1, loraScale(config));
    assert.deepStrictEqual([...merged], [3, 2, 0, 1]);
    const feeds = (weight: Float32Array) => ({
      x: { dtype: 'float32' as const, shape: [1, 2], data: Float32Array.of(1, 2) },
      w: { dtype: 'float32' as const, shape: [2, 2], data: weight },
      a: { dtype: 'float32' as const, shape: [1, 2], data: factors.a },
      b: { dtype: 'float32' as const, shape: [2, 1], data: factors.b },
    });
    const unmergedOut = await session.run(feeds(identity));
    assert.deepStrictEqual([...unmergedOut.y.data], [7, 2]);
    const mergedOut = await session.run(feeds(merged));
    assert.deepStrictEqual([...mergedOut.y_merged.data], [7, 2]);
    await session.release();
  });

  it('adapter logits, log-probs and entropy match the PyTorch reference', async () => {
    const adapter = loadPeftAdapter(ADAPTER, runtime.model);
    assert.strictEqual(adapter.factors.size, 14);
    assert.strictEqual(loraScale(adapter.config), 2);
    const [logits] = await runtime.logits([reference.prompts[0].ids], adapter);
    assert.ok(maxAbsDiff(logits, reference.lora.logits) < 1e-4);
    const rows = reference.lora.completions as {
      prompt: number[];
      completion: number[];
      logprobs: number[];
      entropy: number[];
    }[];
    const out = await runtime.completionLogprobs(rows, {
      adapter,
      temperature: reference.lora.temperature,
    });
    out.forEach((o, i) => {
      assert.ok(maxAbsDiff(o.logprobs, rows[i].logprobs) < 1e-4, `row ${i} logprobs`);
      assert.ok(maxAbsDiff(o.entropy, rows[i].entropy) < 1e-4, `row ${i} entropy`);
    });
    // Batched rows of different lengths equal rows scored alone.
    const alone = await runtime.completionLogprobs([rows[1]], {
      adapter,
      temperature: reference.lora.temperature,
    });
    assert.ok(maxAbsDiff(alone[0].logprobs, out[1].logprobs) < 1e-5);
  });

  it('a fresh adapter (B = 0) leaves the base model unchanged', async () => {
    const adapter = initLora(
      runtime.model,
      { rank: 8, alpha: 16, targets: ['q_proj', 'v_proj'], useRslora: false },
      3,
    );
    const [base] = await runtime.logits([reference.prompts[0].ids]);
    const [adapted] = await runtime.logits([reference.prompts[0].ids], adapter);
    assert.ok(maxAbsDiff(base, adapted) < 1e-6);
    assert.ok([...adapter.factors.values()][0].a.some((x) => x !== 0));
  });

  it('exports and re-imports PEFT adapters, with an extra base_model.model. prefix too', () => {
    const adapter = loadPeftAdapter(ADAPTER, runtime.model);
    const out = path.join(dir, 'exported');
    savePeftAdapter(out, adapter, 'tiny-llama');
    const config = JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8'));
    assert.strictEqual(config.r, 4);
    assert.strictEqual(config.lora_alpha, 8);
    assert.strictEqual(config.use_rslora, false);
    const header = readSafetensorsHeader(path.join(out, 'adapter_model.safetensors'));
    assert.ok(header.tensors.has('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'));
    const again = loadPeftAdapter(out, runtime.model);
    assert.strictEqual(again.factors.size, adapter.factors.size);
    for (const [module, f] of adapter.factors)
      assert.deepStrictEqual(again.factors.get(module)?.b, f.b);

    const prefixed = path.join(dir, 'prefixed');
    fs.mkdirSync(prefixed);
    fs.copyFileSync(
      path.join(out, 'adapter_config.json'),
      path.join(prefixed, 'adapter_config.json'),
    );
    const tensors: Parameters<typeof writeSafetensors>[1] = {};
    for (const [key, entry] of header.tensors) {
      tensors[`base_model.model.${key}`] = {
        dtype: 'F32',
        shape: entry.shape,
        data: readTensorF32(header, key),
      };
    }
    writeSafetensors(path.join(prefixed, 'adapter_model.safetensors'), tensors);
    assert.strictEqual(loadPeftAdapter(prefixed, runtime.model).factors.size, 14);
  });

  it('an adapter whose keys match no module is an error naming the first key', () => {
    const wrong = path.join(dir, 'wrong');
    fs.mkdirSync(wrong);
    fs.copyFileSync(
      path.join(ADAPTER, 'adapter_config.json'),
      path.join(wrong, 'adapter_config.json'),
    );
    writeSafetensors(path.join(wrong, 'adapter_model.safetensors'), {
      'base_model.model.transformer.h.0.attn.c_attn.lora_A.weight': {
        dtype: 'F32',
        shape: [4, 32],
        data: new Float32Array(128),
      },
      'base_model.model.transformer.h.0.attn.c_attn.lora_B.weight': {
        dtype: 'F32',
        shape: [96, 4],
        data: new Float32Array(384),
      },
    });
    assert.throws(
      () => loadPeftAdapter(wrong, runtime.model),
      /"base_model.model.transformer.h.0.attn.c_attn.lora_A.weight" matches no LoRA module of tiny-llama \(0 of 2/,
    );
  });

  it('counts the tensors, not the modules, that matched before a key that matches none', () => {
    const partial = path.join(dir, 'partial');
    fs.mkdirSync(partial);
    fs.copyFileSync(
      path.join(ADAPTER, 'adapter_config.json'),
      path.join(partial, 'adapter_config.json'),
    );
    const header = readSafetensorsHeader(path.join(ADAPTER, 'adapter_model.safetensors'));
    const keys = [...header.tensors.keys()];
    const last = keys[keys.length - 1];
    const renamed = last.replace('model.layers', 'transformer.h');
    const tensors: Parameters<typeof writeSafetensors>[1] = {};
    for (const [key, entry] of header.tensors) {
      tensors[key === last ? renamed : key] = {
        dtype: 'F32',
        shape: entry.shape,
        data: readTensorF32(header, key),
      };
    }
    const file = path.join(partial, 'adapter_model.safetensors');
    writeSafetensors(file, tensors);
    const written = [...readSafetensorsHeader(file).tensors.keys()];
    assert.strictEqual(written[written.length - 1], renamed, 'the renamed tensor is read last');
    const n = keys.length;
    assert.throws(
      () => loadPeftAdapter(partial, runtime.model),
      new RegExp(
        `"${renamed.replace(/\./g, '\\.')}" matches no LoRA module of tiny-llama \\(${n - 1} of ${n} tensors matched before it;`,
      ),
    );
  });

  it('a merged full-checkpoint export agrees with the unmerged adapter', async () => {
    const adapter: LoraAdapter = loadPeftAdapter(ADAPTER, runtime.model);
    const out = path.join(dir, 'merged');
    exportMergedCheckpoint(runtime.model, adapter, out);
    for (const f of [
      'config.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'generation_config.json',
    ]) {
      assert.ok(fs.existsSync(path.join(out, f)), f);
    }
    const merged = ModelRuntime.load(out, { threads: 1 });
    try {
      const [unmergedLogits] = await runtime.logits([reference.prompts[0].ids], adapter);
      const [mergedLogits] = await merged.logits([reference.prompts[0].ids]);
      const error = maxAbsDiff(unmergedLogits, mergedLogits);
      assert.ok(error < 1e-4, `merged vs unmerged ${error}`);
      assert.ok(maxAbsDiff(mergedLogits, reference.lora.logits) < 1e-4);
    } finally {
      await merged.dispose();
    }
  });
});
