/**
 * Tokenizer wrapper over @huggingface/tokenizers (pure JS) with the rules code needs:
 *
 * - User text is encoded as plain text: a substring that looks like a special token
 *   (`<|endoftext|>`, `<fim_prefix>`) becomes ordinary pieces, never a control id. Control ids
 *   are only ever added by prompt builders.
 * - Decoding goes through each token's raw bytes, never through the library's string decoder,
 *   so there is no "cleanup" of spaces (whatever `clean_up_tokenization_spaces` says) and a
 *   streaming decoder can hold back half a UTF-8 character.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer } from '@huggingface/tokenizers';
import { ConfigError, readJsonFile } from './config';

/** How token strings map to bytes, read from tokenizer.json's decoder. */
export type ByteScheme = 'byte-level' | 'metaspace';

export interface FimTokens {
  prefix: number;
  suffix: number;
  middle: number;
  /**
   * Which naming family the vocabulary uses: StarCoder's `<fim_prefix>`, Qwen2.5-Coder's
   * `<|fim_prefix|>`, or DeepSeek-Coder's `<｜fim▁begin｜>` / `<｜fim▁hole｜>` / `<｜fim▁end｜>`
   * (the same prefix-suffix-middle layout under other names).
   */
  family: '<fim_x>' | '<|fim_x|>' | '<｜fim▁x｜>';
}

interface AddedTokenJson {
  id: number;
  content: string;
  special?: boolean;
}

export class CodeTokenizer {
  /** Ids of special (control) tokens: never shown, generation stops on them. */
  readonly specialIds: ReadonlySet<number>;
  /** Ids the post-processor puts before the text (e.g. BOS for Llama, none for Qwen2). */
  readonly promptPrefixIds: readonly number[];
  readonly eosId: number | undefined;
  readonly fim: FimTokens | undefined;
  readonly vocabSize: number;
  private readonly byteCache: (Uint8Array | undefined)[] = [];

  private constructor(
    private readonly full: Tokenizer,
    private readonly plain: Tokenizer,
    readonly byteScheme: ByteScheme,
    /** Metaspace tokenizers prepend "▁" to the text; decoding from the start drops it again. */
    private readonly prependsSpace: boolean,
    specialTokens: AddedTokenJson[],
    eosToken: string | undefined,
  ) {
    this.specialIds = new Set(specialTokens.map((t) => t.id));
    const withSpecials = full.encode('a', { add_special_tokens: true }).ids;
    const without = full.encode('a', { add_special_tokens: false }).ids;
    const at = indexOfSubarray(withSpecials, without);
    this.promptPrefixIds = at > 0 ? withSpecials.slice(0, at) : [];
    this.eosId = eosToken === undefined ? undefined : this.tokenId(eosToken);
    this.vocabSize = full.get_vocab(true).size;
    this.fim = findFimTokens((content) => this.tokenId(content));
  }

  /** Loads `tokenizer.json` and `tokenizer_config.json` from a model folder. */
  static load(dir: string): CodeTokenizer {
    const file = path.join(dir, 'tokenizer.json');
    if (!fs.existsSync(file)) {
      throw new ConfigError(
        `${dir} has no tokenizer.json (only the fast-tokenizer format is supported)`,
      );
    }
    const json = readJsonFile(file) as Record<string, unknown>;
    const configFile = path.join(dir, 'tokenizer_config.json');
    const config = fs.existsSync(configFile)
      ? (readJsonFile(configFile) as Record<string, unknown>)
      : {};
    if (typeof config !== 'object' || config === null || Array.isArray(config)) {
      throw new ConfigError(`${configFile}: expected a JSON object, got ${JSON.stringify(config)}`);
    }
    return CodeTokenizer.fromJson(json, config, file);
  }

  static fromJson(
    json: Record<string, unknown>,
    config: Record<string, unknown>,
    source = 'tokenizer.json',
  ): CodeTokenizer {
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      throw new ConfigError(`${source}: expected a JSON object, got ${JSON.stringify(json)}`);
    }
    const model = json.model as { type?: string } | undefined;
    if (model?.type !== 'BPE') {
      throw new ConfigError(
        `${source}: model.type ${JSON.stringify(model?.type)} is not supported; only BPE ` +
          '(byte-level as in GPT-2/Llama 3/Qwen, or SentencePiece-style with byte fallback)',
      );
    }
    const byteScheme = detectByteScheme(json.decoder, source);
    if (json.added_tokens != null && !Array.isArray(json.added_tokens)) {
      throw new ConfigError(`${source}: "added_tokens" must be a list of tokens`);
    }
    const added = ((json.added_tokens as AddedTokenJson[] | undefined) ?? []).filter(
      (t) => typeof t?.content === 'string' && Number.isInteger(t.id),
    );
    const special = added.filter(isControlToken);
    // Decoding cleanup is off whatever the config says: code must round-trip byte for byte.
    const libraryConfig = { ...config, clean_up_tokenization_spaces: false };
    let full: Tokenizer;
    let plain: Tokenizer;
    try {
      full = new Tokenizer(json, libraryConfig);
      // The plain tokenizer does not know the control tokens, so their text is split like any
      // other.
      plain = new Tokenizer(
        { ...json, added_tokens: added.filter((t) => !isControlToken(t)) },
        libraryConfig,
      );
    } catch (error) {
      throw new ConfigError(`${source} is not a valid tokenizer: ${(error as Error).message}`);
    }
    return new CodeTokenizer(
      full,
      plain,
      byteScheme,
      byteScheme === 'metaspace' && prependsMetaspace(json),
      special,
      tokenContent(config.eos_token),
    );
  }

  /** Id of an exact token string (vocabulary or added token). */
  tokenId(content: string): number | undefined {
    return this.full.token_to_id(content);
  }

  tokenString(id: number): string | undefined {
    return this.full.id_to_token(id);
  }

  /** Encodes user text with no special tokens recognised and none added. */
  encodePlain(text: string): number[] {
    if (text.length === 0) return [];
    return this.plain.encode(text, { add_special_tokens: false }).ids;
  }

  /**
   * Encodes text that continues other text (e.g. a FIM suffix): no "▁" is prepended, so the
   * pieces match what the same text gets in the middle of a sequence. For byte-level tokenizers
   * this is the same as `encodePlain`.
   */
  encodeContinuation(text: string): number[] {
    if (!this.prependsSpace || text.length === 0) return this.encodePlain(text);
    // Encode with a one-character anchor and drop the anchor's pieces.
    const anchor = this.encodePlain('\n');
    const ids = this.encodePlain(`\n${text}`);
    if (indexOfSubarray(ids, anchor) === 0) return ids.slice(anchor.length);
    return this.encodePlain(text);
  }

  /** Raw bytes a token stands for; control tokens stand for nothing. */
  tokenBytes(id: number): Uint8Array {
    const cached = this.byteCache[id];
    if (cached) return cached;
    let bytes: Uint8Array;
    const content = this.full.id_to_token(id);
    if (content === undefined || this.specialIds.has(id)) bytes = new Uint8Array(0);
    else if (this.isAddedToken(id)) bytes = Buffer.from(content, 'utf8');
    else if (this.byteScheme === 'byte-level') bytes = byteLevelToBytes(content);
    else bytes = metaspaceToBytes(content);
    this.byteCache[id] = bytes;
    return bytes;
  }

  /**
   * Decodes ids to text with no cleanup, leaving out control tokens. `atStart` says the ids
   * begin a sequence, so a prepended "▁" (SentencePiece-style tokenizers) is dropped.
   */
  decode(ids: readonly number[], atStart = true): string {
    const parts = ids.map((id) => this.tokenBytes(id));
    let bytes = Buffer.concat(parts);
    if (atStart && this.prependsSpace && bytes[0] === 0x20) bytes = bytes.subarray(1);
    return bytes.toString('utf8');
  }

  private isAddedToken(id: number): boolean {
    return this.full.get_added_tokens_decoder().has(id);
  }
}

/**
 * Control tokens: those marked special, and added tokens named like control tokens even when
 * marked `special: false` (Qwen2.5-Coder ships `<|fim_prefix|>` ... `<|file_sep|>` that way,
 * DeepSeek-Coder `<｜fim▁hole｜>` with full-width bars).
 */
const CONTROL_NAME =
  /^<\|[^|\s]+\|>$|^<｜[^｜\s]+｜>$|^<(?:fim_[a-z]+|file_sep|repo_name|filename|gh_stars)>$/;

function isControlToken(token: AddedTokenJson): boolean {
  return token.special === true || CONTROL_NAME.test(token.content);
}

function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (
    value &&
    typeof value === 'object' &&
    typeof (value as { content?: unknown }).content === 'string'
  ) {
    return (value as { content: string }).content;
  }
  return undefined;
}

/** FIM token names per family, in prefix, suffix, middle order. */
const FIM_FAMILIES: ReadonlyArray<[FimTokens['family'], string, string, string]> = [
  ['<|fim_x|>', '<|fim_prefix|>', '<|fim_suffix|>', '<|fim_middle|>'],
  ['<fim_x>', '<fim_prefix>', '<fim_suffix>', '<fim_middle>'],
  // DeepSeek-Coder: `<｜fim▁begin｜>prefix<｜fim▁hole｜>suffix<｜fim▁end｜>` then the middle.
  ['<｜fim▁x｜>', '<｜fim▁begin｜>', '<｜fim▁hole｜>', '<｜fim▁end｜>'],
];

function findFimTokens(lookup: (content: string) => number | undefined): FimTokens | undefined {
  for (const [family, prefixName, suffixName, middleName] of FIM_FAMILIES) {
    const prefix = lookup(prefixName);
    const suffix = lookup(suffixName);
    const middle = lookup(middleName);
    if (prefix !== undefined && suffix !== undefined && middle !== undefined) {
      return { prefix, suffix, middle, family };
    }
  }
  return undefined;
}

function detectByteScheme(decoder: unknown, source: string): ByteScheme {
  const types: string[] = [];
  const collect = (d: unknown) => {
    if (!d || typeof d !== 'object') return;
    const node = d as { type?: string; decoders?: unknown[] };
    if (node.type) types.push(node.type);
    node.decoders?.forEach(collect);
  };
  collect(decoder);
  if (types.includes('ByteLevel')) return 'byte-level';
  if (types.includes('Metaspace') || types.includes('ByteFallback')) return 'metaspace';
  throw new ConfigError(
    `${source}: decoder ${JSON.stringify(types)} is not supported; expected ByteLevel, or ` +
      'Metaspace/ByteFallback (SentencePiece-style)',
  );
}

function prependsMetaspace(json: Record<string, unknown>): boolean {
  const has = (node: unknown, test: (n: Record<string, unknown>) => boolean): boolean => {
    if (!node || typeof node !== 'object') return false;
    const n = node as Record<string, unknown>;
    if (test(n)) return true;
    const children = (n.normalizers ?? n.pretokenizers) as unknown[] | undefined;
    return Array.isArray(children) && children.some((c) => has(c, test));
  };
  return (
    has(json.normalizer, (n) => n.type === 'Prepend' && n.prepend === '▁') ||
    has(
      json.pre_tokenizer,
      (n) =>
        n.type === 'Metaspace' &&
        (n.prepend_scheme === 'always' ||
          n.prepend_scheme === 'first' ||
          n.add_prefix_space === true),
    )
  );
}

let unicodeToByte: Map<string, number> | undefined;

/** GPT-2's byte-to-unicode table, inverted: printable bytes map to themselves, others to 256+n. */
function byteLevelTable(): Map<string, number> {
  if (unicodeToByte) return unicodeToByte;
  unicodeToByte = new Map();
  let next = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const char = String.fromCharCode(printable ? b : 256 + next++);
    unicodeToByte.set(char, b);
  }
  return unicodeToByte;
}

function byteLevelToBytes(content: string): Uint8Array {
  const table = byteLevelTable();
  const out: number[] = [];
  for (const char of content) {
    const byte = table.get(char);
    if (byte !== undefined) out.push(byte);
    else out.push(...Buffer.from(char, 'utf8'));
  }
  return Uint8Array.from(out);
}

function metaspaceToBytes(content: string): Uint8Array {
  const byteToken = /^<0x([0-9A-Fa-f]{2})>$/.exec(content);
  if (byteToken) return Uint8Array.of(parseInt(byteToken[1], 16));
  return Buffer.from(content.replace(/▁/g, ' '), 'utf8');
}

function indexOfSubarray(haystack: readonly number[], needle: readonly number[]): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
