/**
 * Messages between the extension host and its webviews. Every message crossing the boundary is
 * validated on arrival: a webview is a separate origin and its messages are untrusted input.
 */

/** Dashboard webview -> extension host. */
export type DashboardToHost = { type: 'ready' } | { type: 'refresh' };

/** Extension host -> dashboard webview. */
export type HostToDashboard = {
  type: 'state';
  /** Number of judgments in the active preference store. */
  judgments: number;
  /** Human-readable model description, e.g. "default (embedded)". */
  model: string;
  /** Training state shown to the user, e.g. "idle". */
  training: string;
};

export class MessageValidationError extends Error {}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Validates a message from the dashboard webview; throws naming the bad field. */
export function parseDashboardToHost(value: unknown): DashboardToHost {
  if (!isRecord(value)) {
    throw new MessageValidationError(`dashboard message must be an object, got ${typeof value}`);
  }
  if (value.type === 'ready' || value.type === 'refresh') {
    return { type: value.type };
  }
  throw new MessageValidationError(
    `dashboard message has unknown type ${JSON.stringify(value.type)}; allowed: "ready", "refresh"`,
  );
}

/** Validates a message from the extension host to the dashboard; throws naming the bad field. */
export function parseHostToDashboard(value: unknown): HostToDashboard {
  if (!isRecord(value) || value.type !== 'state') {
    throw new MessageValidationError('host message must be an object with type "state"');
  }
  const { judgments, model, training } = value;
  if (typeof judgments !== 'number' || !Number.isInteger(judgments) || judgments < 0) {
    throw new MessageValidationError(
      `"judgments" must be a non-negative integer, got ${judgments}`,
    );
  }
  if (typeof model !== 'string') {
    throw new MessageValidationError(`"model" must be a string, got ${typeof model}`);
  }
  if (typeof training !== 'string') {
    throw new MessageValidationError(`"training" must be a string, got ${typeof training}`);
  }
  return { type: 'state', judgments, model, training };
}

// ---------------------------------------------------------------------------------------------
// Comparison webview. Candidates are identified by their shown position (0-based, in the order
// the webview displays them); the extension maps positions back to candidate ids, so the
// webview never sees which model or adapter produced what (blind comparison).

/** What the comparison webview displays for one comparison. */
export interface ComparisonView {
  /** Comparison id; every judgment names it, so a vote can never land on another prompt. */
  id: string;
  /** VS Code language id of the document, for highlighting. */
  languageId: string;
  /** Up to the last few thousand characters before the cursor: lexer state and a context line. */
  contextBefore: string;
  /** Candidate texts in shown order. */
  candidates: string[];
  /**
   * "blind-ab": one candidate from the base model and one from the tuned adapter, in random
   * order (the view never learns which is which). Absent for an ordinary comparison.
   */
  mode?: 'blind-ab';
}

/**
 * Blind A/B score of the tuned adapter against the base so far, from the stored records. Ties
 * (and "none good", both bad) count as half a win; rate and interval are null before any
 * counted judgment.
 */
export interface BlindScoreView {
  /** Adapter name as the status bar shows it. */
  adapter: string;
  tunedWins: number;
  baseWins: number;
  ties: number;
  /** Skipped blind judgments (stored, not counted). */
  skipped: number;
  /** Tuned win rate, (tunedWins + ties / 2) / (tunedWins + baseWins + ties). */
  rate: number | null;
  /** 95% Wilson interval of the rate. */
  low: number | null;
  high: number | null;
  /** Which side the judgment just recorded preferred, revealed after recording; else absent. */
  lastOutcome?: 'tuned' | 'base' | 'tie' | 'no-preference';
}

/** A judgment expressed with shown positions (0-based). */
export type ViewJudgment =
  | { kind: 'pick'; best: number }
  | { kind: 'ranking'; groups: number[][] }
  | { kind: 'none-good' }
  | { kind: 'skipped' };

/** Extension host -> comparison webview. */
export type HostToCompare =
  | { type: 'comparison'; comparison: ComparisonView }
  | { type: 'status'; text: string; busy: boolean }
  | { type: 'recorded'; comparisonId: string; text: string }
  | { type: 'blindScore'; score: BlindScoreView }
  /** The score could not be computed (e.g. the store could not be read); says why. */
  | { type: 'blindScoreError'; text: string };

/** Comparison webview -> extension host. */
export type CompareToHost =
  | { type: 'ready' }
  | { type: 'rendered'; comparisonId: string }
  | { type: 'judgment'; comparisonId: string; judgment: ViewJudgment };

/** Most candidates a comparison can hold (setting `codeRlhf.candidateCount` allows 2 to 8). */
export const MAX_CANDIDATES = 8;
/** Longest candidate text accepted, in UTF-16 code units. */
export const MAX_CANDIDATE_LENGTH = 100_000;

function reject(where: string, key: string, expected: string, got: unknown): never {
  const shown = typeof got === 'string' ? JSON.stringify(got.slice(0, 60)) : JSON.stringify(got);
  throw new MessageValidationError(`${where}: "${key}" must be ${expected}, got ${shown}`);
}

function stringField(where: string, obj: Record<string, unknown>, key: string, max: number) {
  const value = obj[key];
  if (typeof value !== 'string' || value.length > max) {
    reject(where, key, `a string of at most ${max} characters`, value);
  }
  return value;
}

function comparisonId(where: string, obj: Record<string, unknown>): string {
  const value = obj.comparisonId;
  if (typeof value !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(value)) {
    reject(where, 'comparisonId', 'an id of 1 to 64 letters, digits, "_" or "-"', value);
  }
  return value;
}

function position(where: string, key: string, value: unknown): number {
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value < 0 ||
    value >= MAX_CANDIDATES
  ) {
    reject(where, key, `an integer position in [0, ${MAX_CANDIDATES - 1}]`, value);
  }
  return value;
}

/** Validates a judgment's shape; range against the comparison is checked by the extension. */
export function parseViewJudgment(value: unknown): ViewJudgment {
  const where = 'judgment';
  if (!isRecord(value)) reject(where, 'judgment', 'an object', value);
  switch (value.kind) {
    case 'pick':
      return { kind: 'pick', best: position(where, 'best', value.best) };
    case 'none-good':
    case 'skipped':
      return { kind: value.kind };
    case 'ranking': {
      const groups = value.groups;
      if (!Array.isArray(groups) || groups.length === 0 || groups.length > MAX_CANDIDATES) {
        reject(where, 'groups', `1 to ${MAX_CANDIDATES} groups`, groups);
      }
      const seen = new Set<number>();
      const parsed = groups.map((group, g) => {
        if (!Array.isArray(group) || group.length === 0) {
          reject(where, `groups[${g}]`, 'a non-empty array of positions', group);
        }
        return group.map((p, i) => {
          const pos = position(where, `groups[${g}][${i}]`, p);
          if (seen.has(pos))
            reject(where, `groups[${g}][${i}]`, 'a position not ranked twice', pos);
          seen.add(pos);
          return pos;
        });
      });
      if (seen.size < 2) reject(where, 'groups', 'at least 2 ranked positions', groups);
      return { kind: 'ranking', groups: parsed };
    }
    default:
      reject(where, 'kind', '"pick", "ranking", "none-good" or "skipped"', value.kind);
  }
}

/** Validates a message from the comparison webview; throws naming the bad field. */
export function parseCompareToHost(value: unknown): CompareToHost {
  if (!isRecord(value)) {
    throw new MessageValidationError(`compare message must be an object, got ${typeof value}`);
  }
  const where = `compare "${String(value.type)}" message`;
  switch (value.type) {
    case 'ready':
      return { type: 'ready' };
    case 'rendered':
      return { type: 'rendered', comparisonId: comparisonId(where, value) };
    case 'judgment':
      return {
        type: 'judgment',
        comparisonId: comparisonId(where, value),
        judgment: parseViewJudgment(value.judgment),
      };
    default:
      throw new MessageValidationError(
        `compare message has unknown type ${JSON.stringify(value.type)}; ` +
          'allowed: "ready", "rendered", "judgment"',
      );
  }
}

/** Validates a message from the extension host to the comparison webview. */
export function parseHostToCompare(value: unknown): HostToCompare {
  if (!isRecord(value)) {
    throw new MessageValidationError(`host message must be an object, got ${typeof value}`);
  }
  const where = `host "${String(value.type)}" message`;
  switch (value.type) {
    case 'comparison': {
      const c = value.comparison;
      if (!isRecord(c)) reject(where, 'comparison', 'an object', c);
      const id = c.id;
      if (typeof id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
        reject(where, 'comparison.id', 'an id of 1 to 64 letters, digits, "_" or "-"', id);
      }
      const candidates = c.candidates;
      if (
        !Array.isArray(candidates) ||
        candidates.length < 1 ||
        candidates.length > MAX_CANDIDATES
      ) {
        reject(
          where,
          'comparison.candidates',
          `an array of 1 to ${MAX_CANDIDATES} texts`,
          candidates,
        );
      }
      candidates.forEach((text, i) => {
        if (typeof text !== 'string' || text.length > MAX_CANDIDATE_LENGTH) {
          reject(where, `comparison.candidates[${i}]`, 'a string', text);
        }
      });
      const comparison: ComparisonView = {
        id,
        languageId: stringField(where, c, 'languageId', 100),
        contextBefore: stringField(where, c, 'contextBefore', MAX_CANDIDATE_LENGTH),
        candidates: candidates as string[],
      };
      if (c.mode !== undefined) {
        if (c.mode !== 'blind-ab') reject(where, 'comparison.mode', '"blind-ab" or absent', c.mode);
        if (candidates.length !== 2) {
          reject(where, 'comparison.candidates', '2 texts in a blind A/B comparison', candidates);
        }
        comparison.mode = 'blind-ab';
      }
      return { type: 'comparison', comparison };
    }
    case 'blindScore':
      return { type: 'blindScore', score: parseBlindScore(where, value.score) };
    case 'blindScoreError':
      return { type: 'blindScoreError', text: stringField(where, value, 'text', 2000) };
    case 'status': {
      if (typeof value.busy !== 'boolean') reject(where, 'busy', 'a boolean', value.busy);
      return { type: 'status', text: stringField(where, value, 'text', 2000), busy: value.busy };
    }
    case 'recorded':
      return {
        type: 'recorded',
        comparisonId: comparisonId(where, value),
        text: stringField(where, value, 'text', 2000),
      };
    default:
      throw new MessageValidationError(
        `host message has unknown type ${JSON.stringify(value.type)}; ` +
          'allowed: "comparison", "status", "recorded", "blindScore", "blindScoreError"',
      );
  }
}

const OUTCOMES = ['tuned', 'base', 'tie', 'no-preference'] as const;

function parseBlindScore(where: string, value: unknown): BlindScoreView {
  if (!isRecord(value)) reject(where, 'score', 'an object', value);
  const count = (key: 'tunedWins' | 'baseWins' | 'ties' | 'skipped') => {
    const n = value[key];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
      reject(where, `score.${key}`, 'a non-negative integer', n);
    }
    return n;
  };
  const share = (key: 'rate' | 'low' | 'high') => {
    const x = value[key];
    if (x === null) return null;
    if (typeof x !== 'number' || !(x >= 0 && x <= 1)) {
      reject(where, `score.${key}`, 'a number in [0, 1] or null', x);
    }
    return x;
  };
  const score: BlindScoreView = {
    adapter: stringField(where, value, 'adapter', 500),
    tunedWins: count('tunedWins'),
    baseWins: count('baseWins'),
    ties: count('ties'),
    skipped: count('skipped'),
    rate: share('rate'),
    low: share('low'),
    high: share('high'),
  };
  const counted = score.tunedWins + score.baseWins + score.ties;
  if ((counted === 0) !== (score.rate === null)) {
    reject(
      where,
      'score.rate',
      `null exactly when no judgment is counted (${counted})`,
      score.rate,
    );
  }
  if (value.lastOutcome !== undefined) {
    const outcome = value.lastOutcome;
    if (!OUTCOMES.includes(outcome as (typeof OUTCOMES)[number])) {
      reject(where, 'score.lastOutcome', `one of ${OUTCOMES.join(', ')}`, outcome);
    }
    score.lastOutcome = outcome as BlindScoreView['lastOutcome'];
  }
  return score;
}
