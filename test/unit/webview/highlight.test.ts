import * as assert from 'assert';
import { lcsMatched, sharedTokens } from '../../../webview/compare/diff';
import { tokenize, tokensFrom } from '../../../webview/compare/highlight';

const kinds = (text: string, language: string) =>
  tokenize(text, language)
    .filter((t) => t.kind !== 'whitespace')
    .map((t) => `${t.kind}:${t.text}`);

describe('webview highlighter', () => {
  it('classifies JavaScript tokens', () => {
    assert.deepStrictEqual(kinds('const x = foo(1.5e3, "a\\"b") // done', 'javascript'), [
      'keyword:const',
      'identifier:x',
      'operator:=',
      'function:foo',
      'punctuation:(',
      'number:1.5e3',
      'punctuation:,',
      'string:"a\\"b"',
      'punctuation:)',
      'comment:// done',
    ]);
  });

  it('classifies Python strings with prefixes, triple quotes and comments', () => {
    assert.deepStrictEqual(kinds('def f(x):\n    return f"{x}" + """a\nb""" # c', 'python'), [
      'keyword:def',
      'function:f',
      'punctuation:(',
      'identifier:x',
      'punctuation:)',
      'operator::',
      'keyword:return',
      'string:f"{x}"',
      'operator:+',
      'string:"""a\nb"""',
      'comment:# c',
    ]);
  });

  it('gives back the exact text for arbitrary input, in every language', () => {
    const samples = [
      '\tif (a) {\r\n\t\treturn 1;\r\n\t}\r\n',
      'a  b   c',
      '',
      '\n\n\n',
      'printf("a\\n");',
      '/* open comment',
      '"unterminated',
      '😀 émoji → ∀x',
      '\ud800 lone surrogate',
      '</script><img src=x onerror=alert(1)>',
    ];
    let seed = 12345;
    const alphabet = ' \t\n\r"\'`#/*\\abc123(){}=+<>$_.é😀';
    for (let n = 0; n < 200; n++) {
      let s = '';
      for (let i = 0; i < 40; i++) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        s += Array.from(alphabet)[seed % Array.from(alphabet).length];
      }
      samples.push(s);
    }
    for (const language of ['javascript', 'python', 'c', 'shellscript', 'unknown-lang']) {
      for (const sample of samples) {
        const text = tokenize(sample, language)
          .map((t) => t.text)
          .join('');
        assert.strictEqual(text, sample, `${language}: ${JSON.stringify(sample)}`);
      }
    }
  });

  it('tokensFrom cuts the token that straddles the offset', () => {
    const tokens = tokenize('x = "ab cd"', 'javascript');
    assert.deepStrictEqual(tokensFrom(tokens, 6), [{ kind: 'string', text: 'b cd"' }]);
  });
});

describe('webview candidate diff', () => {
  it('matches the longest common subsequence', () => {
    assert.deepStrictEqual(lcsMatched(['a', 'b', 'c', 'd'], ['a', 'c', 'd', 'e']), [
      true,
      false,
      true,
      true,
    ]);
  });

  it('a token is shared only when every other candidate has it in sequence', () => {
    const shared = sharedTokens([
      ['x', '+', 'y'],
      ['x', '-', 'y'],
      ['x', '+', 'z'],
    ]);
    assert.deepStrictEqual(shared, [
      [true, false, false],
      [true, false, false],
      [true, false, false],
    ]);
    assert.deepStrictEqual(sharedTokens([['a'], ['a']]), [[true], [true]]);
  });
});
