import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  Oracle,
  bracketProblems,
  cleanCodeRule,
  completeLineRule,
  contextWords,
  contextWordsRule,
  lineBracketProblems,
  resolveOracleRule,
  shortLinesRule,
} from '../../../src/rlhf/oracle';

describe('rlhf oracle', () => {
  it('counts bracket problems the completion adds, allowing prompt brackets to stay open', () => {
    assert.strictEqual(bracketProblems('f(', 'a, b)'), 0);
    assert.strictEqual(bracketProblems('f(', 'a, b'), 0); // prompt's "(" may stay open
    assert.strictEqual(bracketProblems('', 'x)'), 1);
    assert.strictEqual(bracketProblems('', '{[}'), 3); // "}" mismatches "["; "{" and "[" stay open
    assert.strictEqual(bracketProblems('if (a) {', '\n  g(1\n'), 1);
  });

  it('clean-code prefers balanced, debug-free, line-ending completions', () => {
    const p = 'function f(a) {\n';
    assert.ok(cleanCodeRule.score(p, '  return a;\n') > cleanCodeRule.score(p, '  return g(a;\n'));
    assert.ok(
      cleanCodeRule.score(p, '  return a;\n') > cleanCodeRule.score(p, '  console.log(a);\n'),
    );
    assert.ok(cleanCodeRule.score(p, '  return a;\n') > cleanCodeRule.score(p, '  // TODO\n'));
    assert.ok(cleanCodeRule.score(p, '  return a;\n') > cleanCodeRule.score(p, '  return a;'));
  });

  it('short-lines prefers a complete short line', () => {
    assert.ok(shortLinesRule.score('', 'x = 1\n') > shortLinesRule.score('', 'x = 1'));
    assert.ok(
      shortLinesRule.score('', 'x = 1\n') >
        shortLinesRule.score('', 'x = ' + '1 + '.repeat(20) + '1\n'),
    );
    assert.strictEqual(shortLinesRule.score('', '   '), -1);
  });

  it('context-words scores +1 per word from the prompt, -2 per invented word, +0.5 per line end', () => {
    const p = 'const items = load();\nfor (const item of ';
    assert.deepStrictEqual(contextWords('items) { return this.x; }'), ['items', 'x']);
    assert.strictEqual(contextWordsRule.score(p, 'items) {\n'), 1 + 0.5);
    assert.strictEqual(contextWordsRule.score(p, 'things) {\n'), -2 + 0.5);
    assert.strictEqual(contextWordsRule.score(p, 'items.filter(Boolean)'), 1 - 2 - 2);
    // Keywords are not words of the context: `const` and `of` neither earn nor cost.
    assert.strictEqual(contextWordsRule.score(p, 'const of\n'), 0.5);
    assert.strictEqual(contextWordsRule.score(p, ' \n'), -100);
    assert.ok(contextWordsRule.score(p, ' \n') < contextWordsRule.score(p, 'a b c d e f g h\n'));
    assert.ok(contextWordsRule.score(p, 'items) {\n') > contextWordsRule.score(p, ');\n'));
    assert.ok(contextWordsRule.score(p, ');\n') > contextWordsRule.score(p, 'load(things)\n'));
  });

  it('counts the bracket problems of the line a completion finishes', () => {
    // The line is `if (a && (b) {` + nothing more: "(" is left open and "{" continues it.
    assert.strictEqual(lineBracketProblems('x;\nif (a && ', '(b) {\n'), 0);
    assert.strictEqual(lineBracketProblems('x;\nif (a && ', '(b)\n'), 1); // "(" left open
    assert.strictEqual(lineBracketProblems('f(', 'a,\n'), 0); // a comma continues the line
    assert.strictEqual(lineBracketProblems('f(', 'a\n'), 1);
    // `})` may close what earlier lines opened, innermost first; in `)})` the first ")" meets
    // the "{" and is a problem, the rest close as `})` does.
    assert.strictEqual(lineBracketProblems('g(function () {\n  a();\n', '})\n'), 0);
    assert.strictEqual(lineBracketProblems('g(function () {\n  a();\n', ')})\n'), 1);
    assert.strictEqual(lineBracketProblems('x = [\n', ')\n'), 1); // the wrong kind
    assert.strictEqual(lineBracketProblems('a = (b', ']\n'), 2); // mismatch, "(" still open
    // Only the first line of the completion is judged.
    assert.strictEqual(lineBracketProblems('', 'a\n)))'), 0);
  });

  it('complete-line scores +2 for a line break, -1 per problem, +0.1 per name character', () => {
    const p = 'function f(items) {\n  return items.fil';
    assert.strictEqual(completeLineRule.score(p, 'ter(Boolean);\n'), 2 + 1.0); // 10 characters
    assert.strictEqual(completeLineRule.score(p, 'ter(Boolean;\n'), 2 - 1 + 1.0);
    assert.strictEqual(completeLineRule.score(p, 'ter(Boolean);'), 1.0); // not finished
    assert.strictEqual(completeLineRule.score(p, 'ter(isBooleanVal);\n'), 2 + 1.5); // 15
    assert.strictEqual(completeLineRule.score(p, ';\n'), 2); // punctuation is not content
    assert.strictEqual(completeLineRule.score(p, ';;;;;;;;;;;;\n'), 2);
    // At most 30 characters count: 37 earn what 30 do, 20 earn less.
    assert.strictEqual(completeLineRule.score(p, `ter(${'a'.repeat(34)});\n`), 2 + 3);
    assert.strictEqual(completeLineRule.score(p, `ter(${'a'.repeat(27)});\n`), 2 + 3);
    assert.strictEqual(completeLineRule.score(p, `ter(${'a'.repeat(17)});\n`), 2 + 2);
    // Empty ranks last, below an unfinished line with bracket problems and no content.
    assert.strictEqual(completeLineRule.score(p, ''), -100);
    assert.strictEqual(completeLineRule.score(p, ' \n'), -100);
    assert.strictEqual(completeLineRule.score(p, ']]]]'), -4);
    // Shorter is not better: the rule ranks opposite to short-lines on two finished lines.
    const long = 'ter(Boolean).map(String);\n';
    assert.ok(completeLineRule.score(p, long) > completeLineRule.score(p, 'ter();\n'));
    assert.ok(shortLinesRule.score(p, long) < shortLinesRule.score(p, 'ter();\n'));
  });

  it('without noise or bias follows the rule exactly, and reports ties', () => {
    const oracle = new Oracle(shortLinesRule);
    assert.strictEqual(oracle.judge('', 'a\n', 'a').verdict, 'a');
    assert.strictEqual(oracle.judge('', 'a', 'a\n').verdict, 'b');
    assert.strictEqual(oracle.judge('', 'ab\n', 'cd\n').verdict, 'tie');
  });

  it('flips about labelNoise of verdicts, deterministically by seed', () => {
    const run = (seed: number) => {
      const oracle = new Oracle(shortLinesRule, { labelNoise: 0.1, seed });
      let flips = 0;
      for (let i = 0; i < 4000; i++) if (oracle.judge('', 'a\n', 'a').verdict === 'b') flips++;
      return flips;
    };
    const flips = run(7);
    assert.ok(flips > 320 && flips < 480, `flips ${flips} of 4000`);
    assert.strictEqual(run(7), flips);
    assert.notStrictEqual(run(8), flips);
  });

  it('position bias picks the first shown completion', () => {
    const oracle = new Oracle(shortLinesRule, { positionBias: 0.3, seed: 1 });
    let first = 0;
    for (let i = 0; i < 2000; i++) if (oracle.judge('', 'a', 'a\n').verdict === 'a') first++;
    assert.ok(first > 520 && first < 680, `first chosen ${first} of 2000`);
  });

  it('rejects out-of-range noise, naming the key', () => {
    assert.throws(
      () => new Oracle(shortLinesRule, { labelNoise: 0.7 }),
      /"labelNoise" is 0.7; allowed: 0 to 0.5/,
    );
  });

  it('loads a rule from a JavaScript module, and names a bad one', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oracle-'));
    const good = path.join(dir, 'semicolons.js');
    fs.writeFileSync(
      good,
      "module.exports = { name: 'semicolons', description: 'more semicolons', score: (p, c) => c.split(';').length };",
    );
    const rule = resolveOracleRule(good);
    assert.strictEqual(rule.name, 'semicolons');
    assert.strictEqual(new Oracle(rule).judge('', 'a;b;', 'a').verdict, 'a');
    const bad = path.join(dir, 'bad.js');
    fs.writeFileSync(bad, 'module.exports = { name: "x" };');
    assert.throws(() => resolveOracleRule(bad), /has no score function/);
    const nan = path.join(dir, 'nan.js');
    fs.writeFileSync(nan, 'module.exports = () => "high";');
    assert.throws(() => resolveOracleRule(nan).score('', ''), /returned "high".*finite number/);
    assert.throws(
      () => resolveOracleRule('nicest'),
      /unknown oracle "nicest"; allowed: "clean-code", "short-lines", "context-words", "complete-line"/,
    );
    assert.throws(
      () => resolveOracleRule(path.join(dir, 'missing.js')),
      /cannot load oracle module/,
    );
  });
});

describe('rlhf oracle rankings', () => {
  it('ranks K candidates in groups of equal score; noise swaps adjacent groups', () => {
    const clean = new Oracle(shortLinesRule);
    const r = clean.rank('', ['aaaa\n', 'a\n', 'b\n', 'aaaa']);
    assert.deepStrictEqual(r.groups, [[1, 2], [0], [3]]);
    const noisy = new Oracle(shortLinesRule, { labelNoise: 0.5, seed: 3 });
    let swapped = 0;
    for (let i = 0; i < 1000; i++) {
      const j = noisy.rank('', ['a\n', 'aaaa\n', 'aaaa']);
      if (j.flipped) {
        swapped++;
        assert.notDeepStrictEqual(j.groups, [[0], [1], [2]]);
      } else assert.deepStrictEqual(j.groups, [[0], [1], [2]]);
    }
    assert.ok(swapped > 430 && swapped < 570, `${swapped}`);
    const biased = new Oracle(shortLinesRule, { positionBias: 1 });
    assert.deepStrictEqual(biased.rank('', ['aaaa', 'a\n']).groups, [[0], [1]]);
  });
});
