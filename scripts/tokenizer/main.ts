/**
 * Trains the default model's byte-level BPE tokenizer on a sample of the corpus and writes
 * `tokenizer.json` and `tokenizer_config.json` (Hugging Face layout).
 *
 * Usage: npx tsx scripts/tokenizer/main.ts [--corpus .corpus] [--out models/default]
 *          [--vocab-size 4096] [--sample-bytes 12000000] [--context 256]
 *
 * After training it encodes every validation file with @huggingface/tokenizers, checks the
 * byte-exact round trip, and reports bytes per token.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { splitFraction, type CorpusRecord } from '../corpus';
import { trainBpe } from './bpe';
import { buildTokenizerFiles, bytesToUnicode, BYTE_ID_OFFSET, SPECIAL_TOKENS } from './format';

interface TokenizerTrainingConfig {
  /** Folder with train.jsonl and validation.jsonl from `npm run corpus`. */
  corpus: string;
  /** Folder the two tokenizer files are written to. */
  out: string;
  /** Total vocabulary, special tokens and the 256 bytes included. */
  vocabSize: number;
  /** Approximate bytes of training text sampled from train.jsonl. */
  sampleBytes: number;
  /** `model_max_length` written to tokenizer_config.json. */
  context: number;
}

function parseArgs(argv: string[]): TokenizerTrainingConfig {
  const config: TokenizerTrainingConfig = {
    corpus: '.corpus',
    out: 'models/default',
    vocabSize: 4096,
    sampleBytes: 12_000_000,
    context: 256,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`tokenizer: ${flag} needs a value`);
    const number = Number(value);
    const positiveInteger = () => {
      if (!Number.isInteger(number) || number <= 0) {
        throw new Error(`tokenizer: ${flag} ${value} must be a positive integer`);
      }
      return number;
    };
    if (flag === '--corpus') config.corpus = value;
    else if (flag === '--out') config.out = value;
    else if (flag === '--vocab-size') config.vocabSize = positiveInteger();
    else if (flag === '--sample-bytes') config.sampleBytes = positiveInteger();
    else if (flag === '--context') config.context = positiveInteger();
    else {
      throw new Error(
        `tokenizer: unknown flag ${flag}; allowed: --corpus, --out, --vocab-size, ` +
          '--sample-bytes, --context',
      );
    }
  }
  const minimum = BYTE_ID_OFFSET + 256;
  if (config.vocabSize <= minimum || config.vocabSize > 65536) {
    throw new Error(`tokenizer: --vocab-size ${config.vocabSize} must be in (${minimum}, 65536]`);
  }
  return config;
}

export function readCorpus(file: string): CorpusRecord[] {
  const records: CorpusRecord[] = [];
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, index) => {
      if (line === '') return;
      try {
        records.push(JSON.parse(line) as CorpusRecord);
      } catch (error) {
        throw new Error(`${file}:${index + 1}: not a JSON record (${(error as Error).message})`);
      }
    });
  return records;
}

/** A tokenizer with the final pre-tokenizer and no merges: pre-tokenization exactly as used. */
function pretokenizerOnly(): Tokenizer {
  const { tokenizer, tokenizerConfig } = buildTokenizerFiles([], 256);
  return new Tokenizer(tokenizer, tokenizerConfig);
}

/** Counts byte-level pre-tokens of `texts` as symbol-id words. */
export function countPretokens(texts: Iterable<string>): { words: number[][]; counts: number[] } {
  const preTokenizer = pretokenizerOnly().pre_tokenizer;
  if (preTokenizer === null) throw new Error('tokenizer: the pre-tokenizer failed to load');
  const byteOf = new Map(bytesToUnicode().map((char, byte) => [char, byte]));
  const counts = new Map<string, number>();
  for (const text of texts) {
    for (const piece of preTokenizer(text)) counts.set(piece, (counts.get(piece) ?? 0) + 1);
  }
  const words: number[][] = [];
  const wordCounts: number[] = [];
  for (const [piece, count] of counts) {
    words.push(Array.from(piece, (char) => BYTE_ID_OFFSET + (byteOf.get(char) as number)));
    wordCounts.push(count);
  }
  return { words, counts: wordCounts };
}

function main(): void {
  const config = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const train = readCorpus(join(config.corpus, 'train.jsonl'));
  const totalBytes = train.reduce((sum, record) => sum + record.text.length, 0);
  const keep = Math.min(1, config.sampleBytes / totalBytes);
  const sample = train.filter(
    (record) => splitFraction(`sample:${record.package}/${record.path}`) < keep,
  );
  const sampleBytes = sample.reduce((sum, record) => sum + Buffer.byteLength(record.text), 0);
  const { words, counts } = countPretokens(sample.map((record) => record.text));
  const counted = Date.now();
  process.stdout.write(
    `tokenizer: ${sample.length} files, ${sampleBytes} bytes sampled; ${words.length} distinct ` +
      `pre-tokens in ${(counted - started) / 1000}s\n`,
  );
  const firstNewId = BYTE_ID_OFFSET + 256;
  const { merges, mergeCounts } = trainBpe(
    words,
    counts,
    firstNewId,
    config.vocabSize - firstNewId,
  );
  process.stdout.write(
    `tokenizer: ${merges.length} merges in ${(Date.now() - counted) / 1000}s ` +
      `(pair count ${mergeCounts[0]} first, ${mergeCounts[mergeCounts.length - 1]} last)\n`,
  );
  if (firstNewId + merges.length !== config.vocabSize) {
    throw new Error(
      `tokenizer: only ${merges.length} merges found; the sample is too small for ` +
        `--vocab-size ${config.vocabSize}`,
    );
  }
  const files = buildTokenizerFiles(merges, config.context);
  mkdirSync(config.out, { recursive: true });
  writeFileSync(join(config.out, 'tokenizer.json'), JSON.stringify(files.tokenizer) + '\n');
  writeFileSync(
    join(config.out, 'tokenizer_config.json'),
    JSON.stringify(files.tokenizerConfig, null, 2) + '\n',
  );

  // Check what was written, through the library the product loads it with.
  const loaded = new Tokenizer(
    JSON.parse(readFileSync(join(config.out, 'tokenizer.json'), 'utf8')),
    JSON.parse(readFileSync(join(config.out, 'tokenizer_config.json'), 'utf8')),
  );
  const validation = readCorpus(join(config.corpus, 'validation.jsonl'));
  let bytes = 0;
  let tokens = 0;
  for (const record of validation) {
    const ids = loaded.encode(record.text, { add_special_tokens: false }).ids;
    const decoded = loaded.decode(ids, { skip_special_tokens: false });
    if (decoded !== record.text && !SPECIAL_TOKENS.some((token) => record.text.includes(token))) {
      throw new Error(`tokenizer: ${record.package}/${record.path} does not round-trip`);
    }
    bytes += Buffer.byteLength(record.text);
    tokens += ids.length;
  }
  process.stdout.write(
    `tokenizer: vocab ${config.vocabSize}; validation ${validation.length} files round-trip; ` +
      `${(bytes / tokens).toFixed(3)} bytes/token; wrote ${config.out}/tokenizer.json ` +
      `in ${(Date.now() - started) / 1000}s\n`,
  );
}

if (require.main === module) {
  try {
    main();
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(1);
  }
}
