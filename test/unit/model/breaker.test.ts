/**
 * Adversarial checks of checkpoint loading, tokenization and generation (issue 4), each built
 * from a malformed or unusual input found while attacking the loader. Every case expects a typed
 * error that names the file/key/value, or the correct result; never a TypeError from deep inside
 * a library and never a silently wrong model.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { StreamingDetokenizer } from '../../../src/generation/detokenizer';
import { LlamaGenerator } from '../../../src/generation/generator';
import { buildPrompt } from '../../../src/generation/prompt';
import { NonFiniteLogitsError, Rng, sampleToken } from '../../../src/generation/sampling';
import type { CompletionRequest } from '../../../src/generation/api';
import { openCheckpoint } from '../../../src/model/checkpoint';
import { ConfigError, parseModelConfig } from '../../../src/model/config';
import { exportMergedCheckpoint } from '../../../src/model/export';
import { loadModel } from '../../../src/model/loader';
import { loadPeftAdapter, savePeftAdapter } from '../../../src/model/lora';
import { ModelRuntime, type KvCache } from '../../../src/model/runtime';
import {
  readSafetensorsHeader,
  readTensorF32,
  SafetensorsError,
  writeSafetensors,
} from '../../../src/model/safetensors';
import { stopTokenIds } from '../../../src/model/stopIds';
import { CodeTokenizer } from '../../../src/model/tokenizer';

const FIXTURES = path.join(__dirname, '../../fixtures/model');

function copyDir(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true });
  for (const f of fs.readdirSync(from)) fs.copyFileSync(path.join(from, f), path.join(to, f));
}

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
}

describe('breaker: loading, tokenization and generation under hostile inputs', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'breaker-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe('Qwen2.5-Coder-style control tokens marked "special": false (C5 d)', () => {
    // Qwen2.5-Coder's tokenizer.json lists <|fim_prefix|> ... <|file_sep|> with special: false.
    function qwenCoderStyle(): CodeTokenizer {
      const json = readJson(path.join(FIXTURES, 'tiny-qwen2/tokenizer.json'));
      for (const t of json.added_tokens as { content: string; special: boolean }[]) {
        if (t.content !== '<|endoftext|>') t.special = false;
      }
      return CodeTokenizer.fromJson(json, { eos_token: '<|endoftext|>' });
    }

    it('encodes user text like <|fim_prefix|> as plain text, not as a control id', () => {
      const tokenizer = qwenCoderStyle();
      const text = 'x = "<|fim_prefix|><|fim_pad|><|file_sep|>"';
      const ids = tokenizer.encodePlain(text);
      for (const control of [305, 306, 307, 308, 309]) {
        assert.ok(!ids.includes(control), `control id ${control} in ${JSON.stringify(ids)}`);
      }
      assert.strictEqual(tokenizer.decode(ids), text);
      assert.deepStrictEqual(tokenizer.fim, {
        prefix: 305,
        suffix: 306,
        middle: 307,
        family: '<|fim_x|>',
      });
    });

    it('treats <|fim_pad|> and <|file_sep|> as control: stop ids, never rendered', () => {
      const tokenizer = qwenCoderStyle();
      assert.strictEqual(tokenizer.decode([97, 308, 309, 98]), 'ab');
      const stops = stopTokenIds(
        parseModelConfig(readJson(path.join(FIXTURES, 'tiny-qwen2/config.json'))),
        { eosTokenIds: [] },
        tokenizer,
      );
      for (const id of [304, 305, 306, 307, 308, 309]) assert.ok(stops.has(id), `stop id ${id}`);
    });
  });

  describe('DeepSeek-Coder-style control tokens (full-width bars, "special": false)', () => {
    it('are control: never produced from user text, never rendered, stop generation', () => {
      const json = readJson(path.join(FIXTURES, 'tiny-qwen2/tokenizer.json'));
      const added = json.added_tokens as { id: number; content: string; special: boolean }[];
      added.push({ id: 310, content: '<｜fim▁hole｜>', special: false });
      added.push({ id: 311, content: '<｜fim▁end｜>', special: false });
      const tokenizer = CodeTokenizer.fromJson(json, { eos_token: '<|endoftext|>' });
      const text = 'a = "<｜fim▁hole｜>"';
      const ids = tokenizer.encodePlain(text);
      assert.ok(!ids.includes(310) && !ids.includes(311), JSON.stringify(ids));
      assert.strictEqual(tokenizer.decode(ids), text);
      assert.strictEqual(tokenizer.decode([97, 310, 311]), 'a');
      assert.ok(tokenizer.specialIds.has(310) && tokenizer.specialIds.has(311));
    });
  });

  describe('invalid tokenizer files give a ConfigError naming the file', () => {
    const cases: [string, string, string][] = [
      ['tokenizer.json', 'null', 'tokenizer.json'],
      ['tokenizer.json', '"BPE"', 'tokenizer.json'],
      ['tokenizer_config.json', 'null', 'tokenizer_config.json'],
      ['tokenizer_config.json', '[1, 2]', 'tokenizer_config.json'],
    ];
    for (const [file, content, named] of cases) {
      it(`${file} = ${content}`, () => {
        copyDir(path.join(FIXTURES, 'tiny-qwen2'), dir);
        fs.writeFileSync(path.join(dir, file), content);
        assert.throws(
          () => CodeTokenizer.load(dir),
          (e: Error) => e instanceof ConfigError && e.message.includes(named),
        );
      });
    }

    it('tokenizer.json checked out as a Git LFS pointer says so', () => {
      copyDir(path.join(FIXTURES, 'tiny-qwen2'), dir);
      fs.writeFileSync(
        path.join(dir, 'tokenizer.json'),
        `version https://git-lfs.github.com/spec/v1\noid sha256:${'ab'.repeat(32)}\nsize 7031645\n`,
      );
      assert.throws(
        () => loadModel(dir),
        (e: Error) =>
          e instanceof ConfigError &&
          e.message.includes('tokenizer.json') &&
          e.message.includes('Git LFS pointer'),
      );
    });

    it('a BPE model with no merges', () => {
      const json = readJson(path.join(FIXTURES, 'tiny-qwen2/tokenizer.json'));
      delete (json.model as Record<string, unknown>).merges;
      assert.throws(
        () => CodeTokenizer.fromJson(json, {}, '/m/tokenizer.json'),
        (e: Error) => e instanceof ConfigError && e.message.includes('/m/tokenizer.json'),
      );
    });

    it('added_tokens that is not a list', () => {
      const json = readJson(path.join(FIXTURES, 'tiny-qwen2/tokenizer.json'));
      json.added_tokens = 'x';
      assert.throws(
        () => CodeTokenizer.fromJson(json, {}, '/m/tokenizer.json'),
        (e: Error) => e instanceof ConfigError && /added_tokens/.test(e.message),
      );
    });
  });

  describe('config.json fields of the wrong type are errors, not silently false (C5)', () => {
    const base = readJson(path.join(FIXTURES, 'tiny-llama/config.json'));
    for (const key of ['tie_word_embeddings', 'attention_bias', 'mlp_bias']) {
      it(`${key}: "true" (a string)`, () => {
        assert.throws(
          () => parseModelConfig({ ...base, [key]: 'true' }, '/m/config.json'),
          (e: Error) =>
            e instanceof ConfigError &&
            e.message.includes('/m/config.json') &&
            e.message.includes(key) &&
            e.message.includes('"true"'),
        );
      });
    }

    it('a quantized checkpoint (quantization_config) is refused by name', () => {
      assert.throws(
        () =>
          parseModelConfig(
            { ...base, quantization_config: { quant_method: 'gptq', bits: 4 } },
            '/m/config.json',
          ),
        (e: Error) =>
          e instanceof ConfigError &&
          e.message.includes('quantization_config') &&
          e.message.includes('gptq'),
      );
    });
  });

  describe('sharded index naming something that is not a shard file (C3)', () => {
    for (const shard of ['..', '.', '']) {
      it(`weight_map value ${JSON.stringify(shard)}`, () => {
        copyDir(path.join(FIXTURES, 'tiny-qwen2'), dir);
        const indexFile = path.join(dir, 'model.safetensors.index.json');
        const index = readJson(indexFile) as { weight_map: Record<string, string> };
        index.weight_map['model.norm.weight'] = shard;
        fs.writeFileSync(indexFile, JSON.stringify(index));
        assert.throws(
          () => openCheckpoint(dir),
          (e: Error) =>
            e instanceof ConfigError &&
            e.message.includes('model.norm.weight') &&
            e.message.includes(JSON.stringify(shard)),
        );
      });
    }

    it('a shard truncated after its header was read fails the read instead of giving zeros', () => {
      const file = path.join(dir, 'model.safetensors');
      writeSafetensors(file, {
        a: { dtype: 'F32', shape: [4], data: Float32Array.of(1, 2, 3, 4) },
      });
      const header = readSafetensorsHeader(file);
      fs.truncateSync(file, fs.statSync(file).size - 8);
      assert.throws(
        () => readTensorF32(header, 'a'),
        (e: Error) =>
          e instanceof SafetensorsError && e.message.includes(file) && /truncated/.test(e.message),
      );
    });

    it('a folder passed as a safetensors file', () => {
      assert.throws(
        () => readSafetensorsHeader(dir),
        (e: Error) => e instanceof SafetensorsError && e.message.includes('not a regular file'),
      );
    });
  });

  describe('adapter_config.json that is not an object', () => {
    it('null', () => {
      copyDir(path.join(FIXTURES, 'tiny-llama-lora'), dir);
      fs.writeFileSync(path.join(dir, 'adapter_config.json'), 'null');
      const model = loadModel(path.join(FIXTURES, 'tiny-llama'));
      assert.throws(
        () => loadPeftAdapter(dir, model),
        (e: Error) => e instanceof ConfigError && e.message.includes('adapter_config.json'),
      );
    });
  });

  describe('an adapter holding NaN (a diverged run) is refused by key at import', () => {
    it('names the tensor and the index', () => {
      const model = loadModel(path.join(FIXTURES, 'tiny-llama'));
      const adapter = loadPeftAdapter(path.join(FIXTURES, 'tiny-llama-lora'), model);
      const [module, factors] = [...adapter.factors][0];
      factors.b[3] = NaN;
      savePeftAdapter(dir, adapter);
      assert.throws(
        () => loadPeftAdapter(dir, model),
        (e: Error) =>
          e instanceof ConfigError &&
          e.message.includes(`${module}.lora_B.weight`) &&
          e.message.includes('NaN') &&
          e.message.includes('[3]'),
      );
    });
  });

  describe('token ids outside the vocabulary (O1)', () => {
    let runtime: ModelRuntime;
    before(() => (runtime = ModelRuntime.load(path.join(FIXTURES, 'tiny-llama'), { threads: 1 })));
    after(() => runtime.dispose());

    for (const bad of [-1, 314, 99999]) {
      it(`step with id ${bad} rejects naming input_ids and the range, then still works`, async () => {
        await assert.rejects(
          runtime.step(runtime.emptyCache(1, 3), [1, bad, 3], [0, 1, 2]),
          (e: Error) =>
            e instanceof RangeError &&
            e.message.includes('input_ids') &&
            e.message.includes(String(bad)) &&
            e.message.includes('314'),
        );
        const ok = await runtime.step(runtime.emptyCache(1, 3), [1, 2, 3], [0, 1, 2]);
        assert.strictEqual(ok.logits.length, 314);
      });
    }

    it('completionLogprobs with a negative completion id rejects instead of scoring -1e9', async () => {
      await assert.rejects(
        runtime.completionLogprobs([{ prompt: [1, 2], completion: [-1] }]),
        (e: Error) => e instanceof RangeError && e.message.includes('-1'),
      );
    });

    it('logits with an id past the vocabulary rejects by name', async () => {
      await assert.rejects(
        runtime.logits([[1, 2, 400]]),
        (e: Error) => e instanceof RangeError && e.message.includes('400'),
      );
    });
  });

  describe('request validation names the field', () => {
    const request: CompletionRequest = {
      prefix: 'x',
      suffix: '',
      count: 1,
      maxNewTokens: 2,
      maxLines: 0,
      temperature: 0,
      topK: 0,
      topP: 1,
      seed: 1,
    };
    // Validation runs before the runtime is touched, so a bare object stands in for it.
    const generator = new LlamaGenerator({} as ModelRuntime, false);

    it('stopStrings given as a string', async () => {
      await assert.rejects(
        generator.complete({ ...request, stopStrings: '\n' as unknown as string[] }),
        (e: Error) => e instanceof TypeError && /stopStrings must be an array/.test(e.message),
      );
    });

    it('a null request', async () => {
      await assert.rejects(
        generator.complete(null as unknown as CompletionRequest),
        (e: Error) => e instanceof TypeError && e.message.includes('request'),
      );
    });
  });

  describe('kept token ids when the text holds an invalid UTF-8 byte', () => {
    /** A runtime whose model emits `script` (one candidate), over the real tiny-llama model. */
    function scripted(script: number[]): ModelRuntime {
      const model = loadModel(path.join(FIXTURES, 'tiny-llama'));
      const v = model.config.vocabSize;
      let calls = 0;
      const emptyCache = (batch: number, capacity = 0): KvCache => ({
        batch,
        capacity,
        kvHeads: 1,
        headDim: 1,
        length: 0,
        keys: [],
        values: [],
        valid: new Uint8Array(batch * capacity),
      });
      return {
        model,
        vocabSize: v,
        emptyCache,
        async step(cache: KvCache, ids: readonly number[]) {
          const logits = new Float32Array(cache.batch * v);
          logits[script[Math.min(calls++, script.length - 1)]] = 100;
          const length = cache.length + ids.length / cache.batch;
          const capacity = Math.max(cache.capacity, length);
          return { logits, cache: { ...cache, length, capacity } };
        },
      } as unknown as ModelRuntime;
    }
    const request: CompletionRequest = {
      prefix: 'x',
      suffix: '',
      count: 1,
      maxNewTokens: 8,
      maxLines: 1,
      temperature: 0,
      topK: 0,
      topP: 1,
      seed: 1,
    };

    it('a stray continuation byte (shown as U+FFFD) does not pull in tokens past the cut', async () => {
      // Byte tokens: ids equal byte values in this vocabulary. 0x80 alone is invalid UTF-8.
      const generator = new LlamaGenerator(scripted([0x80, 10, 97, 98, 99]), false);
      const [line] = await generator.complete(request);
      assert.strictEqual(line.text, '\uFFFD\n');
      assert.strictEqual(line.stopReason, 'max-lines');
      assert.deepStrictEqual(line.tokenIds, [0x80, 10]);
      const stopped = await new LlamaGenerator(scripted([0x80, 0x80, 97, 98, 99]), false).complete({
        ...request,
        maxLines: 0,
        stopStrings: ['a'],
      });
      assert.strictEqual(stopped[0].text, '\uFFFD\uFFFD');
      assert.deepStrictEqual(stopped[0].tokenIds, [0x80, 0x80]);
    });
  });

  describe('abort during the prefill', () => {
    it('rejects with AbortError even when every candidate stops on its first token', async () => {
      const model = loadModel(path.join(FIXTURES, 'tiny-llama'));
      const controller = new AbortController();
      const runtime = {
        model,
        vocabSize: model.config.vocabSize,
        emptyCache: (batch: number): KvCache => ({
          batch,
          capacity: 0,
          kvHeads: 1,
          headDim: 1,
          length: 0,
          keys: [],
          values: [],
          valid: new Uint8Array(0),
        }),
        async step(cache: KvCache) {
          controller.abort(); // the user typed on while the prompt was being read
          const logits = new Float32Array(model.config.vocabSize);
          logits[304] = 100; // EOS first
          return { logits, cache };
        },
      } as unknown as ModelRuntime;
      await assert.rejects(
        new LlamaGenerator(runtime, false).complete(
          {
            prefix: 'x',
            suffix: '',
            count: 2,
            maxNewTokens: 4,
            maxLines: 0,
            temperature: 0,
            topK: 0,
            topP: 1,
            seed: 1,
          },
          controller.signal,
        ),
        (e: Error) => e.name === 'AbortError',
      );
    });
  });

  describe('prompt + maxNewTokens never exceed the context (sliding window is exact only then)', () => {
    for (const model of ['tiny-llama', 'tiny-qwen2']) {
      const tokenizer = CodeTokenizer.load(path.join(FIXTURES, model));
      for (const suffix of ['', 'y = 2\n']) {
        it(`${model}, ${suffix ? 'fill-in-the-middle' : 'left-to-right'}: budgets 1 to 6`, () => {
          for (let budget = 1; budget <= 6; budget++) {
            let ids: number[];
            try {
              ids = buildPrompt(tokenizer, 'x = 1\n'.repeat(50), suffix, budget).ids;
            } catch (e) {
              // Refusing is fine when not even the control tokens fit, if it says why.
              assert.ok(e instanceof RangeError && /maxNewTokens/.test(e.message), String(e));
              continue;
            }
            assert.ok(ids.length <= budget, `budget ${budget}: ${ids.length} prompt tokens`);
          }
        });
      }
    }
  });

  describe('merged export never overwrites the base or leaves a stale index in charge', () => {
    it('refuses a symlink to the source folder and leaves the base weights unchanged', () => {
      const source = path.join(dir, 'base');
      copyDir(path.join(FIXTURES, 'tiny-llama'), source);
      const link = path.join(dir, 'link');
      fs.symlinkSync(source, link);
      const before = fs.readFileSync(path.join(source, 'model.safetensors'));
      const model = loadModel(source);
      const adapter = loadPeftAdapter(path.join(FIXTURES, 'tiny-llama-lora'), model);
      assert.throws(
        () => exportMergedCheckpoint(model, adapter, link),
        (e: Error) => e.message.includes('source model folder'),
      );
      assert.ok(fs.readFileSync(path.join(source, 'model.safetensors')).equals(before));
    });

    it('refuses a folder that holds a model.safetensors.index.json (it would win over the export)', () => {
      const out = path.join(dir, 'out');
      copyDir(path.join(FIXTURES, 'tiny-qwen2'), out);
      const model = loadModel(path.join(FIXTURES, 'tiny-llama'));
      assert.throws(
        () => exportMergedCheckpoint(model, undefined, out),
        (e: Error) => e.message.includes('model.safetensors.index.json'),
      );
      assert.ok(!fs.existsSync(path.join(out, 'model.safetensors')));
    });
  });

  describe('streaming detokenizer keeps U+FEFF (BOM / zero-width no-break space)', () => {
    it('at the start of the completion and of any chunk', () => {
      const tokenizer = CodeTokenizer.load(path.join(FIXTURES, 'tiny-llama'));
      for (const text of ['\uFEFFdef f():', 'x = "\uFEFF"', 'a\n\uFEFF\uFEFFb']) {
        const detokenizer = new StreamingDetokenizer((id) => tokenizer.tokenBytes(id));
        let streamed = '';
        for (const id of tokenizer.encodePlain(text)) streamed += detokenizer.push(id);
        assert.strictEqual(streamed, text, JSON.stringify(text));
        assert.strictEqual(detokenizer.text, text);
      }
    });
  });

  describe('sampling from non-finite logits', () => {
    it('all-NaN logits (a diverged model or adapter) raise instead of emitting token 0', () => {
      const logits = new Float32Array(8).fill(NaN);
      for (const temperature of [0, 0.8]) {
        assert.throws(
          () => sampleToken(logits, { temperature, topK: 0, topP: 1 }, new Rng(1)),
          (e: Error) => e instanceof NonFiniteLogitsError && /NaN/.test(e.message),
        );
      }
    });
  });
});
