/**
 * Prompt building: left-to-right (prefix only) or fill-in-the-middle in prefix-suffix-middle
 * order (`<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>`, StarCoder and Qwen2.5-Coder
 * use this order with their own token names). User text is always encoded as plain text, so
 * text that looks like a control token stays text.
 */
import { SettingError } from '../model/settingError';
import type { CodeTokenizer } from '../model/tokenizer';

export interface BuiltPrompt {
  ids: number[];
  mode: 'left-to-right' | 'fill-in-the-middle';
  /** Tokens dropped from the start of the prefix / end of the suffix to fit the context. */
  truncatedPrefixTokens: number;
  truncatedSuffixTokens: number;
}

/**
 * Fixed caps on the prefix and suffix tokens, applied before `budget` shares out the room.
 * Training (src/rlhf) uses them to cut a judgment's context to fixed limits while keeping the
 * exact layout the editor's requests get; the editor's requests use none.
 */
export interface PromptCaps {
  /** Keep at most the last this many prefix tokens (the text nearest the cursor). */
  maxPrefixTokens?: number;
  /** Keep at most the first this many suffix tokens (the text nearest the cursor). */
  maxSuffixTokens?: number;
}

/**
 * Builds the prompt ids. `budget` is the most prompt tokens the model can take (context length
 * minus the tokens to generate). When the suffix is empty (or capped to 0 tokens), or the
 * tokenizer has no FIM tokens, the prompt is left-to-right.
 * Limitation: with no FIM tokens the suffix is ignored rather than rejected, so a FIM request
 * to a plain model still completes.
 */
export function buildPrompt(
  tokenizer: CodeTokenizer,
  prefix: string,
  suffix: string,
  budget: number,
  caps: PromptCaps = {},
): BuiltPrompt {
  const start = [...tokenizer.promptPrefixIds];
  const allPrefixIds = tokenizer.encodePlain(prefix);
  const prefixCut = Math.max(0, allPrefixIds.length - (caps.maxPrefixTokens ?? Infinity));
  const prefixIds = allPrefixIds.slice(prefixCut);
  const fim = tokenizer.fim;
  const tooSmall = (needed: number) =>
    new SettingError(
      `maxNewTokens leaves room for ${budget} prompt tokens; this prompt needs at least ${needed} ` +
        '(control tokens); lower maxNewTokens',
    );
  if (suffix.length === 0 || !fim || caps.maxSuffixTokens === 0) {
    const room = budget - start.length;
    if (room < 0) throw tooSmall(start.length);
    const dropped = Math.max(0, prefixIds.length - room);
    return {
      ids: [...start, ...prefixIds.slice(dropped)],
      mode: 'left-to-right',
      truncatedPrefixTokens: prefixCut + dropped,
      truncatedSuffixTokens: 0,
    };
  }
  const allSuffixIds = tokenizer.encodeContinuation(suffix);
  const suffixIds = allSuffixIds.slice(0, caps.maxSuffixTokens ?? allSuffixIds.length);
  const room = budget - start.length - 3;
  if (room < 0) throw tooSmall(start.length + 3);
  // The suffix gets at most a quarter of the room when both do not fit: text before the cursor
  // matters more for what comes next.
  let suffixKeep = suffixIds.length;
  let prefixKeep = prefixIds.length;
  if (prefixKeep + suffixKeep > room) {
    suffixKeep = Math.min(suffixKeep, room, Math.max(1, Math.floor(room / 4)));
    prefixKeep = Math.min(prefixKeep, room - suffixKeep);
    suffixKeep = Math.min(suffixIds.length, room - prefixKeep);
  }
  return {
    ids: [
      ...start,
      fim.prefix,
      ...prefixIds.slice(prefixIds.length - prefixKeep),
      fim.suffix,
      ...suffixIds.slice(0, suffixKeep),
      fim.middle,
    ],
    mode: 'fill-in-the-middle',
    truncatedPrefixTokens: allPrefixIds.length - prefixKeep,
    truncatedSuffixTokens: allSuffixIds.length - suffixKeep,
  };
}
