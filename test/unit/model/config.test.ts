import * as assert from 'assert';
import * as path from 'path';
import {
  loadGenerationConfig,
  loadModelConfig,
  parseModelConfig,
  ropeInverseFrequencies,
} from '../../../src/model/config';

const FIXTURES = path.join(__dirname, '../../fixtures/model');

const base = {
  architectures: ['LlamaForCausalLM'],
  vocab_size: 128256,
  hidden_size: 4096,
  intermediate_size: 14336,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 8,
};

describe('model config (C4, C5)', () => {
  it('reads the three fixture architectures', () => {
    const llama = loadModelConfig(path.join(FIXTURES, 'tiny-llama'));
    assert.strictEqual(llama.numKvHeads, 2);
    assert.strictEqual(llama.tieWordEmbeddings, false);
    assert.strictEqual(llama.qkvBias, false);
    const qwen = loadModelConfig(path.join(FIXTURES, 'tiny-qwen2'));
    assert.strictEqual(qwen.qkvBias, true);
    assert.strictEqual(qwen.oBias, false);
    assert.strictEqual(qwen.tieWordEmbeddings, true);
    const rope = loadModelConfig(path.join(FIXTURES, 'tiny-llama3rope'));
    assert.strictEqual(rope.ropeScaling.type, 'llama3');
  });

  it('(a) computes Llama 3.1 rope_scaling frequencies', () => {
    const config = parseModelConfig({
      ...base,
      head_dim: 128,
      rope_theta: 500000,
      rope_scaling: {
        rope_type: 'llama3',
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 8192,
      },
    });
    const scaled = ropeInverseFrequencies(config);
    const plain = ropeInverseFrequencies({ ...config, ropeScaling: { type: 'default' } });
    assert.strictEqual(scaled.length, 64);
    let unchanged = 0;
    let divided = 0;
    let smoothed = 0;
    for (let i = 0; i < 64; i++) {
      const ratio = scaled[i] / plain[i];
      if (Math.abs(ratio - 1) < 1e-12) unchanged++;
      else if (Math.abs(ratio - 1 / 8) < 1e-12) divided++;
      else smoothed++;
    }
    assert.deepStrictEqual([unchanged, divided, smoothed], [29, 29, 6]);
    assert.strictEqual(scaled[0], 1);
    assert.ok(Math.abs(scaled[30] / plain[30] - 0.643743) < 1e-6);
    assert.ok(Math.abs(plain[63] - 2.455141e-6) < 1e-12);
    assert.ok(Math.abs(scaled[63] - 3.068926e-7) < 1e-13);
  });

  it('(b) rejects an unsupported rope_scaling type by name', () => {
    assert.throws(
      () => parseModelConfig({ ...base, rope_scaling: { type: 'foo', factor: 2 } }),
      /unsupported rope_scaling type "foo"; supported: default, linear, llama3/,
    );
  });

  it('rejects unsupported architectures, GPT-2 included (C4)', () => {
    assert.throws(
      () => parseModelConfig({ ...base, architectures: ['GPT2LMHeadModel'] }, 'x/config.json'),
      /x\/config.json: "architectures" is \["GPT2LMHeadModel"\]; supported: LlamaForCausalLM.*Conv1D/,
    );
    assert.throws(() => parseModelConfig({ ...base, hidden_act: 'gelu' }), /hidden_act.*"gelu"/);
    assert.throws(
      () => parseModelConfig({ ...base, num_key_value_heads: 5 }),
      /num_key_value_heads" = 5 does not divide num_attention_heads = 32/,
    );
  });

  it('(c) reads eos ids as an int or a list, from both files', () => {
    const config = parseModelConfig({ ...base, eos_token_id: [128001, 128009] });
    assert.deepStrictEqual(config.eosTokenIds, [128001, 128009]);
    const generation = loadGenerationConfig(path.join(FIXTURES, 'tiny-llama'));
    assert.deepStrictEqual(generation.eosTokenIds, [304, 310]);
  });
});
