/**
 * The Hugging Face `tokenizer.json` / `tokenizer_config.json` layout of our byte-level BPE.
 *
 * Pre-tokenization splits text with `PRETOKENIZE_PATTERN`, then maps every UTF-8 byte to a
 * printable character (the GPT-2 byte-to-unicode table), so any byte string is representable
 * and decoding is exact. Nothing normalizes or strips: code must round-trip byte for byte.
 */

/** Special tokens, in id order from 0. */
export const SPECIAL_TOKENS = [
  '<|endoftext|>',
  '<|fim_prefix|>',
  '<|fim_middle|>',
  '<|fim_suffix|>',
  '<|pad|>',
] as const;

export type SpecialToken = (typeof SPECIAL_TOKENS)[number];

export const SPECIAL_IDS: Readonly<Record<SpecialToken, number>> = Object.fromEntries(
  SPECIAL_TOKENS.map((token, id) => [token, id]),
) as Record<SpecialToken, number>;

/** Id of byte 0; byte b is `BYTE_ID_OFFSET + b`. Merged tokens follow the 256 bytes. */
export const BYTE_ID_OFFSET = SPECIAL_TOKENS.length;

/**
 * Pre-tokenizer split pattern (Oniguruma syntax, also valid JavaScript with the `u` flag):
 * 1. an identifier (letters, digits, `_`, `$`) with at most one leading non-word character,
 *    so ` return`, `.push` and `(value` are single pieces;
 * 2. up to three digits;
 * 3. a run of punctuation with an optional leading space (`=>`, ` ===`, `});`);
 * 4. whitespace that is followed by more text loses its last space, which joins the next
 *    piece; a newline and the next line's indentation stay together (`\n` + spaces), which
 *    is what makes indentation cheap to encode;
 * 5. any other whitespace run.
 */
export const PRETOKENIZE_PATTERN =
  '[^\\r\\n\\p{L}\\p{N}_$]?[\\p{L}_$][\\p{L}\\p{N}_$]*|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}_$]+|\\s+(?!\\S)|\\s+';

/** GPT-2's reversible map from bytes to printable characters (Radford et al., 2019). */
export function bytesToUnicode(): string[] {
  const table = new Array<string>(256);
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCharCode(printable(b) ? b : 256 + shifted++);
  }
  return table;
}

export interface TokenizerFiles {
  tokenizer: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}

/**
 * Builds both files from the trained merges. `merges[i]` joins two existing token ids; the
 * new token gets id `BYTE_ID_OFFSET + 256 + i`.
 */
export function buildTokenizerFiles(
  merges: readonly [number, number][],
  modelMaxLength: number,
): TokenizerFiles {
  const byteChars = bytesToUnicode();
  const pieces: string[] = [...SPECIAL_TOKENS, ...byteChars];
  const mergeStrings: string[] = [];
  for (const [left, right] of merges) {
    if (
      left < BYTE_ID_OFFSET ||
      right < BYTE_ID_OFFSET ||
      left >= pieces.length ||
      right >= pieces.length
    ) {
      throw new Error(`merge [${left}, ${right}] refers to a special or unknown token`);
    }
    mergeStrings.push(`${pieces[left]} ${pieces[right]}`);
    pieces.push(pieces[left] + pieces[right]);
  }
  const ids = new Map<string, number>();
  pieces.forEach((piece, id) => {
    const earlier = ids.get(piece);
    if (earlier !== undefined) {
      throw new Error(`token ${JSON.stringify(piece)} appears twice (ids ${earlier}, ${id})`);
    }
    ids.set(piece, id);
  });
  const vocab = Object.fromEntries(ids);
  const addedTokens = SPECIAL_TOKENS.map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const byteLevel = { add_prefix_space: false, trim_offsets: false, use_regex: false };
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: { Regex: PRETOKENIZE_PATTERN },
          behavior: 'Isolated',
          invert: false,
        },
        { type: 'ByteLevel', ...byteLevel },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', ...byteLevel },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: mergeStrings,
    },
  };
  const tokenizerConfig = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: '<|endoftext|>',
    eos_token: '<|endoftext|>',
    pad_token: '<|pad|>',
    unk_token: null,
    additional_special_tokens: ['<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>'],
    add_bos_token: false,
    add_eos_token: false,
    // Cleanup removes spaces before punctuation (`x != y` -> `x!= y`): never on code.
    clean_up_tokenization_spaces: false,
    model_max_length: modelMaxLength,
    added_tokens_decoder: Object.fromEntries(
      addedTokens.map(({ id, ...token }) => [String(id), token]),
    ),
  };
  return { tokenizer, tokenizerConfig };
}
