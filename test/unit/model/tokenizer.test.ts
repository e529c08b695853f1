import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadGenerationConfig, loadModelConfig } from '../../../src/model/config';
import { stopTokenIds } from '../../../src/model/stopIds';
import { CodeTokenizer } from '../../../src/model/tokenizer';
import { buildPrompt } from '../../../src/generation/prompt';

const FIXTURES = path.join(__dirname, '../../fixtures/model');
const names = ['tiny-llama', 'tiny-qwen2', 'tiny-llama3rope'];

const codeStrings = [
  // T1: spaces before punctuation survive even though tokenizer_config asks for cleanup.
  'x != y and a.b == c',
  'python3 ./src/main.py $IN',
  "d = {'a': 'b'}",
  'foo ( bar ) ; baz ?',
  // T2: indentation, tabs, CRLF, runs of spaces, newlines, a literal backslash-n.
  '    if x:\n        return 1\n',
  '\tif (a) {\r\n\t\treturn 1;\r\n\t}\r\n',
  'a  b   c',
  '',
  '\n\n\n',
  'printf("a\\n");',
  'naïve = "日本語 ✓ 😀"',
];

describe('tokenizer (T1, T2, control tokens)', () => {
  for (const name of names) {
    const dir = path.join(FIXTURES, name);
    const tokenizer = CodeTokenizer.load(dir);
    const reference = JSON.parse(
      fs.readFileSync(path.join(FIXTURES, 'reference', `${name}.json`), 'utf8'),
    );

    it(`${name}: encodes like the reference byte-level BPE`, () => {
      for (const { text, ids } of reference.tokenizer) {
        assert.deepStrictEqual(tokenizer.encodePlain(text), ids, JSON.stringify(text));
      }
    });

    it(`${name}: decode(encode(s)) === s byte for byte`, () => {
      for (const text of codeStrings) {
        assert.strictEqual(
          tokenizer.decode(tokenizer.encodePlain(text)),
          text,
          JSON.stringify(text),
        );
      }
    });

    it(`${name}: text that looks like a control token stays text`, () => {
      for (const text of ['<|endoftext|>', 'x = "<fim_prefix><|fim_middle|>"', '<s>']) {
        const ids = tokenizer.encodePlain(text);
        assert.ok(
          ids.every((id) => !tokenizer.specialIds.has(id)),
          text,
        );
        assert.strictEqual(tokenizer.decode(ids), text);
      }
    });
  }

  it('distinguishes a newline from a backslash-n', () => {
    const tokenizer = CodeTokenizer.load(path.join(FIXTURES, 'tiny-llama'));
    assert.deepStrictEqual(tokenizer.encodePlain('\n'), [10]);
    assert.deepStrictEqual(tokenizer.encodePlain('\\n'), [92, 110]);
  });

  it('finds FIM tokens in both naming families and the BOS the post-processor adds', () => {
    const qwen = CodeTokenizer.load(path.join(FIXTURES, 'tiny-llama'));
    assert.strictEqual(qwen.fim?.family, '<|fim_x|>');
    assert.strictEqual(qwen.fim?.prefix, qwen.tokenId('<|fim_prefix|>'));
    assert.deepStrictEqual(qwen.promptPrefixIds, [qwen.tokenId('<s>')]);
    const starcoder = CodeTokenizer.load(path.join(FIXTURES, 'tiny-llama3rope'));
    assert.strictEqual(starcoder.fim?.family, '<fim_x>');
    assert.strictEqual(starcoder.fim?.middle, starcoder.tokenId('<fim_middle>'));
    assert.deepStrictEqual(starcoder.promptPrefixIds, []);
  });

  it("finds DeepSeek-Coder's FIM tokens and lays the prompt out prefix-suffix-middle", () => {
    // tiny-llama's tokenizer with its Qwen-style FIM tokens renamed to DeepSeek-Coder's.
    const source = path.join(FIXTURES, 'tiny-llama');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deepseek-tok-'));
    try {
      const renames: Array<[string, string]> = [
        ['<|fim_prefix|>', '<｜fim▁begin｜>'],
        ['<|fim_suffix|>', '<｜fim▁hole｜>'],
        ['<|fim_middle|>', '<｜fim▁end｜>'],
      ];
      for (const file of ['tokenizer.json', 'tokenizer_config.json']) {
        let text = fs.readFileSync(path.join(source, file), 'utf8');
        for (const [from, to] of renames)
          text = text.split(JSON.stringify(from)).join(JSON.stringify(to));
        fs.writeFileSync(path.join(dir, file), text);
      }
      const tokenizer = CodeTokenizer.load(dir);
      assert.strictEqual(tokenizer.fim?.family, '<｜fim▁x｜>');
      const begin = tokenizer.tokenId('<｜fim▁begin｜>') as number;
      const hole = tokenizer.tokenId('<｜fim▁hole｜>') as number;
      const end = tokenizer.tokenId('<｜fim▁end｜>') as number;
      assert.deepStrictEqual(
        [tokenizer.fim?.prefix, tokenizer.fim?.suffix, tokenizer.fim?.middle],
        [begin, hole, end],
      );
      for (const id of [begin, hole, end]) assert.ok(tokenizer.specialIds.has(id));
      const prompt = buildPrompt(tokenizer, 'a = ', '\nb = 2', 100);
      assert.strictEqual(prompt.mode, 'fill-in-the-middle');
      const ids = prompt.ids;
      assert.ok(ids.indexOf(begin) < ids.indexOf(hole) && ids.indexOf(hole) < ids.indexOf(end));
      assert.strictEqual(ids[ids.length - 1], end);
      // User text spelled like the control tokens stays text.
      const plain = tokenizer.encodePlain('<｜fim▁hole｜>');
      assert.ok(plain.every((id) => !tokenizer.specialIds.has(id)));
      assert.strictEqual(tokenizer.decode(plain), '<｜fim▁hole｜>');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('(C5c) stop ids are the union of config, generation config and tokenizer', () => {
    const dir = path.join(FIXTURES, 'tiny-llama');
    const tokenizer = CodeTokenizer.load(dir);
    const stops = stopTokenIds(loadModelConfig(dir), loadGenerationConfig(dir), tokenizer);
    assert.ok(stops.has(304)); // <|endoftext|>: config and tokenizer
    assert.ok(stops.has(310)); // <|file_sep|>: only generation_config.json lists it
    assert.ok(stops.has(tokenizer.tokenId('<|fim_pad|>') as number)); // control token (C5d)
    assert.ok(!stops.has(10));
  });

  it('decodes control tokens to nothing', () => {
    const tokenizer = CodeTokenizer.load(path.join(FIXTURES, 'tiny-llama'));
    const ids = [...tokenizer.encodePlain('a'), 304, ...tokenizer.encodePlain('b')];
    assert.strictEqual(tokenizer.decode(ids), 'ab');
  });
});
