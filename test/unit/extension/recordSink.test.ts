import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildComparison, judgmentRecord, toJudgment } from '../../../src/extension/comparison';
import { RecordSink } from '../../../src/extension/recordSink';

describe('judgment records through the real preference store', () => {
  it('are valid, stored once per comparison id, counted, and keep the prompt byte for byte', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sink-'));
    try {
      const storePath = path.join(dir, 'nested', 'judgments.jsonl');
      const snapshot = {
        uri: 'file:///ws/a.c',
        version: 7,
        languageId: 'c',
        offset: 11,
        prefix: '\tif (a) {\r\n',
        suffix: '\t}\r\n',
        eol: '\r\n' as const,
        workspace: 'ws',
        file: 'a.c',
        requestedAt: 1_000,
        storePath,
      };
      const pending = buildComparison(
        'cmp-1',
        snapshot,
        ['\t\treturn 1;\r\n', 'printf("a\\n");', '</script><img src=x onerror=alert(1)>'].map(
          (text, i) => ({ text, tokenIds: [i], logprob: -1.5, stopReason: 'max-lines' as const }),
        ),
        {
          model: 'tiny',
          adapter: null,
          sampling: { temperature: 0.8, topK: 40, topP: 0.95, seed: 3, maxNewTokens: 48 },
        },
        12.6,
        4,
        Math.random,
      );
      pending.shownAt = 1_500;
      const judgment = toJudgment(pending, { kind: 'pick', best: 2 });
      const record = judgmentRecord(pending, judgment, { annotator: 'me', decidedAt: 2_250 });
      const sink = new RecordSink();
      let appended = 0;
      sink.onDidAppend(() => appended++);
      assert.deepStrictEqual(await sink.append(record, storePath), { id: 'cmp-1', written: true });
      assert.deepStrictEqual(await sink.append(record, storePath), { id: 'cmp-1', written: false });
      assert.strictEqual(await sink.judgmentCount(storePath), 1);
      assert.strictEqual(appended, 2);
      const lines = fs.readFileSync(storePath, 'utf8').split('\n').filter(Boolean);
      assert.strictEqual(lines.length, 1);
      const stored = JSON.parse(lines[0]);
      assert.strictEqual(stored.prompt.prefix, '\tif (a) {\r\n');
      assert.strictEqual(stored.decisionMs, 750);
      assert.strictEqual(stored.generationMs, 13);
      assert.deepStrictEqual(
        stored.candidates.map((c: { text: string }) => c.text).sort(),
        pending.candidates.map((c) => c.text).sort(),
      );
      const best = stored.candidates.find((c: { id: string }) => c.id === stored.judgment.best);
      assert.strictEqual(best.position, 2);
      assert.strictEqual(best.text, pending.candidates[2].text);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('counts zero for a store that does not exist yet', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sink-'));
    try {
      assert.strictEqual(await new RecordSink().judgmentCount(path.join(dir, 'j.jsonl')), 0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
