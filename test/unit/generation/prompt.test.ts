import * as assert from 'assert';
import * as path from 'path';
import { buildPrompt } from '../../../src/generation/prompt';
import { CodeTokenizer } from '../../../src/model/tokenizer';

const FIXTURES = path.join(__dirname, '../../fixtures/model');

describe('prompt building', () => {
  const llama = CodeTokenizer.load(path.join(FIXTURES, 'tiny-llama'));
  const starcoder = CodeTokenizer.load(path.join(FIXTURES, 'tiny-llama3rope'));

  it('left-to-right: BOS (when the tokenizer adds one) and the plain prefix', () => {
    const prompt = buildPrompt(llama, 'def f(x):\r\n', '', 100);
    assert.strictEqual(prompt.mode, 'left-to-right');
    assert.deepStrictEqual(prompt.ids, [
      llama.tokenId('<s>'),
      ...llama.encodePlain('def f(x):\r\n'),
    ]);
  });

  it('(T2) a CRLF document cut after "{\\r\\n" is the prompt byte for byte', () => {
    const document = 'function f(a) {\r\n\treturn a;\r\n}\r\n';
    const cursor = document.indexOf('{\r\n') + 3;
    const prompt = buildPrompt(starcoder, document.slice(0, cursor), '', 100);
    assert.strictEqual(starcoder.decode(prompt.ids), 'function f(a) {\r\n');
  });

  it('fill-in-the-middle in both naming families', () => {
    for (const [tokenizer, names] of [
      [llama, ['<|fim_prefix|>', '<|fim_suffix|>', '<|fim_middle|>']],
      [starcoder, ['<fim_prefix>', '<fim_suffix>', '<fim_middle>']],
    ] as const) {
      const prompt = buildPrompt(tokenizer, 'a = <|fim_suffix|>', '\nb = 2', 100);
      const [p, s, m] = names.map((n) => tokenizer.tokenId(n) as number);
      assert.strictEqual(prompt.mode, 'fill-in-the-middle');
      assert.deepStrictEqual(prompt.ids, [
        ...tokenizer.promptPrefixIds,
        p,
        ...tokenizer.encodePlain('a = <|fim_suffix|>'),
        s,
        ...tokenizer.encodePlain('\nb = 2'),
        m,
      ]);
      // The control-looking text in the prefix did not become a control id.
      assert.strictEqual(prompt.ids.filter((id) => id === s).length, 1);
    }
  });

  it('keeps the end of the prefix and the start of the suffix when truncating', () => {
    const prefix = 'x = 1\n'.repeat(40);
    const prompt = buildPrompt(starcoder, prefix, 'y = 2\n'.repeat(40), 40);
    assert.ok(prompt.ids.length <= 40);
    assert.ok(prompt.truncatedPrefixTokens > 0 && prompt.truncatedSuffixTokens > 0);
    const fim = starcoder.fim!;
    const prefixPart = prompt.ids.slice(1, prompt.ids.indexOf(fim.suffix));
    const full = starcoder.encodePlain(prefix);
    assert.deepStrictEqual(prefixPart, full.slice(full.length - prefixPart.length));
    const left = buildPrompt(starcoder, prefix, '', 10);
    assert.deepStrictEqual(left.ids, full.slice(full.length - 10));
  });

  it('caps keep the last prefix tokens and the first suffix tokens, in the same layout', () => {
    const prefix = 'x = 1\n'.repeat(20);
    const suffix = 'y = 2\n'.repeat(20);
    const capped = buildPrompt(starcoder, prefix, suffix, 1000, {
      maxPrefixTokens: 7,
      maxSuffixTokens: 5,
    });
    const fim = starcoder.fim!;
    const fullPrefix = starcoder.encodePlain(prefix);
    const fullSuffix = starcoder.encodeContinuation(suffix);
    assert.deepStrictEqual(capped.ids, [
      ...starcoder.promptPrefixIds,
      fim.prefix,
      ...fullPrefix.slice(fullPrefix.length - 7),
      fim.suffix,
      ...fullSuffix.slice(0, 5),
      fim.middle,
    ]);
    assert.strictEqual(capped.truncatedPrefixTokens, fullPrefix.length - 7);
    assert.strictEqual(capped.truncatedSuffixTokens, fullSuffix.length - 5);
    // Caps that do not bind change nothing; a suffix capped to 0 tokens is a left-to-right prompt.
    assert.deepStrictEqual(
      buildPrompt(starcoder, prefix, suffix, 1000, { maxPrefixTokens: 500, maxSuffixTokens: 500 }),
      buildPrompt(starcoder, prefix, suffix, 1000),
    );
    const left = buildPrompt(starcoder, prefix, suffix, 1000, { maxSuffixTokens: 0 });
    assert.strictEqual(left.mode, 'left-to-right');
    assert.deepStrictEqual(left.ids, buildPrompt(starcoder, prefix, '', 1000).ids);
  });
});
