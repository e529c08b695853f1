/**
 * TRL preference datasets (https://huggingface.co/docs/trl/dataset_formats): one JSON object per
 * line with `chosen` and `rejected`, and either an explicit `prompt` or an implicit one (the
 * shared start of both texts). Strings ("standard") or lists of {role, content} messages
 * ("conversational"). An optional numeric `margin` is what TRL's reward trainer reads. Our
 * export adds a `suffix` column (text after the cursor) when any record has one; TRL ignores it.
 */
import type { ChatMessage, PreferenceRecord } from '../../protocol/records';
import { candidateContentKey, expandJudgment } from '../pairs';
import { contentId, importedCandidate, importedJudgment } from '../recordFactory';
import {
  countNote,
  type ExportResult,
  type ImportOptions,
  type ImportResult,
  addRecord,
  importObjectLines,
  LineError,
} from './importResult';

/** Result of splitting two full texts into a shared prompt and two completions. */
export interface PromptSplit {
  prompt: string;
  chosen: string;
  rejected: string;
  /** True when one text is a prefix of the other, so no prompt could be inferred. */
  prefixCase: boolean;
}

/**
 * Infers the prompt of an implicit-prompt pair as TRL does: the longest shared prefix, moved
 * back by one character when the character before the divergence is a space (so the answers
 * keep their leading space: "Q: hi\nA: yes" / "Q: hi\nA: no" -> "Q: hi\nA:", " yes", " no").
 * When the texts differ from the first character the prompt is "". When one text is a prefix
 * of the other, splitting would leave an empty completion, so both are kept whole with prompt
 * "" and `prefixCase` set. A split never falls inside a UTF-16 surrogate pair.
 */
export function splitSharedPrompt(chosen: string, rejected: string): PromptSplit {
  const n = Math.min(chosen.length, rejected.length);
  let idx = 0;
  while (idx < n && chosen.charCodeAt(idx) === rejected.charCodeAt(idx)) idx++;
  if (idx === n) return { prompt: '', chosen, rejected, prefixCase: true };
  if (idx > 0 && chosen[idx - 1] === ' ') idx--;
  const code = idx > 0 ? chosen.charCodeAt(idx - 1) : 0;
  if (code >= 0xd800 && code <= 0xdbff) idx--;
  return {
    prompt: chosen.slice(0, idx),
    chosen: chosen.slice(idx),
    rejected: rejected.slice(idx),
    prefixCase: false,
  };
}

function isMessages(value: unknown): value is ChatMessage[] {
  return (
    Array.isArray(value) &&
    value.every(
      (m) =>
        typeof m === 'object' &&
        m !== null &&
        typeof (m as ChatMessage).role === 'string' &&
        typeof (m as ChatMessage).content === 'string',
    )
  );
}

const sameMessage = (a: ChatMessage, b: ChatMessage) =>
  a.role === b.role && a.content === b.content;
const joinContent = (messages: ChatMessage[]) => messages.map((m) => m.content).join('\n');

interface Parsed {
  prefix: string;
  suffix: string;
  messages?: ChatMessage[];
  chosen: string;
  rejected: string;
  chosenMessages?: ChatMessage[];
  rejectedMessages?: ChatMessage[];
  warning?: string;
}

/** Roles a completion (the model's answer after the prompt) must not contain. */
const PROMPT_ROLES = new Set(['user', 'system', 'developer']);

/**
 * What is wrong with a conversational completion, or null: it must be at least one message
 * written by the model. A "user" or "system" turn there (mismatched roles, or a prompt that
 * could not be inferred) would train the policy to write the user's side.
 */
export function completionProblem(messages: ChatMessage[], key: string): string | null {
  if (messages.length === 0) return `key "${key}": the completion after the prompt has no message`;
  const bad = messages.findIndex((m) => PROMPT_ROLES.has(m.role));
  if (bad === -1) return null;
  return (
    `key "${key}": completion message ${bad} has role ${JSON.stringify(messages[bad].role)}; ` +
    `completions after the prompt must be model turns (e.g. "assistant"), and the prompt ` +
    `must be the shared leading messages or an explicit "prompt"`
  );
}

function checkCompletion(messages: ChatMessage[], key: 'chosen' | 'rejected'): void {
  const problem = completionProblem(messages, key);
  if (problem !== null) throw new LineError(problem);
}

function parseTrlObject(o: Record<string, unknown>): Parsed {
  const { prompt, chosen, rejected } = o;
  if (chosen === undefined || rejected === undefined) {
    throw new LineError(`missing key "${chosen === undefined ? 'chosen' : 'rejected'}"`);
  }
  const suffix = o.suffix ?? '';
  if (typeof suffix !== 'string') throw new LineError(`key "suffix" must be a string`);
  if (typeof chosen === 'string' && typeof rejected === 'string') {
    if (prompt !== undefined) {
      if (typeof prompt !== 'string') {
        throw new LineError(
          'key "prompt" must be a string when "chosen" and "rejected" are strings',
        );
      }
      return { prefix: prompt, suffix, chosen, rejected };
    }
    const split = splitSharedPrompt(chosen, rejected);
    return {
      prefix: split.prompt,
      suffix,
      chosen: split.chosen,
      rejected: split.rejected,
      warning: split.prefixCase
        ? 'cannot infer prompt: one response is a prefix of the other; kept with prompt "" and both texts whole'
        : undefined,
    };
  }
  if (isMessages(chosen) && isMessages(rejected)) {
    let promptMessages: ChatMessage[];
    let chosenMessages = chosen;
    let rejectedMessages = rejected;
    let warning: string | undefined;
    if (prompt !== undefined) {
      if (!isMessages(prompt)) {
        throw new LineError(
          'key "prompt" must be a list of {role, content} messages in the conversational form',
        );
      }
      promptMessages = prompt;
    } else {
      let k = 0;
      while (k < chosen.length && k < rejected.length && sameMessage(chosen[k], rejected[k])) k++;
      if (k === chosen.length || k === rejected.length) {
        k = 0;
        warning =
          'cannot infer prompt: one conversation is a prefix of the other; kept with no prompt messages';
      }
      promptMessages = chosen.slice(0, k);
      chosenMessages = chosen.slice(k);
      rejectedMessages = rejected.slice(k);
    }
    checkCompletion(chosenMessages, 'chosen');
    checkCompletion(rejectedMessages, 'rejected');
    return {
      prefix: '',
      suffix: '',
      messages: promptMessages,
      chosen: joinContent(chosenMessages),
      rejected: joinContent(rejectedMessages),
      chosenMessages,
      rejectedMessages,
      warning,
    };
  }
  throw new LineError(
    'keys "chosen" and "rejected" must both be strings or both be lists of {role, content} messages',
  );
}

/** Reads a TRL preference JSONL file; bad lines are reported with their line numbers. */
export async function importTrl(file: string, options: ImportOptions = {}): Promise<ImportResult> {
  const result: ImportResult = { format: 'trl', records: [], rejected: [], warnings: [] };
  const notObject = 'line must hold a JSON object with "chosen" and "rejected"';
  return importObjectLines(file, result, notObject, (o, line) => {
    const parsed = parseTrlObject(o);
    const chosen = importedCandidate('c0', parsed.chosen, 'unknown', null, parsed.chosenMessages);
    const rejected = importedCandidate(
      'c1',
      parsed.rejected,
      'unknown',
      null,
      parsed.rejectedMessages,
    );
    if (candidateContentKey(chosen) === candidateContentKey(rejected)) {
      throw new LineError('chosen identical to rejected (a pair with no information)');
    }
    const meta: Record<string, unknown> = {};
    if (o.margin !== undefined) {
      if (typeof o.margin !== 'number' || !Number.isFinite(o.margin)) {
        throw new LineError(
          `key "margin" must be a finite number, got ${JSON.stringify(o.margin)}`,
        );
      }
      meta.margin = o.margin;
    }
    if (parsed.warning) result.warnings.push({ line, reason: parsed.warning });
    addRecord(
      result,
      importedJudgment({
        id: contentId('trl', [line, o]),
        origin: 'import:trl',
        annotator: options.annotator ?? 'imported',
        prefix: parsed.prefix,
        suffix: parsed.suffix,
        messages: parsed.messages,
        candidates: [chosen, rejected],
        judgment: { kind: 'pick', best: 'c0' },
        meta,
      }),
      line,
    );
  });
}

export interface TrlExportOptions {
  /** Write a `margin` column: an imported margin if the record has one, else the rank levels apart. */
  margins?: boolean;
}

/**
 * Writes every preference pair as one TRL line. What TRL pairwise cannot hold is left out and
 * counted in `notHeld`: ties, "none good" and skipped judgments, implicit signals, and all
 * metadata (models, positions, annotator, timing).
 */
export function exportTrl(
  records: readonly PreferenceRecord[],
  options: TrlExportOptions = {},
): ExportResult {
  const lines: string[] = [];
  let ties = 0;
  let noneGood = 0;
  let skipped = 0;
  let implicit = 0;
  let degenerate = 0;
  let used = 0;
  const withSuffix = records.some((r) => r.prompt.suffix !== '' && !r.prompt.messages);
  for (const record of records) {
    if (record.type === 'implicit') {
      implicit++;
      continue;
    }
    if (record.judgment.kind === 'none-good') noneGood++;
    if (record.judgment.kind === 'skipped') skipped++;
    const expansion = expandJudgment(record);
    ties += expansion.ties.length;
    degenerate += expansion.degenerate;
    if (expansion.pairs.length > 0) used++;
    const importedMargin =
      typeof record.meta?.margin === 'number' && expansion.pairs.length === 1
        ? record.meta.margin
        : undefined;
    for (const pair of expansion.pairs) {
      const row: Record<string, unknown> = record.prompt.messages
        ? {
            prompt: record.prompt.messages,
            chosen: pair.chosen.messages ?? [{ role: 'assistant', content: pair.chosen.text }],
            rejected: pair.rejected.messages ?? [
              { role: 'assistant', content: pair.rejected.text },
            ],
          }
        : { prompt: record.prompt.prefix, chosen: pair.chosen.text, rejected: pair.rejected.text };
      if (withSuffix && !record.prompt.messages) row.suffix = record.prompt.suffix;
      if (options.margins) row.margin = importedMargin ?? pair.levels;
      lines.push(JSON.stringify(row));
    }
  }
  return {
    format: 'trl',
    lines,
    recordsUsed: used,
    notHeld: [
      ...countNote(
        ties,
        'tie',
        'ties',
        'skipped (TRL pairwise cannot express a tie; use --format rankings)',
      ),
      ...countNote(
        noneGood,
        '"none good" judgment',
        '"none good" judgments',
        'skipped (no pair; use --format kto)',
      ),
      ...countNote(skipped, 'skipped judgment', 'skipped judgments', 'left out (no preference)'),
      ...countNote(
        implicit,
        'implicit signal',
        'implicit signals',
        'left out (unpaired; use --format kto)',
      ),
      ...countNote(degenerate, 'pair of identical texts', 'pairs of identical texts', 'dropped'),
      ...(withSuffix
        ? ['text after the cursor written to the extra "suffix" column (TRL ignores it)']
        : []),
      'metadata not held: models, shown positions, annotator, language, timing',
    ],
  };
}
