import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { openCheckpoint } from '../../../src/model/checkpoint';
import { loadModelConfig } from '../../../src/model/config';
import {
  readSafetensorsHeader,
  readTensorF32,
  writeSafetensors,
} from '../../../src/model/safetensors';
import { resolveLlamaWeights } from '../../../src/model/weights';
import { ModelRuntime } from '../../../src/model/runtime';

const FIXTURES = path.join(__dirname, '../../fixtures/model');

function copyDir(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true });
  for (const f of fs.readdirSync(from)) fs.copyFileSync(path.join(from, f), path.join(to, f));
}

describe('checkpoint loading (C3)', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('(a) uses only the indexed shards when a stray model.safetensors sits next to them', async () => {
    copyDir(path.join(FIXTURES, 'tiny-qwen2'), dir);
    const ones = new Float32Array(313 * 32).fill(1);
    writeSafetensors(path.join(dir, 'model.safetensors'), {
      'model.embed_tokens.weight': { dtype: 'F32', shape: [313, 32], data: ones },
    });
    const checkpoint = openCheckpoint(dir);
    assert.ok(checkpoint.files.every((f) => /model-0000\d-of-00002/.test(f)));
    const embed = checkpoint.readF32('model.embed_tokens.weight');
    const shard = checkpoint.tensors.get('model.embed_tokens.weight')?.file as string;
    assert.deepStrictEqual(
      embed,
      readTensorF32(readSafetensorsHeader(shard), 'model.embed_tokens.weight'),
    );
    assert.notStrictEqual(embed[0], 1);
    // And the forward pass still gives the reference logits.
    const reference = JSON.parse(
      fs.readFileSync(path.join(FIXTURES, 'reference/tiny-qwen2.json'), 'utf8'),
    );
    const runtime = ModelRuntime.load(dir, { threads: 1 });
    try {
      const [logits] = await runtime.logits([reference.prompts[0].ids]);
      let error = 0;
      logits.forEach(
        (x, i) => (error = Math.max(error, Math.abs(x - reference.prompts[0].logits[i]))),
      );
      assert.ok(error < 1e-4, `max abs error ${error}`);
    } finally {
      await runtime.dispose();
    }
  });

  it('(b) ties the head to the embedding when the config says so', () => {
    const source = path.join(FIXTURES, 'tiny-qwen2');
    const weights = resolveLlamaWeights(loadModelConfig(source), openCheckpoint(source));
    assert.strictEqual(weights.headTied, true);
    assert.strictEqual(weights.head.name, 'model.embed_tokens.weight');
  });

  it('(c) untied config without lm_head fails naming the tensor', () => {
    copyDir(path.join(FIXTURES, 'tiny-qwen2'), dir);
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    config.tie_word_embeddings = false;
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    assert.throws(
      () => resolveLlamaWeights(loadModelConfig(dir), openCheckpoint(dir)),
      /missing tensor lm_head.weight/,
    );
  });

  it('(d) an index entry that its shard lacks names both tensor and shard', () => {
    copyDir(path.join(FIXTURES, 'tiny-qwen2'), dir);
    const indexFile = path.join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(fs.readFileSync(indexFile, 'utf8'));
    index.weight_map['lm_head.weight'] = 'model-00002-of-00002.safetensors';
    fs.writeFileSync(indexFile, JSON.stringify(index));
    assert.throws(
      () => openCheckpoint(dir),
      /model-00002-of-00002.safetensors.*"lm_head.weight".*has no such tensor/,
    );
  });

  it('(e) loads a single-file checkpoint, and reports a missing one', () => {
    const checkpoint = openCheckpoint(path.join(FIXTURES, 'tiny-llama'));
    assert.ok(checkpoint.tensors.has('lm_head.weight'));
    assert.throws(
      () => openCheckpoint(dir),
      /has neither model.safetensors nor model.safetensors.index.json/,
    );
  });

  it('checks tensor shapes against the config', () => {
    copyDir(path.join(FIXTURES, 'tiny-llama'), dir);
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    config.intermediate_size = 48;
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    assert.throws(
      () => resolveLlamaWeights(loadModelConfig(dir), openCheckpoint(dir)),
      /gate_proj.weight has shape \[64,32\], config.json implies \[48,32\]/,
    );
  });
});
