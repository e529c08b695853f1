/**
 * Host tensors for the training graphs: right-padded token batches with positions, key mask,
 * next-token targets, and the response gather index (see trainGraphs.ts for the layout).
 */
import type { HostTensor } from '../engine';
import { buildPrompt } from '../generation/prompt';
import type { CodeTokenizer } from '../model/tokenizer';
import type { PromptContext } from './promptContext';

export interface TokenRow {
  prompt: readonly number[];
  completion: readonly number[];
}

function int64(values: ArrayLike<number>, shape: number[]): HostTensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]);
  return { dtype: 'int64', shape, data };
}

export function float32(values: ArrayLike<number>, shape: number[]): HostTensor {
  return { dtype: 'float32', shape, data: Float32Array.from(values) };
}

export interface SequenceBatch {
  feeds: Record<string, HostTensor>;
  /** Padded sequence length T. */
  length: number;
  /** Response width R (longest completion, at least 1). */
  responseWidth: number;
  /** [B * R] 1 for real completion tokens. */
  responseMask: Float32Array;
}

/**
 * Right-pads prompt + completion rows into [B, T]. `padId` fills padding (any id: padding is
 * hidden by the key mask and never a target that counts). Response entries past a row's
 * completion point at a valid position and are masked out.
 */
export function sequenceBatch(
  rows: readonly TokenRow[],
  padId = 0,
  withTargets = true,
): SequenceBatch {
  if (rows.length === 0) throw new Error('sequenceBatch: no rows');
  rows.forEach((row, i) => {
    if (row.prompt.length === 0) throw new Error(`sequenceBatch: row ${i} has an empty prompt`);
  });
  const b = rows.length;
  const t = Math.max(...rows.map((r) => r.prompt.length + r.completion.length));
  const rWidth = Math.max(1, ...rows.map((r) => r.completion.length));
  const ids = new Array<number>(b * t).fill(padId);
  const positions = new Array<number>(b * t).fill(0);
  const mask = new Array<number>(b * t).fill(0);
  const targets = new Array<number>(b * t).fill(0);
  const index = new Array<number>(b * rWidth).fill(0);
  const responseMask = new Float32Array(b * rWidth);
  rows.forEach((row, i) => {
    const seq = [...row.prompt, ...row.completion];
    seq.forEach((id, p) => {
      ids[i * t + p] = id;
      positions[i * t + p] = p;
      mask[i * t + p] = 1;
      if (p + 1 < seq.length) targets[i * t + p] = seq[p + 1];
    });
    for (let j = 0; j < rWidth; j++) {
      const real = j < row.completion.length;
      index[i * rWidth + j] = real ? row.prompt.length - 1 + j : row.prompt.length - 1;
      responseMask[i * rWidth + j] = real ? 1 : 0;
    }
  });
  const feeds: Record<string, HostTensor> = {
    input_ids: int64(ids, [b, t]),
    positions: int64(positions, [b, t]),
    key_mask: int64(mask, [b, t]),
  };
  if (withTargets) {
    feeds.targets = int64(targets, [b, t]);
    feeds.response_index = int64(index, [b, rWidth]);
  }
  return { feeds, length: t, responseWidth: rWidth, responseMask };
}

/** Splits a [B * R] array into per-row arrays of each row's completion length. */
export function unpadRows(
  data: ArrayLike<number>,
  rows: readonly TokenRow[],
  width: number,
): number[][] {
  return rows.map((row, i) =>
    Array.from({ length: row.completion.length }, (_, j) => data[i * width + j]),
  );
}

/** How (prompt, suffix, completion) text is cut into tokens for training and scoring. */
export interface EncodingLimits {
  /** Prompt tokens kept: the model's prompt prefix (BOS) and the end of the text before the cursor. */
  maxPromptTokens: number;
  /**
   * Suffix tokens kept: the start of the text after the cursor. 0 or absent: the suffix is not
   * read (left-to-right prompts, as every encoding was before suffixes were read).
   */
  maxSuffixTokens?: number;
  maxCompletionTokens: number;
  /**
   * Mark where the completion starts when no suffix is read, for reward models: a left-to-right
   * row gives no sign of where the prompt ends, so a rule about the completion (its words, or
   * that it is empty) must first be guessed from the text. How: `completionMark`. Absent or
   * false: the rows are exactly as before (policies, DPO, older reward models).
   */
  markCompletion?: boolean;
  /**
   * The mark `markCompletion` uses (see `CompletionMark`). Absent: 'fim' when the model has FIM
   * tokens, else no mark, which is how reward models were scored before marks were recorded;
   * trainers record the mark they used (`completionMarkFor`, 'none' included) so a reward model
   * is scored as trained whatever model scores it.
   */
  completionMark?: CompletionMark;
}

/**
 * How a completion's start is marked: 'fim' is the fill-in-the-middle layout with an empty
 * suffix (`<fim_prefix>prefix<fim_suffix><fim_middle>completion`); 'eos' ends the prompt with
 * the end-of-sequence token, for models without FIM tokens (Llama 3, Mistral). Measured on the
 * default model's demo judgments, reward-model validation accuracy (context-words,
 * short-lines): no mark 72.9%, 85.3%; 'eos' 73.7%, 89.6%; 'fim' 75.6%, 88.7%. 'none': the
 * model had neither, so the rows are left-to-right (recorded, so that scoring with a model that
 * has FIM tokens does not add a mark the reward model never saw).
 */
export type CompletionMark = 'fim' | 'eos' | 'none';

/** The mark a reward model trained on this tokenizer uses: FIM tokens, else EOS, else none. */
export function completionMarkFor(tokenizer: CodeTokenizer): CompletionMark {
  if (tokenizer.fim) return 'fim';
  return tokenizer.eosId === undefined ? 'none' : 'eos';
}

/** Why `tokenizer` cannot make `mark`, or undefined when it can. */
export function missingMarkTokens(
  tokenizer: CodeTokenizer,
  mark: CompletionMark,
): string | undefined {
  if (mark === 'fim' && !tokenizer.fim) return 'FIM tokens';
  if (mark === 'eos' && tokenizer.eosId === undefined) return 'EOS token';
  return undefined;
}

/**
 * Tokenises (prompt, suffix, completion) text with generation's prompt builder. When the suffix
 * is read (it is not empty, the model has FIM tokens and `maxSuffixTokens` is above 0): the
 * fill-in-the-middle layout of an editor request, with the prefix cut to the last tokens
 * `maxPromptTokens` leaves after the prompt prefix (as left-to-right) and the suffix to its
 * first `maxSuffixTokens` tokens, so the prompt has at most maxPromptTokens + 3 +
 * maxSuffixTokens tokens. Otherwise left-to-right (exactly the encoding from before suffixes
 * were read), unless `markCompletion` is set: then the same prefix tokens with the completion's
 * start marked (`completionMark`).
 */
export function encodePair(
  tokenizer: CodeTokenizer,
  context: PromptContext,
  completion: string,
  limits: EncodingLimits,
): TokenRow {
  const maxSuffixTokens = limits.maxSuffixTokens ?? 0;
  const start = tokenizer.promptPrefixIds.length;
  const maxPrefixTokens = Math.max(0, limits.maxPromptTokens - start);
  const fim = tokenizer.fim;
  const readsSuffix = context.suffix !== '' && fim !== undefined && maxSuffixTokens > 0;
  let promptIds = readsSuffix
    ? buildPrompt(
        tokenizer,
        context.prompt,
        context.suffix,
        start + 3 + maxPrefixTokens + maxSuffixTokens,
        { maxPrefixTokens, maxSuffixTokens },
      ).ids
    : buildPrompt(tokenizer, context.prompt, '', limits.maxPromptTokens).ids;
  const mark =
    readsSuffix || !limits.markCompletion
      ? undefined
      : (limits.completionMark ?? (fim ? 'fim' : undefined));
  const missing = mark === undefined ? undefined : missingMarkTokens(tokenizer, mark);
  if (missing) {
    throw new Error(
      `completionMark is '${mark}' but this model's tokenizer has no ${missing}: the reward ` +
        'model was trained on another model; score it with the model it was trained on',
    );
  }
  if (mark === 'fim' && fim) {
    // The FIM layout with an empty suffix: the prompt keeps the same prefix tokens.
    const prefixIds = promptIds.slice(start);
    promptIds = [...promptIds.slice(0, start), fim.prefix, ...prefixIds, fim.suffix, fim.middle];
  } else if (mark === 'eos' && tokenizer.eosId !== undefined) {
    promptIds = [...promptIds, tokenizer.eosId];
  }
  // A model without a BOS-style prompt prefix and an empty prompt still needs one position
  // whose logits predict the first completion token.
  if (promptIds.length === 0) promptIds = tokenizer.encodePlain('\n');
  const completionIds = tokenizer
    .encodeContinuation(completion)
    .slice(0, limits.maxCompletionTokens);
  return { prompt: promptIds, completion: completionIds };
}
