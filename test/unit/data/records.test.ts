import * as assert from 'assert';
import {
  RecordValidationError,
  parseRecordLine,
  validateRecord,
} from '../../../src/data/recordSchema';
import type { Judgment } from '../../../src/protocol/records';
import { sampleJudgment } from './helpers/records';

function rejects(value: unknown, key: string, reason: RegExp): void {
  assert.throws(
    () => validateRecord(value, 7, 'prefs.jsonl'),
    (e: Error) =>
      e instanceof RecordValidationError &&
      e.key === key &&
      e.line === 7 &&
      reason.test(e.message) &&
      e.message.startsWith(`prefs.jsonl:7: key "${key}"`),
  );
}

describe('record schema', () => {
  it('accepts every judgment kind', () => {
    for (const judgment of [
      { kind: 'pick', best: 'c1' },
      { kind: 'ranking', groups: [['c1'], ['c0', 'c2']] },
      { kind: 'none-good' },
      { kind: 'skipped' },
    ] as Judgment[]) {
      assert.doesNotThrow(() => validateRecord(sampleJudgment('a', { judgment }, 3)));
    }
  });

  it('names the bad key and line', () => {
    const r = () => JSON.parse(JSON.stringify(sampleJudgment('a', {}, 3)));
    rejects({ ...r(), type: 'vote' }, 'type', /allowed: "judgment", "implicit"/);
    rejects({ ...r(), v: 99 }, 'v', /newer than this reader/);
    rejects({ ...r(), id: '' }, 'id', /non-empty/);
    rejects({ ...r(), timestamp: 'yesterday' }, 'timestamp', /ISO-8601/);
    rejects({ ...r(), prompt: { prefix: 'x' } }, 'prompt.suffix', /must be a string, got missing/);
    const badPosition = r();
    badPosition.candidates[2].position = 1.5;
    rejects(badPosition, 'candidates[2].position', /non-negative integer/);
    const dupId = r();
    dupId.candidates[1].id = 'c0';
    rejects(dupId, 'candidates[1].id', /duplicate id c0/);
    rejects(
      { ...r(), judgment: { kind: 'ranking', groups: [['c0'], ['c0']] } },
      'judgment.groups[1][0]',
      /ranked twice/,
    );
    rejects(
      { ...r(), judgment: { kind: 'best' } },
      'judgment.kind',
      /allowed: "pick", "ranking", "none-good", "skipped"/,
    );
    rejects({ ...r(), decisionMs: -1 }, 'decisionMs', />= 0/);
  });

  it('parseRecordLine reports JSON syntax errors with the line', () => {
    assert.throws(
      () => parseRecordLine('{"type":', 12, 'f.jsonl'),
      /^RecordValidationError|f\.jsonl:12: key "\(line\)": not valid JSON/,
    );
  });
});
