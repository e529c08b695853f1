/**
 * Completion prompts cut from held-out source code, for the demo and evaluation: a cursor is
 * placed inside a non-blank line (after its indentation and at least a few characters) and the
 * prompt is the text before it, limited to the last `maxChars` characters.
 */
import * as fs from 'fs';
import * as path from 'path';
import { createRng, shuffled } from './random';

export interface CodePrompt {
  prompt: string;
  /** The rest of the line in the original file (what the author wrote next). */
  reference: string;
  source: string;
}

const CODE_EXTENSIONS = /\.(ts|js|mjs|cjs|py|go|rs|java|c|h|cpp|rb)$/;

/** Reads `{text, path?}` JSONL records (the corpus format) or a folder of code files. */
export function readCodeSources(source: string): { name: string; text: string }[] {
  const stat = fs.statSync(source, { throwIfNoEntry: false });
  if (!stat)
    throw new Error(
      `prompt source ${source} does not exist; pass a .jsonl corpus split or a folder of code`,
    );
  if (stat.isFile()) {
    return fs
      .readFileSync(source, 'utf8')
      .split('\n')
      .filter((line) => line.trim().length > 0)
      .map((line, i) => {
        let record: { text?: unknown; path?: unknown; package?: unknown };
        try {
          record = JSON.parse(line);
        } catch (error) {
          throw new Error(`${source}:${i + 1}: not valid JSON (${(error as Error).message})`);
        }
        if (typeof record.text !== 'string')
          throw new Error(`${source}:${i + 1}: "text" must be a string`);
        return { name: `${record.package ?? ''}/${record.path ?? i}`, text: record.text };
      });
  }
  const out: { name: string; text: string }[] = [];
  const walk = (dir: string) => {
    for (const entry of fs
      .readdirSync(dir, { withFileTypes: true })
      .sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (CODE_EXTENSIONS.test(entry.name))
        out.push({ name: full, text: fs.readFileSync(full, 'utf8') });
    }
  };
  walk(source);
  if (out.length === 0) throw new Error(`prompt source ${source} has no code files`);
  return out;
}

/** What a prompt is cut from; see `cutPrompts`. */
const CUT_RULE =
  'a prompt is cut inside a code line of at least 12 characters after its indent that is ' +
  'not a // or * comment line';

/** `line` without its \r, its indent, and how many places a prompt may be cut in it (0: none). */
function cutPlaces(rawLine: string): { line: string; indent: number; places: number } {
  const line = rawLine.replace(/\r$/, '');
  const indent = line.length - line.trimStart().length;
  const body = line.length - indent;
  const comment = line.trimStart().startsWith('//') || line.trimStart().startsWith('*');
  return { line, indent, places: body < 12 || comment ? 0 : Math.max(1, body - 8) };
}

/** Cuts `count` distinct prompts, seeded; files are visited round-robin in a shuffled order. */
export function cutPrompts(
  sources: readonly { name: string; text: string }[],
  count: number,
  seed: number,
  maxChars = 400,
): CodePrompt[] {
  // Split once: the loop below may visit each file thousands of times.
  const sourceLines = new Map(sources.map((s) => [s, s.text.split('\n')]));
  // Every (line, cut) pair gives at most one distinct prompt: ask for more and no number of
  // attempts could find them, so say so now rather than after count x 50 of them.
  let available = 0;
  for (const lines of sourceLines.values()) {
    for (const line of lines) available += cutPlaces(line).places;
  }
  if (available < count) {
    throw new Error(
      `asked for ${count} distinct prompts, but ${sources.length} sources hold at most ` +
        `${available}: ${CUT_RULE}; give more or longer code, or ask for fewer prompts`,
    );
  }
  const rng = createRng(seed);
  const files = shuffled(sources, rng);
  const out: CodePrompt[] = [];
  const seen = new Set<string>();
  for (let attempt = 0; out.length < count && attempt < count * 50; attempt++) {
    const file = files[attempt % files.length];
    const lines = sourceLines.get(file) as string[];
    const lineIndex = Math.floor(rng() * lines.length);
    const { line, indent, places } = cutPlaces(lines[lineIndex]);
    if (places === 0) continue;
    const cutInLine = indent + 4 + Math.floor(rng() * places);
    const before =
      lines.slice(0, lineIndex).join('\n') + (lineIndex > 0 ? '\n' : '') + line.slice(0, cutInLine);
    const prompt = before.slice(Math.max(0, before.length - maxChars));
    if (seen.has(prompt)) continue;
    seen.add(prompt);
    out.push({ prompt, reference: line.slice(cutInLine), source: `${file.name}:${lineIndex + 1}` });
  }
  if (out.length < count) {
    throw new Error(
      `could cut only ${out.length} of ${count} distinct prompts from ${sources.length} sources; ` +
        `${CUT_RULE}: give more or longer code, or ask for fewer prompts`,
    );
  }
  return out;
}
