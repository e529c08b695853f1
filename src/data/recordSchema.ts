import {
  EVALUATION_SCHEMA_VERSION,
  RECORD_SCHEMA_VERSION,
  type CandidateShown,
  type Evaluation,
  type ChatMessage,
  type ImplicitSignalRecord,
  type Judgment,
  type JudgmentRecord,
  type PreferenceRecord,
  type PromptSnapshot,
  type RedactionNote,
  type SamplingSettings,
} from '../protocol/records';

/** A record that does not match the schema. `key` is the dotted path of the bad field. */
export class RecordValidationError extends Error {
  constructor(
    readonly key: string,
    readonly reason: string,
    readonly line?: number,
    readonly source?: string,
  ) {
    super(`${where(source, line)}key "${key}": ${reason}`);
  }
}

function where(source: string | undefined, line: number | undefined): string {
  if (source !== undefined && line !== undefined) return `${source}:${line}: `;
  if (line !== undefined) return `line ${line}: `;
  return source !== undefined ? `${source}: ` : '';
}

type Obj = Record<string, unknown>;

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') {
    return `string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  }
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

class Checker {
  constructor(
    private readonly line?: number,
    private readonly source?: string,
  ) {}

  fail(key: string, reason: string): never {
    throw new RecordValidationError(key, reason, this.line, this.source);
  }

  obj(value: unknown, key: string): Obj {
    if (!isObj(value)) this.fail(key, `must be an object, got ${describe(value)}`);
    return value;
  }

  str(value: unknown, key: string, nonEmpty = false): string {
    if (typeof value !== 'string') this.fail(key, `must be a string, got ${describe(value)}`);
    if (nonEmpty && value.length === 0) this.fail(key, 'must be a non-empty string');
    return value;
  }

  strOrNull(value: unknown, key: string): string | null {
    return value === null ? null : this.str(value, key);
  }

  numOrNull(value: unknown, key: string, min = -Infinity): number | null {
    if (value === null) return null;
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      this.fail(key, `must be a finite number or null, got ${describe(value)}`);
    }
    if (value < min) this.fail(key, `must be >= ${min}, got ${value}`);
    return value;
  }

  arr(value: unknown, key: string): unknown[] {
    if (!Array.isArray(value)) this.fail(key, `must be an array, got ${describe(value)}`);
    return value;
  }
}

function checkMessages(c: Checker, value: unknown, key: string): ChatMessage[] {
  return c.arr(value, key).map((m, i) => {
    const o = c.obj(m, `${key}[${i}]`);
    return {
      role: c.str(o.role, `${key}[${i}].role`),
      content: c.str(o.content, `${key}[${i}].content`),
    };
  });
}

function checkPrompt(c: Checker, value: unknown): PromptSnapshot {
  const o = c.obj(value, 'prompt');
  c.str(o.prefix, 'prompt.prefix');
  c.str(o.suffix, 'prompt.suffix');
  if (o.messages !== undefined) checkMessages(c, o.messages, 'prompt.messages');
  return o as unknown as PromptSnapshot;
}

function checkSampling(c: Checker, value: unknown, key: string): SamplingSettings | null {
  if (value === null) return null;
  const o = c.obj(value, key);
  for (const field of ['temperature', 'topK', 'topP', 'seed', 'maxNewTokens']) {
    c.numOrNull(o[field], `${key}.${field}`);
  }
  return o as unknown as SamplingSettings;
}

function checkCandidate(c: Checker, value: unknown, key: string): CandidateShown {
  const o = c.obj(value, key);
  c.str(o.id, `${key}.id`, true);
  c.str(o.text, `${key}.text`);
  if (o.messages !== undefined) checkMessages(c, o.messages, `${key}.messages`);
  c.str(o.model, `${key}.model`);
  c.strOrNull(o.adapter, `${key}.adapter`);
  checkSampling(c, o.sampling, `${key}.sampling`);
  c.numOrNull(o.logprob, `${key}.logprob`);
  const position = c.numOrNull(o.position, `${key}.position`, 0);
  if (position !== null && !Number.isInteger(position)) {
    c.fail(`${key}.position`, `must be a non-negative integer or null, got ${position}`);
  }
  return o as unknown as CandidateShown;
}

function checkJudgment(c: Checker, value: unknown, ids: Set<string>): Judgment {
  const o = c.obj(value, 'judgment');
  switch (o.kind) {
    case 'pick': {
      const best = c.str(o.best, 'judgment.best');
      if (!ids.has(best)) {
        c.fail(
          'judgment.best',
          `names unknown candidate ${JSON.stringify(best)}; ids: ${[...ids].join(', ')}`,
        );
      }
      return o as unknown as Judgment;
    }
    case 'ranking': {
      const groups = c.arr(o.groups, 'judgment.groups');
      if (groups.length === 0) c.fail('judgment.groups', 'must hold at least one group');
      const seen = new Set<string>();
      groups.forEach((g, gi) => {
        const group = c.arr(g, `judgment.groups[${gi}]`);
        if (group.length === 0) c.fail(`judgment.groups[${gi}]`, 'must not be empty');
        group.forEach((id, k) => {
          const key = `judgment.groups[${gi}][${k}]`;
          c.str(id, key);
          if (!ids.has(id as string)) c.fail(key, `names unknown candidate ${JSON.stringify(id)}`);
          if (seen.has(id as string)) c.fail(key, `candidate ${JSON.stringify(id)} ranked twice`);
          seen.add(id as string);
        });
      });
      return o as unknown as Judgment;
    }
    case 'none-good':
    case 'skipped':
      return o as unknown as Judgment;
    default:
      return c.fail(
        'judgment.kind',
        `unknown kind ${describe(o.kind)}; allowed: "pick", "ranking", "none-good", "skipped"`,
      );
  }
}

/**
 * A blind A/B evaluation (v2): it names two distinct shown candidates, the record shows exactly
 * those two, and each candidate's own `adapter` field agrees with the side it is on, so the
 * record cannot say one thing in `evaluation` and another in `candidates`.
 */
function checkEvaluation(
  c: Checker,
  value: unknown,
  version: number,
  candidates: readonly CandidateShown[],
): Evaluation {
  if (version < EVALUATION_SCHEMA_VERSION) {
    c.fail(
      'evaluation',
      `needs schema version ${EVALUATION_SCHEMA_VERSION} or later; the record has v ${version}`,
    );
  }
  const o = c.obj(value, 'evaluation');
  if (o.kind !== 'blind-ab') {
    c.fail('evaluation.kind', `unknown kind ${describe(o.kind)}; allowed: "blind-ab"`);
  }
  const adapter = c.obj(o.adapter, 'evaluation.adapter');
  const name = c.str(adapter.name, 'evaluation.adapter.name', true);
  c.str(adapter.path, 'evaluation.adapter.path', true);
  const byId = new Map(candidates.map((cand) => [cand.id, cand]));
  const ids = candidates.map((cand) => cand.id).join(', ');
  const side = (key: 'baseCandidate' | 'tunedCandidate'): CandidateShown => {
    const id = c.str(o[key], `evaluation.${key}`, true);
    const candidate = byId.get(id);
    if (!candidate) {
      c.fail(`evaluation.${key}`, `names unknown candidate ${JSON.stringify(id)}; ids: ${ids}`);
    }
    return candidate;
  };
  const base = side('baseCandidate');
  const tuned = side('tunedCandidate');
  if (base.id === tuned.id) {
    c.fail('evaluation.tunedCandidate', `must differ from baseCandidate (both ${base.id})`);
  }
  if (candidates.length !== 2) {
    c.fail(
      'candidates',
      `a blind A/B record shows exactly 2 candidates (base and tuned), got ${candidates.length}`,
    );
  }
  if (base.adapter !== null) {
    c.fail(
      `candidates[${candidates.indexOf(base)}].adapter`,
      `the base candidate ${base.id} must have adapter null, got ${describe(base.adapter)}`,
    );
  }
  if (tuned.adapter !== name) {
    c.fail(
      `candidates[${candidates.indexOf(tuned)}].adapter`,
      `the tuned candidate ${tuned.id} must name the adapter ${JSON.stringify(name)}, got ` +
        describe(tuned.adapter),
    );
  }
  return o as unknown as Evaluation;
}

function checkBase(c: Checker, o: Obj): void {
  if (typeof o.v !== 'number' || !Number.isInteger(o.v) || o.v < 1) {
    c.fail('v', `must be a positive integer schema version, got ${describe(o.v)}`);
  }
  if (o.v > RECORD_SCHEMA_VERSION) {
    c.fail('v', `version ${o.v} is newer than this reader (max ${RECORD_SCHEMA_VERSION})`);
  }
  c.str(o.id, 'id', true);
  const timestamp = c.str(o.timestamp, 'timestamp');
  if (Number.isNaN(Date.parse(timestamp)))
    c.fail('timestamp', `not an ISO-8601 time: ${timestamp}`);
  c.str(o.annotator, 'annotator');
  c.strOrNull(o.workspace, 'workspace');
  c.strOrNull(o.file, 'file');
  c.str(o.language, 'language');
  c.str(o.origin, 'origin');
  checkPrompt(c, o.prompt);
  c.arr(o.redactions, 'redactions').forEach((r, i) => {
    const n = c.obj(r, `redactions[${i}]`) as Partial<RedactionNote>;
    c.str(n.field, `redactions[${i}].field`);
    c.str(n.kind, `redactions[${i}].kind`);
    c.numOrNull(n.count, `redactions[${i}].count`, 1);
  });
  if (o.meta !== undefined) c.obj(o.meta, 'meta');
}

/**
 * Checks that `value` is a valid preference record and returns it typed. Throws
 * {@link RecordValidationError} naming the first bad key (and `line`/`source` when given).
 */
export function validateRecord(value: unknown, line?: number, source?: string): PreferenceRecord {
  const c = new Checker(line, source);
  const o = c.obj(value, '(record)');
  if (o.type !== 'judgment' && o.type !== 'implicit') {
    c.fail('type', `unknown record type ${describe(o.type)}; allowed: "judgment", "implicit"`);
  }
  checkBase(c, o);
  if (o.type === 'judgment') {
    const candidates = c.arr(o.candidates, 'candidates');
    const ids = new Set<string>();
    candidates.forEach((cand, i) => {
      const candidate = checkCandidate(c, cand, `candidates[${i}]`);
      if (ids.has(candidate.id)) c.fail(`candidates[${i}].id`, `duplicate id ${candidate.id}`);
      ids.add(candidate.id);
    });
    checkJudgment(c, o.judgment, ids);
    c.numOrNull(o.decisionMs, 'decisionMs', 0);
    c.numOrNull(o.generationMs, 'generationMs', 0);
    if (o.evaluation !== undefined) {
      checkEvaluation(c, o.evaluation, o.v as number, candidates as CandidateShown[]);
    }
    return o as unknown as JudgmentRecord;
  }
  if (o.evaluation !== undefined) {
    c.fail('evaluation', 'is allowed only on judgment records, not on implicit signals');
  }
  checkCandidate(c, o.candidate, 'candidate');
  if (o.outcome !== 'accepted' && o.outcome !== 'ignored' && o.outcome !== 'rejected') {
    c.fail(
      'outcome',
      `unknown outcome ${describe(o.outcome)}; allowed: "accepted", "ignored", "rejected"`,
    );
  }
  c.numOrNull(o.visibleMs, 'visibleMs', 0);
  c.numOrNull(o.generationMs, 'generationMs', 0);
  return o as unknown as ImplicitSignalRecord;
}

/** Parses one JSONL line into a validated record; errors name the line (and source). */
export function parseRecordLine(text: string, line: number, source?: string): PreferenceRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new RecordValidationError(
      '(line)',
      `not valid JSON: ${(error as Error).message}`,
      line,
      source,
    );
  }
  return validateRecord(value, line, source);
}
