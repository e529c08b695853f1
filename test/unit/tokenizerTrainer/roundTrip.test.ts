import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { trainBpe } from '../../../scripts/tokenizer/bpe';
import {
  buildTokenizerFiles,
  BYTE_ID_OFFSET,
  PRETOKENIZE_PATTERN,
  SPECIAL_IDS,
  SPECIAL_TOKENS,
} from '../../../scripts/tokenizer/format';
import { countPretokens } from '../../../scripts/tokenizer/main';

/** Strings that broke code tokenizers elsewhere (cases T1 and T2) plus unicode and emoji. */
const ROUND_TRIP_CASES = [
  'x != y and a.b == c',
  'python3 ./src/main.py $IN',
  "d = {'a': 'b'}",
  'foo ( bar ) ; baz ?',
  '    if x:\n        return 1\n',
  '\tif (a) {\r\n\t\treturn 1;\r\n\t}\r\n',
  'a  b   c',
  '\n\n\n',
  'printf("a\\n");',
  ' leading space and trailing   ',
  '\r\n\r\n  \t \r\n',
  'const café = "naïve façade";  // déjà vu',
  'const 名前 = "テスト"; // 中文注释',
  'emoji: 😀👍🏽 family: 👨‍👩‍👧‍👦 flag: 🇯🇵',
  'let s = `${a}\\t${b}`;\u00a0\u2028\u2029\ufeff',
  'function f() {\n\treturn [1, 2, 3].map((x) => x * 2);\n}\n',
  'e\u0301 combining, zero\u200bwidth',
];

const CODE_SAMPLE = [
  'function add(a, b) {\n  return a + b;\n}\n',
  'export const value = items.map((item) => item.name).filter(Boolean);\n',
  'class Point {\n  constructor(x, y) {\n    this.x = x;\n    this.y = y;\n  }\n}\n',
  'if (error) {\n    throw new Error(`bad value ${value}`);\n}\n',
  'for (let i = 0; i < length; i++) {\n\tsum += values[i];\n}\r\n',
];

function trainSmall(vocabSize: number): Tokenizer {
  const texts = Array.from({ length: 20 }, () => CODE_SAMPLE).flat();
  const { words, counts } = countPretokens(texts);
  const firstNewId = BYTE_ID_OFFSET + 256;
  const { merges } = trainBpe(words, counts, firstNewId, vocabSize - firstNewId);
  const { tokenizer, tokenizerConfig } = buildTokenizerFiles(merges, 256);
  return new Tokenizer(JSON.parse(JSON.stringify(tokenizer)), tokenizerConfig);
}

function roundTrip(tokenizer: Tokenizer, text: string): { ids: number[]; text: string } {
  const ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
  // @huggingface/tokenizers refuses to decode an empty id list; the empty string has no ids.
  return { ids, text: ids.length === 0 ? '' : tokenizer.decode(ids) };
}

function checkRoundTrips(tokenizer: Tokenizer): void {
  for (const text of ROUND_TRIP_CASES) {
    assert.equal(roundTrip(tokenizer, text).text, text, `round trip of ${JSON.stringify(text)}`);
  }
  assert.deepEqual(roundTrip(tokenizer, ''), { ids: [], text: '' });
}

describe('tokenizer trainer: tokenizer.json through @huggingface/tokenizers', () => {
  it('round-trips code byte for byte with a freshly trained tokenizer', () => {
    const tokenizer = trainSmall(BYTE_ID_OFFSET + 256 + 150);
    checkRoundTrips(tokenizer);
    // Merges were learned and are used: common code compresses below one token per byte.
    const ids = tokenizer.encode(CODE_SAMPLE[2], { add_special_tokens: false }).ids;
    assert.ok(ids.length < Buffer.byteLength(CODE_SAMPLE[2]) / 2, `only ${ids.length} tokens`);
  });

  it('keeps indentation with the newline and the last space with the next word', () => {
    const tokenizer = trainSmall(BYTE_ID_OFFSET + 256 + 1);
    assert.ok(tokenizer.pre_tokenizer);
    const pieces = tokenizer.pre_tokenizer('{\n    return x;\n}').map((piece) =>
      // Byte-level pieces show space as Ġ and newline as Ċ.
      piece.replace(/Ġ/g, ' ').replace(/Ċ/g, '\n'),
    );
    assert.deepEqual(pieces, ['{', '\n   ', ' return', ' x', ';', '\n', '}']);
  });

  it('encodes each special token as one id and never cleans up spaces on decode', () => {
    const tokenizer = trainSmall(BYTE_ID_OFFSET + 256 + 10);
    const text = '<|fim_prefix|>a = <|fim_suffix|>\n<|fim_middle|>1<|endoftext|>';
    const ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
    assert.equal(ids[0], SPECIAL_IDS['<|fim_prefix|>']);
    assert.ok(ids.includes(SPECIAL_IDS['<|fim_suffix|>']));
    assert.ok(ids.includes(SPECIAL_IDS['<|fim_middle|>']));
    assert.equal(ids[ids.length - 1], SPECIAL_IDS['<|endoftext|>']);
    assert.equal(tokenizer.decode(ids), text);
    assert.equal(tokenizer.decode(ids, { skip_special_tokens: true }), 'a = \n1');
  });

  it('rejects merges that involve special tokens', () => {
    assert.throws(
      () => buildTokenizerFiles([[SPECIAL_IDS['<|pad|>'], BYTE_ID_OFFSET]], 256),
      /special/,
    );
  });
});

describe('tokenizer trainer: the shipped models/default tokenizer', () => {
  const folder = join(__dirname, '../../../models/default');
  const tokenizerJson = JSON.parse(readFileSync(join(folder, 'tokenizer.json'), 'utf8'));
  const tokenizerConfig = JSON.parse(readFileSync(join(folder, 'tokenizer_config.json'), 'utf8'));
  const tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);

  it('has 4096 tokens, the special tokens at fixed ids, and no decode cleanup', () => {
    assert.equal(Object.keys(tokenizerJson.model.vocab).length, 4096);
    SPECIAL_TOKENS.forEach((token, id) => assert.equal(tokenizerJson.model.vocab[token], id));
    assert.equal(tokenizerJson.pre_tokenizer.pretokenizers[0].pattern.Regex, PRETOKENIZE_PATTERN);
    assert.equal(tokenizerConfig.clean_up_tokenization_spaces, false);
    assert.equal(tokenizerJson.normalizer, null);
  });

  it('round-trips code byte for byte', () => {
    checkRoundTrips(tokenizer);
  });

  it('encodes common indentation and keywords as single tokens', () => {
    for (const piece of ['\n   ', '\n       ', ' return', ' function', ' const', '});']) {
      const ids = tokenizer.encode(piece, { add_special_tokens: false }).ids;
      assert.equal(ids.length, 1, `${JSON.stringify(piece)} -> ${ids.length} tokens`);
    }
  });
});
