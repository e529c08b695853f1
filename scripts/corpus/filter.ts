/**
 * Decides which files of a package are hand-written source worth training on.
 *
 * The checks are cheap heuristics, ordered from the path (no read needed) to the content.
 * Each rejection carries a short reason that the manifest counts, so the filter's effect on
 * every package can be audited.
 */

/** File extensions kept, with the language recorded for each. */
export const LANGUAGE_BY_EXTENSION: ReadonlyMap<string, string> = new Map([
  ['.js', 'javascript'],
  ['.mjs', 'javascript'],
  ['.cjs', 'javascript'],
  ['.jsx', 'javascript'],
  ['.ts', 'typescript'],
  ['.mts', 'typescript'],
  ['.cts', 'typescript'],
  ['.tsx', 'typescript'],
  ['.py', 'python'],
]);

/** Folders that hold build output, vendored copies or snapshots rather than source. */
const BUILD_FOLDERS = new Set([
  'node_modules',
  'dist',
  'build',
  'bundle',
  'bundles',
  'umd',
  'min',
  'cjs',
  'esm',
  'esm5',
  '_cjs',
  '_esm',
  '_types',
  'es5',
  'es6',
  'es2015',
  'es2017',
  'fesm2015',
  'fesm2020',
  'fesm2022',
  'coverage',
  'vendor',
  '__snapshots__',
  'generated',
]);

const BUILD_NAME = /[.-](min|bundle|umd|prod|production|packed)\.[cm]?js$/i;
const DECLARATION = /\.d\.[cm]?ts$/i;

/** Markers of generated or transpiled output, searched in the first 2 KB. */
const GENERATED_MARKERS: readonly [RegExp, string][] = [
  [/@generated\b|\bDO NOT EDIT\b|auto-?generated|this file (was|is) generated/i, 'generated'],
  [/__webpack_require__|webpackBootstrap|\/\*{6}\//, 'bundled'],
  [/Object\.defineProperty\(exports, ["']__esModule["']/, 'transpiled'],
  [
    /\b(_interopRequireDefault|_classCallCheck|__awaiter|__createBinding|regeneratorRuntime)\b/,
    'transpiled',
  ],
];

export type FileVerdict = { keep: true; language: string } | { keep: false; reason: string };

/** Rejects by path alone; `relative` is the path below the package's include prefix. */
export function classifyPath(relative: string, keepDeclarations: boolean): FileVerdict {
  const parts = relative.split('/');
  const name = parts[parts.length - 1];
  if (parts.slice(0, -1).some((part) => BUILD_FOLDERS.has(part.toLowerCase()))) {
    return { keep: false, reason: 'build folder' };
  }
  if (DECLARATION.test(name) && !keepDeclarations) return { keep: false, reason: 'declaration' };
  const dot = name.lastIndexOf('.');
  const language =
    dot === -1 ? undefined : LANGUAGE_BY_EXTENSION.get(name.slice(dot).toLowerCase());
  if (language === undefined) return { keep: false, reason: 'not source' };
  if (BUILD_NAME.test(name)) return { keep: false, reason: 'build name' };
  return { keep: true, language };
}

/** Limits on file shape; files outside them are minified, bundled or data. */
export const CONTENT_LIMITS = {
  minBytes: 64,
  maxBytes: 300_000,
  maxLineLength: 1_000,
  maxMeanLineLength: 100,
  maxDigitFraction: 0.25,
  minLetterFraction: 0.25,
};

/** Rejects by content: binary, minified, bundled, generated, transpiled or data files. */
export function classifyContent(data: Buffer): { keep: true; text: string } | FileVerdict {
  if (data.length < CONTENT_LIMITS.minBytes) return { keep: false, reason: 'too small' };
  if (data.length > CONTENT_LIMITS.maxBytes) return { keep: false, reason: 'too large' };
  if (data.includes(0)) return { keep: false, reason: 'binary' };
  const text = data.toString('utf8');
  if (text.includes('\uFFFD')) return { keep: false, reason: 'not utf-8' };
  if (/\/[/*][#@] sourceMappingURL=/.test(text)) return { keep: false, reason: 'source map' };
  const head = text.slice(0, 2048);
  for (const [marker, reason] of GENERATED_MARKERS) {
    if (marker.test(head)) return { keep: false, reason };
  }
  const lines = text.split('\n');
  let longest = 0;
  for (const line of lines) longest = Math.max(longest, line.length);
  if (longest > CONTENT_LIMITS.maxLineLength) return { keep: false, reason: 'minified' };
  if (text.length / lines.length > CONTENT_LIMITS.maxMeanLineLength) {
    return { keep: false, reason: 'minified' };
  }
  let digits = 0;
  let letters = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 48 && code <= 57) digits++;
    else if ((code | 32) >= 97 && (code | 32) <= 122) letters++;
  }
  if (digits / text.length > CONTENT_LIMITS.maxDigitFraction)
    return { keep: false, reason: 'data' };
  if (letters / text.length < CONTENT_LIMITS.minLetterFraction)
    return { keep: false, reason: 'data' };
  return { keep: true, text };
}
