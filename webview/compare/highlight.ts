/**
 * A small lexer for syntax highlighting in the comparison webview. It only classifies spans of
 * text (keyword, string, comment, ...); colors come from the theme's CSS variables in
 * media/compare.css. Candidates are fragments that continue the text before the cursor, so the
 * caller lexes `context + candidate` and keeps the tokens past the context (`tokensFrom`): a
 * candidate that starts inside a string or comment is then colored as such.
 *
 * Limitation: template-string interpolations, regex literals and nested languages (JSX, HTML
 * in strings) are colored as their outer token; a block comment or string opened before the
 * context window is not seen.
 */

export type TokenKind =
  | 'keyword'
  | 'string'
  | 'number'
  | 'comment'
  | 'function'
  | 'type'
  | 'constant'
  | 'operator'
  | 'punctuation'
  | 'identifier'
  | 'whitespace'
  | 'text';

export interface Token {
  kind: TokenKind;
  text: string;
}

interface LanguageSpec {
  lineComments: string[];
  blockComment?: [string, string];
  /** Quote characters that open a string; a backtick string may span lines. */
  quotes: string[];
  tripleQuotes: boolean;
  /** Python-style string prefixes (`f"..."`, `rb'...'`). */
  stringPrefixes: boolean;
  keywords: Set<string>;
  constants: Set<string>;
}

const words = (text: string) => new Set(text.split(/\s+/).filter(Boolean));

const JS_KEYWORDS = words(`
  break case catch class const continue debugger default delete do else export extends finally
  for function if import in instanceof let new return super switch this throw try typeof var void
  while with yield async await of static get set from as interface type enum implements
  private protected public readonly declare namespace abstract keyof satisfies infer is`);
const PY_KEYWORDS = words(`
  and as assert async await break class continue def del elif else except finally for from
  global if import in is lambda nonlocal not or pass raise return try while with yield match
  case self print`);
const C_KEYWORDS = words(`
  auto break case char const continue default do double else enum extern float for goto if
  inline int long register return short signed sizeof static struct switch typedef union
  unsigned void volatile while class namespace template typename public private protected
  virtual override new delete this throw try catch using bool final import package extends
  implements interface instanceof abstract synchronized func go defer chan map range var type
  fn let mut impl trait pub use mod crate match loop move ref where dyn async await struct
  string int32 int64 uint8 usize isize`);
const SHELL_KEYWORDS = words(`
  if then else elif fi for while do done case esac function in return local export`);
const JS_CONSTANTS = words('true false null undefined NaN Infinity');
const PY_CONSTANTS = words('True False None');
const C_CONSTANTS = words('true false null nullptr NULL nil None');

const JS: LanguageSpec = {
  lineComments: ['//'],
  blockComment: ['/*', '*/'],
  quotes: ['"', "'", '`'],
  tripleQuotes: false,
  stringPrefixes: false,
  keywords: JS_KEYWORDS,
  constants: JS_CONSTANTS,
};
const PYTHON: LanguageSpec = {
  lineComments: ['#'],
  quotes: ['"', "'"],
  tripleQuotes: true,
  stringPrefixes: true,
  keywords: PY_KEYWORDS,
  constants: PY_CONSTANTS,
};
const C_LIKE: LanguageSpec = {
  lineComments: ['//'],
  blockComment: ['/*', '*/'],
  quotes: ['"', "'", '`'],
  tripleQuotes: false,
  stringPrefixes: false,
  keywords: C_KEYWORDS,
  constants: C_CONSTANTS,
};
const SHELL: LanguageSpec = {
  lineComments: ['#'],
  quotes: ['"', "'"],
  tripleQuotes: false,
  stringPrefixes: false,
  keywords: SHELL_KEYWORDS,
  constants: words('true false'),
};
const PLAIN: LanguageSpec = {
  lineComments: [],
  quotes: ['"', "'"],
  tripleQuotes: false,
  stringPrefixes: false,
  keywords: new Set(),
  constants: new Set(),
};

const LANGUAGES: Record<string, LanguageSpec> = {
  javascript: JS,
  javascriptreact: JS,
  typescript: JS,
  typescriptreact: JS,
  json: { ...JS, keywords: new Set() },
  jsonc: { ...JS, keywords: new Set() },
  python: PYTHON,
  c: C_LIKE,
  cpp: C_LIKE,
  csharp: C_LIKE,
  java: C_LIKE,
  go: C_LIKE,
  rust: C_LIKE,
  kotlin: C_LIKE,
  swift: C_LIKE,
  php: C_LIKE,
  shellscript: SHELL,
  ruby: { ...PYTHON, tripleQuotes: false, stringPrefixes: false },
};

export function languageSpecFor(languageId: string): LanguageSpec {
  return LANGUAGES[languageId] ?? PLAIN;
}

const WHITESPACE = /\s+/y;
const NUMBER =
  /(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*(?:\.\d[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)[a-zA-Z]*/y;
const IDENTIFIER = /[A-Za-z_$\u00C0-\uFFFF][\w$\u00C0-\uFFFF]*/y;
const PUNCTUATION = /[{}()[\];,.]/y;
const OPERATOR = /[+\-*/%=<>!&|^~?:@#\\]+/y;
const STRING_PREFIX = /^[rRbBuUfF]{1,2}$/;

function matchAt(pattern: RegExp, text: string, at: number): string | undefined {
  pattern.lastIndex = at;
  const match = pattern.exec(text);
  return match ? match[0] : undefined;
}

/** End index (exclusive) of a string opened at `at` with `quote` (1 or 3 characters). */
function stringEnd(text: string, at: number, quote: string): number {
  let i = at + quote.length;
  const multiline = quote.length === 3 || quote === '`';
  while (i < text.length) {
    const ch = text[i];
    if (ch === '\\') {
      i += 2;
      continue;
    }
    if (text.startsWith(quote, i)) return i + quote.length;
    if (ch === '\n' && !multiline) return i;
    i++;
  }
  return text.length;
}

/** Splits `text` into classified tokens; concatenating their texts gives `text` back exactly. */
export function tokenize(text: string, languageId: string): Token[] {
  const spec = languageSpecFor(languageId);
  const tokens: Token[] = [];
  const push = (kind: TokenKind, value: string) => tokens.push({ kind, text: value });
  let i = 0;
  while (i < text.length) {
    const space = matchAt(WHITESPACE, text, i);
    if (space) {
      push('whitespace', space);
      i += space.length;
      continue;
    }
    const lineComment = spec.lineComments.find((c) => text.startsWith(c, i));
    if (lineComment) {
      const end = text.indexOf('\n', i);
      const stop = end < 0 ? text.length : end;
      push('comment', text.slice(i, stop));
      i = stop;
      continue;
    }
    if (spec.blockComment && text.startsWith(spec.blockComment[0], i)) {
      const close = text.indexOf(spec.blockComment[1], i + spec.blockComment[0].length);
      const stop = close < 0 ? text.length : close + spec.blockComment[1].length;
      push('comment', text.slice(i, stop));
      i = stop;
      continue;
    }
    const quote = openingQuote(spec, text, i);
    if (quote) {
      const stop = stringEnd(text, i, quote);
      push('string', text.slice(i, stop));
      i = stop;
      continue;
    }
    const number = matchAt(NUMBER, text, i);
    if (number) {
      push('number', number);
      i += number.length;
      continue;
    }
    const word = matchAt(IDENTIFIER, text, i);
    if (word) {
      const after = i + word.length;
      const prefixedQuote =
        spec.stringPrefixes && STRING_PREFIX.test(word)
          ? openingQuote(spec, text, after)
          : undefined;
      if (prefixedQuote) {
        const stop = stringEnd(text, after, prefixedQuote);
        push('string', text.slice(i, stop));
        i = stop;
        continue;
      }
      push(classifyWord(spec, word, text, after), word);
      i = after;
      continue;
    }
    const punctuation = matchAt(PUNCTUATION, text, i);
    if (punctuation) {
      push('punctuation', punctuation);
      i += punctuation.length;
      continue;
    }
    const operator = matchAt(OPERATOR, text, i);
    if (operator) {
      push('operator', operator);
      i += operator.length;
      continue;
    }
    // Anything else, one code point at a time (never split a surrogate pair).
    const codePoint = String.fromCodePoint(text.codePointAt(i)!);
    push('text', codePoint);
    i += codePoint.length;
  }
  return tokens;
}

function openingQuote(spec: LanguageSpec, text: string, at: number): string | undefined {
  const ch = text[at];
  if (!spec.quotes.includes(ch)) return undefined;
  if (spec.tripleQuotes && text.startsWith(ch.repeat(3), at)) return ch.repeat(3);
  return ch;
}

function classifyWord(spec: LanguageSpec, word: string, text: string, after: number): TokenKind {
  if (spec.keywords.has(word)) return 'keyword';
  if (spec.constants.has(word)) return 'constant';
  let j = after;
  while (text[j] === ' ' || text[j] === '\t') j++;
  if (text[j] === '(') return 'function';
  if (/^[A-Z][a-z0-9]/.test(word)) return 'type';
  return 'identifier';
}

/**
 * The tokens covering `text.slice(offset)`, given the tokens of the whole text: a token that
 * straddles `offset` is cut, keeping its kind.
 */
export function tokensFrom(tokens: Token[], offset: number): Token[] {
  const out: Token[] = [];
  let at = 0;
  for (const token of tokens) {
    const end = at + token.text.length;
    if (end > offset) {
      out.push(at >= offset ? token : { kind: token.kind, text: token.text.slice(offset - at) });
    }
    at = end;
  }
  return out;
}
