import { promises as fsp } from 'fs';

/** One physical line of a JSONL file. */
export interface JsonlLine {
  /** 1-based line number (counted from the start of the file, blank lines included). */
  line: number;
  /** Decoded text without the line terminator, a trailing '\r', or a leading BOM. */
  text: string;
  /** Byte offset of the line's first byte. */
  start: number;
  /** Byte offset just past the line terminator (or past the last byte if unterminated). */
  end: number;
  /** False for a last line with no '\n' after it (e.g. torn by a crash). */
  terminated: boolean;
  /** Only in lenient mode: the bytes were not valid UTF-8 (`text` is then ''). */
  invalidUtf8?: boolean;
}

export class JsonlDecodeError extends Error {}

const CHUNK_BYTES = 1 << 20;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeLine(parts: Buffer[], line: number, start: number, source: string): string {
  const bytes = parts.length === 1 ? parts[0] : Buffer.concat(parts);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new JsonlDecodeError(`${source}:${line}: line is not valid UTF-8 (byte offset ${start})`);
  }
  if (start === 0 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.endsWith('\r')) text = text.slice(0, -1);
  return text;
}

function decode(
  parts: Buffer[],
  line: number,
  start: number,
  source: string,
  lenient: boolean,
): { text: string; invalidUtf8?: boolean } {
  try {
    return { text: decodeLine(parts, line, start, source) };
  } catch (error) {
    if (lenient && error instanceof JsonlDecodeError) return { text: '', invalidUtf8: true };
    throw error;
  }
}

/**
 * Reads a file line by line from byte `startOffset`, in 1 MiB chunks, so lines of any length
 * (many megabytes) are returned whole. Handles a UTF-8 BOM, CRLF endings and a final line with
 * no newline. Blank lines are yielded too (callers skip them); `line` numbers count from
 * `firstLine` (1 when reading from the start). A line that is not valid UTF-8 throws, or in
 * `lenient` mode is yielded with `invalidUtf8` set (a crash can cut a write inside a character).
 */
export async function* readLines(
  path: string,
  startOffset = 0,
  firstLine = 1,
  lenient = false,
): AsyncGenerator<JsonlLine> {
  const handle = await fsp.open(path, 'r');
  try {
    const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    let position = startOffset;
    let lineStart = startOffset;
    let line = firstLine;
    let pending: Buffer[] = [];
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, CHUNK_BYTES, position);
      if (bytesRead === 0) break;
      let from = 0;
      for (;;) {
        const nl = chunk.indexOf(10, from);
        if (nl === -1 || nl >= bytesRead) break;
        pending.push(Buffer.from(chunk.subarray(from, nl)));
        const end = position + nl + 1;
        yield {
          ...decode(pending, line, lineStart, path, lenient),
          line,
          start: lineStart,
          end,
          terminated: true,
        };
        pending = [];
        line++;
        lineStart = end;
        from = nl + 1;
      }
      if (from < bytesRead) pending.push(Buffer.from(chunk.subarray(from, bytesRead)));
      position += bytesRead;
    }
    if (pending.length > 0) {
      yield {
        ...decode(pending, line, lineStart, path, lenient),
        line,
        start: lineStart,
        end: position,
        terminated: false,
      };
    }
  } finally {
    await handle.close();
  }
}

/** Splits in-memory JSONL text the same way as {@link readLines} (BOM, CRLF, last line). */
export function splitLines(text: string): { line: number; text: string }[] {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const lines = body.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.map((l, i) => ({ line: i + 1, text: l.endsWith('\r') ? l.slice(0, -1) : l }));
}

/** Parses JSON, turning a syntax error into one that names the source and line. */
export function parseJsonLine(text: string, line: number, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new JsonlDecodeError(`${source}:${line}: not valid JSON (${(error as Error).message})`);
  }
}
