/**
 * Simulated annotator for tests and the demo. An oracle scores each completion with a rule,
 * prefers the higher score, and then misbehaves the way people do, by configuration:
 *
 * 1. With probability `positionBias` it picks the first shown completion without looking
 *    (real exports show this skew, see shared/data/README.md).
 * 2. Otherwise it picks the completion with the higher rule score; scores closer than
 *    `tieEpsilon` are a tie.
 * 3. With probability `labelNoise` a non-tie verdict is flipped.
 *
 * For K candidates (`rank`), the rule's scores give a ranking in groups of equal score; with
 * probability `positionBias` the first shown candidate is moved to the top, and with probability
 * `labelNoise` two adjacent groups of the ranking are swapped (one wrong order per noisy judgment).
 *
 * Rules are pluggable: `loadOracleRule(path)` loads a JavaScript module that exports
 * `{ name, description, score(prompt, completion) }` (or `score` alone).
 */
import { createRequire } from 'module';
import * as path from 'path';
import { createRng } from './random';

/** A preference rule: a higher score is better. Must be deterministic. */
export interface OracleRule {
  name: string;
  /** One or two sentences a person can check verdicts against. */
  description: string;
  score(prompt: string, completion: string): number;
}

export interface OracleConfig {
  /** Probability that a non-tie verdict is flipped (0 to 0.5). */
  labelNoise: number;
  /** Probability that the first shown completion is chosen regardless of the rule (0 to 1). */
  positionBias: number;
  /** Absolute score difference at or below which two completions are a tie. */
  tieEpsilon: number;
  /** Seed for the noise and bias coin flips. */
  seed: number;
}

export const DEFAULT_ORACLE_CONFIG: OracleConfig = {
  labelNoise: 0,
  positionBias: 0,
  tieEpsilon: 1e-9,
  seed: 0,
};

export type Verdict = 'a' | 'b' | 'tie';

export interface Judgment {
  verdict: Verdict;
  /** What the rule alone says, before bias and noise (for measuring the annotator itself). */
  ruleVerdict: Verdict;
  scoreA: number;
  scoreB: number;
  flipped: boolean;
  positional: boolean;
}

const OPEN = '([{';
const CLOSE = ')]}';

/**
 * Bracket problems the completion adds to its prompt: a closing bracket that matches nothing
 * open (in prompt or completion) or the wrong kind, plus brackets the completion opens and
 * leaves open. Brackets the prompt left open are allowed to stay open. String and comment
 * contents are not parsed (Limitation: a bracket inside a string literal counts).
 */
export function bracketProblems(prompt: string, completion: string): number {
  const stack: string[] = [];
  for (const ch of prompt) {
    const o = OPEN.indexOf(ch);
    if (o >= 0) stack.push(ch);
    else {
      const c = CLOSE.indexOf(ch);
      if (c >= 0 && stack.length > 0 && stack[stack.length - 1] === OPEN[c]) stack.pop();
    }
  }
  const promptDepth = stack.length;
  let problems = 0;
  for (const ch of completion) {
    const o = OPEN.indexOf(ch);
    if (o >= 0) {
      stack.push(ch);
      continue;
    }
    const c = CLOSE.indexOf(ch);
    if (c < 0) continue;
    if (stack.length > 0 && stack[stack.length - 1] === OPEN[c]) stack.pop();
    else problems++;
  }
  return problems + Math.max(0, stack.length - promptDepth);
}

function countMatches(text: string, pattern: RegExp): number {
  return (text.match(pattern) ?? []).length;
}

/** Built-in rule 1: balanced brackets and no leftover debugging. */
export const cleanCodeRule: OracleRule = {
  name: 'clean-code',
  description:
    'Prefers completions that add no bracket problems (score -1 per unmatched or unclosed ' +
    'bracket the completion adds) and contain no TODO/FIXME or console.log/print debugging ' +
    '(score -2 each); among equals, a completion that ends its line (+0.5) and is non-empty.',
  score(prompt, completion) {
    let score = -bracketProblems(prompt, completion);
    score -= 2 * countMatches(completion, /\b(TODO|FIXME)\b/g);
    score -= 2 * countMatches(completion, /\bconsole\.log\b|\bprint\s*\(/g);
    if (completion.trim().length === 0) score -= 1;
    else if (completion.endsWith('\n')) score += 0.5;
    return score;
  },
};

/** Built-in rule 2: short, complete lines. */
export const shortLinesRule: OracleRule = {
  name: 'short-lines',
  description:
    'Prefers completions that end at a line break (+1) and whose longest line is short ' +
    '(-1 per 40 characters of the longest line); an empty completion scores -1.',
  score(_prompt, completion) {
    if (completion.trim().length === 0) return -1;
    const longest = Math.max(...completion.split('\n').map((line) => line.length));
    return (completion.endsWith('\n') ? 1 : 0) - longest / 40;
  },
};

// Words that are syntax, not names, in the languages of the default model's corpus (JavaScript
// and TypeScript) and in Python.
const KEYWORDS = new Set(
  (
    'as async await break case catch class const continue debugger default delete do else ' +
    'enum export extends false finally for from function get if implements import in ' +
    'instanceof interface let new null of private protected public readonly return set ' +
    'static super switch this throw true try type typeof undefined var void while with yield ' +
    'and def elif is lambda None not or pass self True False'
  ).split(' '),
);

const WORD = /[A-Za-z_$][\w$]*/g;

/** The identifier-like words of a text, keywords left out. */
export function contextWords(text: string): string[] {
  return (text.match(WORD) ?? []).filter((word) => !KEYWORDS.has(word));
}

/** Built-in rule 3: build from the context's words, do not invent new ones. */
export const contextWordsRule: OracleRule = {
  name: 'context-words',
  description:
    'Prefers completions built from words already in the prompt: +1 for each identifier-like ' +
    'word of the completion that occurs in the prompt, -2 for each that does not (an invented ' +
    'name is a likely bug; keywords do not count); ending the line +0.5. An empty completion ' +
    'ranks below every other (-100), so saying nothing never beats an invented name.',
  score(prompt, completion) {
    // Measured with -1 here: PPO learnt to answer with a bare newline (32 of 200 samples, base 8),
    // which beat any completion with one invented word.
    if (completion.trim().length === 0) return -100;
    // Limitation: words are read as written, so a word the prompt breaks off (`ind` + `exOf`)
    // counts as the completion's part, and words in strings and comments count too. Words are
    // ASCII: `0xff` holds the word `xff`, `${` the word `$`, and a non-ASCII name is not seen
    // (found by a breaker; the demo figures were measured with this rule as it is).
    const known = new Set(prompt.match(WORD) ?? []);
    let score = completion.endsWith('\n') ? 0.5 : 0;
    for (const word of contextWords(completion)) score += known.has(word) ? 1 : -2;
    return score;
  },
};

/** The brackets `text` leaves open, outermost first (strings are not parsed). */
function openBrackets(text: string): string[] {
  const stack: string[] = [];
  for (const ch of text) {
    if (OPEN.includes(ch)) stack.push(ch);
    else {
      const c = CLOSE.indexOf(ch);
      if (c >= 0 && stack.length > 0 && stack[stack.length - 1] === OPEN[c]) stack.pop();
    }
  }
  return stack;
}

/**
 * Bracket problems of the line a completion finishes: the text after the prompt's last line
 * break joined to the completion's text before its first line break. Scanned left to right, a
 * closing bracket closes the line's innermost open bracket if it matches; on a line with no
 * open bracket it may close the innermost bracket that earlier lines of the prompt left open
 * (`})` after a callback). Any other closing bracket is a problem, and so is each bracket the
 * line leaves open, unless its last non-blank character is an opening bracket or a comma (the
 * construct goes on on the next line: `if (a) {`, `foo(a,`). Strings and comments are not
 * parsed. The prompt's part of the line is judged too; it is the same for every candidate.
 */
export function lineBracketProblems(prompt: string, completion: string): number {
  const lineStart = prompt.lastIndexOf('\n') + 1;
  const outer = openBrackets(prompt.slice(0, lineStart));
  const lineEnd = completion.indexOf('\n');
  const line = prompt.slice(lineStart) + (lineEnd < 0 ? completion : completion.slice(0, lineEnd));
  const stack: string[] = [];
  let problems = 0;
  for (const ch of line) {
    if (OPEN.includes(ch)) {
      stack.push(ch);
      continue;
    }
    const c = CLOSE.indexOf(ch);
    if (c < 0) continue;
    const innermost = stack.length > 0 ? stack : outer;
    if (innermost.length > 0 && innermost[innermost.length - 1] === OPEN[c]) innermost.pop();
    else problems++;
  }
  const last = line.trimEnd().slice(-1);
  const continues = last !== '' && (OPEN.includes(last) || last === ',');
  return problems + (continues ? 0 : stack.length);
}

/**
 * Built-in rule 4: finish the current line, balanced and with something in it. An empty or
 * whitespace-only completion scores -100 (whitespace as String.prototype.trim sees it: a
 * zero-width space U+200B is not whitespace). Otherwise the score is +2 when the completion holds
 * a line break, minus `lineBracketProblems` of the line it finishes, plus 0.1 per ASCII letter,
 * digit, `_` or `$` in its text before the first line break (at most 30 counted, so at most +3;
 * Limitation: non-ASCII letters such as `ö` or `変` earn nothing, like context-words' words).
 */
export const completeLineRule: OracleRule = {
  name: 'complete-line',
  description:
    'Prefers completions that finish the current line (+2 for a line break) with balanced ' +
    'brackets (-1 per bracket problem of that line) and real content (+0.1 per ASCII letter, digit, ' +
    '_ or $ before the line break, at most 30 counted); an empty completion ranks below every ' +
    'other (-100).',
  score(prompt, completion) {
    // Unlike short-lines and context-words, this rule is not won by writing less: `;` ending
    // the line earns only the line break's 2 points, a finished line with 30 name characters 5,
    // and a bare newline -100. Punctuation earns nothing, so padding a line with `;;;` does not pay.
    if (completion.trim().length === 0) return -100;
    const lineEnd = completion.indexOf('\n');
    const first = lineEnd < 0 ? completion : completion.slice(0, lineEnd);
    const content = Math.min(30, (first.match(/[A-Za-z0-9_$]/g) ?? []).length);
    return (lineEnd >= 0 ? 2 : 0) - lineBracketProblems(prompt, completion) + content / 10;
  },
};

export const BUILTIN_RULES: Record<string, OracleRule> = {
  [cleanCodeRule.name]: cleanCodeRule,
  [shortLinesRule.name]: shortLinesRule,
  [contextWordsRule.name]: contextWordsRule,
  [completeLineRule.name]: completeLineRule,
};

/** A rule by built-in name, or loaded from a JavaScript module path. */
export function resolveOracleRule(nameOrPath: string): OracleRule {
  const builtin = BUILTIN_RULES[nameOrPath];
  if (builtin) return builtin;
  if (!/[/\\]|\.c?js$/.test(nameOrPath)) {
    throw new Error(
      `unknown oracle ${JSON.stringify(nameOrPath)}; allowed: ${Object.keys(BUILTIN_RULES)
        .map((n) => JSON.stringify(n))
        .join(', ')} or a path to a .js module`,
    );
  }
  return loadOracleRule(nameOrPath);
}

/** Loads a rule module; throws naming the file and what the export must look like. */
export function loadOracleRule(modulePath: string): OracleRule {
  const resolved = path.resolve(modulePath);
  let loaded: unknown;
  try {
    // Node's own require, not the bundler's: the rule file is the user's, found at run time.
    loaded = createRequire(resolved)(resolved);
  } catch (error) {
    throw new Error(`cannot load oracle module ${resolved}: ${(error as Error).message}`);
  }
  const candidate = (loaded as { default?: unknown })?.default ?? loaded;
  const shape = 'expected module.exports = { name, description, score(prompt, completion) }';
  if (typeof candidate === 'function') {
    return { name: path.basename(resolved), description: `rule from ${resolved}`, score: wrap() };
  }
  if (typeof candidate !== 'object' || candidate === null) {
    throw new Error(`oracle module ${resolved} exports ${typeof candidate}; ${shape}`);
  }
  const rule = candidate as Partial<OracleRule>;
  if (typeof rule.score !== 'function') {
    throw new Error(`oracle module ${resolved} has no score function; ${shape}`);
  }
  return {
    name: typeof rule.name === 'string' ? rule.name : path.basename(resolved),
    description: typeof rule.description === 'string' ? rule.description : `rule from ${resolved}`,
    score: wrap(),
  };

  function wrap(): OracleRule['score'] {
    const fn = (typeof candidate === 'function' ? candidate : (candidate as OracleRule).score) as (
      p: string,
      c: string,
    ) => unknown;
    return (prompt, completion) => {
      const value = fn.call(candidate, prompt, completion);
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new Error(
          `oracle module ${resolved} returned ${JSON.stringify(value)} for a completion; ` +
            'score must return a finite number',
        );
      }
      return value;
    };
  }
}

function checkConfig(config: OracleConfig): void {
  const inRange = (key: keyof OracleConfig, lo: number, hi: number) => {
    const v = config[key];
    if (typeof v !== 'number' || !(v >= lo && v <= hi)) {
      throw new Error(`oracle config "${key}" is ${v}; allowed: ${lo} to ${hi}`);
    }
  };
  inRange('labelNoise', 0, 0.5);
  inRange('positionBias', 0, 1);
  inRange('tieEpsilon', 0, Number.MAX_VALUE);
}

export interface RankingJudgment {
  /** Candidate indices best to worst; indices in one group are tied. */
  groups: number[][];
  scores: number[];
  flipped: boolean;
  positional: boolean;
}

export class Oracle {
  readonly config: OracleConfig;
  private readonly rng: () => number;

  constructor(
    readonly rule: OracleRule,
    config: Partial<OracleConfig> = {},
  ) {
    this.config = { ...DEFAULT_ORACLE_CONFIG, ...config };
    checkConfig(this.config);
    this.rng = createRng(this.config.seed);
  }

  /** Judges completion `a` (shown first) against `b` for the same prompt. */
  judge(prompt: string, a: string, b: string): Judgment {
    const scoreA = this.rule.score(prompt, a);
    const scoreB = this.rule.score(prompt, b);
    const diff = scoreA - scoreB;
    const ruleVerdict: Verdict =
      Math.abs(diff) <= this.config.tieEpsilon ? 'tie' : diff > 0 ? 'a' : 'b';
    // Both coins are always drawn so that the stream of verdicts does not depend on outcomes.
    const biasCoin = this.rng();
    const noiseCoin = this.rng();
    if (biasCoin < this.config.positionBias) {
      return { verdict: 'a', ruleVerdict, scoreA, scoreB, flipped: false, positional: true };
    }
    const flip = ruleVerdict !== 'tie' && noiseCoin < this.config.labelNoise;
    const verdict: Verdict = flip ? (ruleVerdict === 'a' ? 'b' : 'a') : ruleVerdict;
    return { verdict, ruleVerdict, scoreA, scoreB, flipped: flip, positional: false };
  }

  /** Ranks K candidates shown in the given order (see the header for bias and noise). */
  rank(prompt: string, candidates: readonly string[]): RankingJudgment {
    const scores = candidates.map((c) => this.rule.score(prompt, c));
    const order = candidates.map((_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
    let groups: number[][] = [];
    for (const i of order) {
      const last = groups[groups.length - 1];
      if (last && Math.abs(scores[last[0]] - scores[i]) <= this.config.tieEpsilon) last.push(i);
      else groups.push([i]);
    }
    const biasCoin = this.rng();
    const noiseCoin = this.rng();
    const swapAt = this.rng();
    if (biasCoin < this.config.positionBias) {
      groups = [[0], ...groups.map((g) => g.filter((i) => i !== 0)).filter((g) => g.length > 0)];
      return { groups, scores, flipped: false, positional: true };
    }
    let flipped = false;
    if (groups.length > 1 && noiseCoin < this.config.labelNoise) {
      const k = Math.floor(swapAt * (groups.length - 1));
      [groups[k], groups[k + 1]] = [groups[k + 1], groups[k]];
      flipped = true;
    }
    return { groups, scores, flipped, positional: false };
  }
}
