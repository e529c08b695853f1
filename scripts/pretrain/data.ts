/**
 * Token data for pretraining: the corpus JSONL encoded once with the shipped tokenizer (cached
 * next to the corpus), and batches of left-to-right and fill-in-the-middle examples.
 *
 * FIM examples follow Bavarian et al., "Efficient Training of Language Models to Fill in the
 * Middle" (2022), PSM order at the character level: a document window is decoded to text, cut
 * at two uniformly random character positions, each part encoded on its own, and laid out as
 * `<|fim_prefix|> prefix <|fim_suffix|> suffix <|fim_middle|> middle <|endoftext|>`, which is
 * the layout the product's prompt builder uses at inference.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Rng } from '../../src/model/random';
import { readCorpus } from '../tokenizer/main';
import { BYTE_ID_OFFSET, bytesToUnicode, SPECIAL_IDS } from '../tokenizer/format';

export const EOT = SPECIAL_IDS['<|endoftext|>'];
export const PAD = SPECIAL_IDS['<|pad|>'];
export const FIM_PREFIX = SPECIAL_IDS['<|fim_prefix|>'];
export const FIM_SUFFIX = SPECIAL_IDS['<|fim_suffix|>'];
export const FIM_MIDDLE = SPECIAL_IDS['<|fim_middle|>'];
/** Target value that contributes no loss (padding). */
export const IGNORE = -100;

/** Every document of one split as one token stream, each document followed by EOT. */
export interface TokenStream {
  tokens: Uint16Array;
  /** Start of document i in `tokens`; one extra entry holds the total length. */
  starts: Uint32Array;
}

/** Plain-text encoder/decoder over the shipped tokenizer files. */
export class TextCodec {
  private readonly plain: Tokenizer;
  private readonly bytesOf: Buffer[];
  readonly hash: string;

  constructor(modelDir: string) {
    const json = readFileSync(join(modelDir, 'tokenizer.json'), 'utf8');
    const config = JSON.parse(readFileSync(join(modelDir, 'tokenizer_config.json'), 'utf8'));
    const tokenizer = JSON.parse(json);
    // Corpus text is plain text: a literal "<|endoftext|>" in a source file is ordinary bytes.
    this.plain = new Tokenizer({ ...tokenizer, added_tokens: [] }, config);
    this.hash = createHash('sha256').update(json).digest('hex').slice(0, 12);
    const unicodeToByte = new Map(bytesToUnicode().map((char, byte) => [char, byte]));
    const byId: string[] = [];
    for (const [piece, id] of Object.entries(tokenizer.model.vocab as Record<string, number>)) {
      byId[id] = piece;
    }
    this.bytesOf = byId.map((piece, id) =>
      id < BYTE_ID_OFFSET
        ? Buffer.alloc(0)
        : Buffer.from(Array.from(piece, (char) => unicodeToByte.get(char) as number)),
    );
  }

  encode(text: string): number[] {
    return text === '' ? [] : this.plain.encode(text, { add_special_tokens: false }).ids;
  }

  /** Bytes of ordinary tokens, decoded as UTF-8; special tokens decode to nothing. */
  decode(ids: ArrayLike<number>): string {
    const parts: Buffer[] = [];
    for (let i = 0; i < ids.length; i++) parts.push(this.bytesOf[ids[i]]);
    return Buffer.concat(parts).toString('utf8');
  }
}

/** Encodes a corpus split, or loads the cached encoding made with the same tokenizer. */
export function loadTokenStream(corpusDir: string, split: string, codec: TextCodec): TokenStream {
  const cache = join(corpusDir, `${split}.${codec.hash}.tokens`);
  if (existsSync(cache)) {
    const bytes = readFileSync(cache);
    const count = bytes.readUInt32LE(0);
    const starts = new Uint32Array(
      bytes.buffer.slice(bytes.byteOffset + 4, bytes.byteOffset + 4 + (count + 1) * 4),
    );
    const tokenBytes = bytes.subarray(4 + (count + 1) * 4);
    const tokens = new Uint16Array(
      tokenBytes.buffer.slice(tokenBytes.byteOffset, tokenBytes.byteOffset + tokenBytes.length),
    );
    return { tokens, starts };
  }
  const records = readCorpus(join(corpusDir, `${split}.jsonl`));
  const chunks: number[][] = [];
  const starts = new Uint32Array(records.length + 1);
  let total = 0;
  records.forEach((record, i) => {
    const ids = codec.encode(record.text);
    ids.push(EOT);
    starts[i] = total;
    total += ids.length;
    chunks.push(ids);
  });
  starts[records.length] = total;
  const tokens = new Uint16Array(total);
  let offset = 0;
  for (const ids of chunks) {
    tokens.set(ids, offset);
    offset += ids.length;
  }
  const header = Buffer.alloc(4);
  header.writeUInt32LE(records.length, 0);
  writeFileSync(
    cache,
    Buffer.concat([header, Buffer.from(starts.buffer), Buffer.from(tokens.buffer)]),
  );
  return { tokens, starts };
}

/** One batch: inputs and next-token targets, [B, T] each, row-major. */
export interface Batch {
  inputs: BigInt64Array;
  targets: BigInt64Array;
  /** Rows laid out as FIM (the rest are left-to-right). */
  fimRows: number;
}

/** Index of the document that holds token `position`. */
function documentAt(stream: TokenStream, position: number): number {
  let low = 0;
  let high = stream.starts.length - 2;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (stream.starts[mid] <= position) low = mid;
    else high = mid - 1;
  }
  return low;
}

const WORD = /[A-Za-z0-9_$]/;

/**
 * Moves a uniformly drawn cut to where an editor cursor usually stands. With `draw` in [0, 1):
 * below 0.45 the cut moves back to the start of its line (a cursor on a fresh line, or at the
 * end of the previous one); below 0.8 it moves back out of the word it splits (a cursor after
 * a finished word or punctuation); otherwise it stays where it fell (a cursor mid-word), so
 * every kind of cursor is seen in training. Cutting only at uniform positions, as the first
 * default model was trained, taught it that a middle almost always starts inside a word.
 */
export function editorCut(text: string, cut: number, draw: number): number {
  // A cursor never stands inside a surrogate pair or between the CR and LF of a line end;
  // a cut there would leave a lone surrogate (encoded as U+FFFD) or a stray CR on one side.
  if (cut > 0 && cut < text.length) {
    const before = text.charCodeAt(cut - 1);
    const after = text.charCodeAt(cut);
    const splitsPair = before >= 0xd800 && before <= 0xdbff && after >= 0xdc00 && after <= 0xdfff;
    if (splitsPair || (before === 0x0d && after === 0x0a)) cut--;
  }
  if (cut <= 0) return 0;
  if (draw < 0.45) {
    const lineStart = text.lastIndexOf('\n', cut - 1);
    return lineStart < 0 ? 0 : lineStart + 1;
  }
  if (draw < 0.8) {
    let at = cut;
    while (at > 0 && at < text.length && WORD.test(text[at - 1]) && WORD.test(text[at])) at--;
    return at;
  }
  return cut;
}

/**
 * A FIM example of at most `length` tokens from the document holding `position`, padded with
 * PAD (target IGNORE). Returns undefined when the document is too short to cut.
 */
export function fimExample(
  stream: TokenStream,
  codec: TextCodec,
  position: number,
  length: number,
  rng: Rng,
): number[] | undefined {
  const doc = documentAt(stream, position);
  const start = stream.starts[doc];
  const end = stream.starts[doc + 1] - 1; // without the EOT
  // Room for four control tokens and re-tokenization at the two cuts.
  const window = length - 8;
  const from =
    end - start > window ? start + Math.floor(rng.next() * (end - start - window)) : start;
  const text = codec.decode(stream.tokens.subarray(from, Math.min(end, from + window)));
  if (text.length < 3) return undefined;
  let a = editorCut(text, Math.floor(rng.next() * (text.length + 1)), rng.next());
  let b = editorCut(text, Math.floor(rng.next() * (text.length + 1)), rng.next());
  if (a > b) [a, b] = [b, a];
  const prefix = codec.encode(text.slice(0, a));
  const middle = codec.encode(text.slice(a, b));
  const suffix = codec.encode(text.slice(b));
  const sequence = [FIM_PREFIX, ...prefix, FIM_SUFFIX, ...suffix, FIM_MIDDLE, ...middle, EOT];
  return sequence.slice(0, length);
}

/**
 * Samples a batch: each row is FIM with probability `fimRate`, else a left-to-right window of
 * the stream (documents separated by EOT). Rows hold `seqLen + 1` tokens: inputs are the first
 * `seqLen`, targets the last `seqLen`.
 */
export function sampleBatch(
  stream: TokenStream,
  codec: TextCodec,
  batchSize: number,
  seqLen: number,
  fimRate: number,
  rng: Rng,
): Batch {
  const inputs = new BigInt64Array(batchSize * seqLen);
  const targets = new BigInt64Array(batchSize * seqLen);
  let fimRows = 0;
  for (let row = 0; row < batchSize; row++) {
    const position = Math.floor(rng.next() * (stream.tokens.length - seqLen - 1));
    let tokens: ArrayLike<number> | undefined;
    if (rng.next() < fimRate) tokens = fimExample(stream, codec, position, seqLen + 1, rng);
    if (tokens) fimRows++;
    else tokens = stream.tokens.subarray(position, position + seqLen + 1);
    for (let t = 0; t < seqLen; t++) {
      const input = t < tokens.length ? tokens[t] : PAD;
      const target = t + 1 < tokens.length ? tokens[t + 1] : IGNORE;
      inputs[row * seqLen + t] = BigInt(input);
      targets[row * seqLen + t] = BigInt(target);
    }
  }
  return { inputs, targets, fimRows };
}
