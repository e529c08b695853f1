import { RECORD_SCHEMA_VERSION, type JudgmentRecord } from '../../../../src/protocol/records';

/** A valid judgment record with `count` candidates "c0".."c{n-1}" and a pick of c0. */
export function sampleJudgment(
  id: string,
  overrides: Partial<JudgmentRecord> = {},
  count = 2,
): JudgmentRecord {
  return {
    type: 'judgment',
    v: RECORD_SCHEMA_VERSION,
    id,
    timestamp: '2026-12-04T12:00:00.000Z',
    annotator: 'alice',
    workspace: 'app',
    file: 'src/add.py',
    language: 'python',
    origin: 'vscode',
    prompt: { prefix: 'def add(a, b):\n', suffix: '' },
    redactions: [],
    candidates: Array.from({ length: count }, (_, i) => ({
      id: `c${i}`,
      text: `    return a ${'+-*/%'[i % 5]} b  # ${i}\n`,
      model: 'default',
      adapter: null,
      sampling: { temperature: 0.8, topK: 0, topP: 0.95, seed: i, maxNewTokens: 64 },
      logprob: -3.5 - i,
      position: i,
    })),
    judgment: { kind: 'pick', best: 'c0' },
    decisionMs: 1200,
    generationMs: 180,
    ...overrides,
  };
}

/**
 * A blind A/B judgment of `adapter` on `prefix`: c0 is the base model's candidate, c1 the tuned
 * one, and the tuned side was picked.
 */
export function blindJudgment(
  id: string,
  prefix: string,
  adapter: { name: string; path: string },
): JudgmentRecord {
  const record = sampleJudgment(id, { judgment: { kind: 'pick', best: 'c1' } });
  record.prompt = { prefix, suffix: '' };
  record.candidates[1].adapter = adapter.name;
  record.evaluation = {
    kind: 'blind-ab',
    baseCandidate: 'c0',
    tunedCandidate: 'c1',
    adapter: { ...adapter },
  };
  return record;
}
