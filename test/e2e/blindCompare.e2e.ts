/**
 * "Blind A/B test (base vs tuned)" in a real VS Code with the real model host: without an
 * active adapter it refuses; with the PEFT adapter fixture of the tiny Llama selected through
 * "Select adapter" it shows one base and one tuned completion unlabeled, a number key records
 * a blind A/B judgment, and the panel shows the score computed from the stored records.
 *
 * The model is a copy of the tiny fixture in a folder of this test's own: an adapter is active
 * only for the model folder it was trained on, so the adapter chosen here never applies to the
 * other scenarios (which use the fixture folder itself) on the shared server.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { openStore } from '../../src/data/store';
import { winRate } from '../../src/data/winRate';
import { appendAdapterEntry } from '../../src/extension/adapterHistory';
import type { JudgmentRecord } from '../../src/protocol/records';
import { REPO_ROOT } from './support/codeServer';
import {
  EXTENSION_ID,
  channelLog,
  e2e,
  openTestWorkbench,
  waitForModelLoad,
  writeWorkspace,
} from './support/hooks';
import { findFrameWith, openFile, runCommand, screenshot, waitFor } from './support/workbench';

const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'model');
const FILE = 'src/strings.js';
const RUN_ID = 'run-e2e-blind';
const ADAPTER_NAME = `${RUN_ID} dpo`;
const BLIND = 'Code RLHF: Blind A/B test (base vs tuned)';

/** A stored blind A/B judgment from an earlier session: c0 base, c1 tuned. */
function earlierJudgment(id: string, adapterPath: string, best: string | null): JudgmentRecord {
  const candidate = (cid: string, adapter: string | null, position: number) => ({
    id: cid,
    text: `return ${cid};`,
    model: 'tiny-llama',
    adapter,
    sampling: null,
    logprob: null,
    position,
  });
  return {
    type: 'judgment',
    v: 2,
    id,
    timestamp: '2026-12-04T10:00:00.000Z',
    annotator: 'e2e',
    workspace: null,
    file: null,
    language: 'javascript',
    origin: 'vscode',
    prompt: { prefix: 'function f() {\n  ', suffix: '' },
    redactions: [],
    candidates: [candidate('c0', null, 0), candidate('c1', ADAPTER_NAME, 1)],
    judgment: best ? { kind: 'pick', best } : { kind: 'ranking', groups: [['c0', 'c1']] },
    decisionMs: null,
    generationMs: null,
    evaluation: {
      kind: 'blind-ab',
      baseCandidate: 'c0',
      tunedCandidate: 'c1',
      adapter: { name: ADAPTER_NAME, path: adapterPath },
    },
  };
}

describe('blind A/B test in a real VS Code', () => {
  let root: string | undefined;
  after(() => root && fs.rmSync(root, { recursive: true, force: true }));

  it('refuses without an adapter, then records a blind judgment and shows the score', async function () {
    this.timeout(120_000);
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'code-rlhf-blind-'));
    const model = path.join(root, 'tiny-llama');
    const adapter = path.join(root, 'adapter');
    const folder = path.join(root, 'workspace');
    fs.cpSync(path.join(FIXTURES, 'tiny-llama'), model, { recursive: true });
    fs.cpSync(path.join(FIXTURES, 'tiny-llama-lora'), adapter, { recursive: true });
    writeWorkspace(folder, {
      'codeRlhf.modelPath': model,
      'codeRlhf.storeScope': 'workspace',
      'codeRlhf.inlineSuggestions': false,
      'codeRlhf.insertChosen': false,
    });
    // The adapter as "Train on my judgments" would have left it in the adapter history.
    const globalStorage = path.join(
      e2e().server.userDataDir,
      'User',
      'globalStorage',
      EXTENSION_ID,
    );
    await appendAdapterEntry(path.join(globalStorage, 'training', 'adapters.jsonl'), {
      runId: RUN_ID,
      algorithm: 'dpo',
      time: '2026-12-04T10:00:00.000Z',
      path: adapter,
      modelDir: model,
      promoted: false,
      reason: 'e2e fixture',
    });
    // Two judgments of this adapter from an earlier session: one base win and one tie.
    const storePath = path.join(folder, '.code-rlhf', 'judgments.jsonl');
    const store = await openStore(storePath);
    await store.appendMany([
      earlierJudgment('blind-earlier-1', adapter, 'c0'),
      earlierJudgment('blind-earlier-2', adapter, null),
    ]);

    const { page, blockedRequests } = await openTestWorkbench(e2e().server.url(folder));
    await openFile(page, FILE);
    await waitForModelLoad();

    // No adapter active: the command says so instead of comparing the base with itself.
    await runCommand(page, BLIND);
    await page
      .locator('.notifications-toasts')
      .filter({ hasText: 'no adapter is active' })
      .waitFor({ timeout: 15_000 });

    await runCommand(page, 'Code RLHF: Select adapter');
    const input = page.locator('.quick-input-widget input');
    await input.fill(RUN_ID);
    await page
      .locator('.quick-input-list .monaco-list-row')
      .filter({ hasText: ADAPTER_NAME })
      .first()
      .waitFor();
    await page.keyboard.press('Enter');
    await waitFor(
      () =>
        channelLog('Code RLHF').some((l) =>
          l.includes(`completions now use adapter ${ADAPTER_NAME}`),
        )
          ? true
          : undefined,
      () => `the adapter was not selected:\n${channelLog('Code RLHF').slice(-20).join('\n')}`,
    );

    await page.locator('.editor-instance .monaco-editor .view-lines').first().click();
    await page.keyboard.press('Control+End');
    await runCommand(page, BLIND);
    const frame = await findFrameWith(page, '.candidate', 60_000);
    await waitFor(
      async () =>
        (await frame.locator('.candidate').count()) === 2 &&
        /^Blind A\/B/.test((await frame.locator('.status').textContent()) ?? '')
          ? true
          : undefined,
      async () => `panel: ${await frame.locator('#app').textContent()}`,
      60_000,
    );
    const shown = await frame.locator('.candidate').evaluateAll((cards) =>
      cards.map((card) =>
        Array.from(card.querySelectorAll('span.tok:not(.context)'))
          .map((span) => span.textContent ?? '')
          .join(''),
      ),
    );
    // Unlabeled: nothing on the cards says which policy wrote them.
    const cards = (await frame.locator('.candidates').textContent()) ?? '';
    assert.ok(!cards.includes(ADAPTER_NAME) && !/\bbase\b|\btuned\b/.test(cards), cards);
    await screenshot(page, 'blind-ab-candidates');

    await frame.locator('.status').click();
    await page.keyboard.press('1');
    const record = await waitFor(
      () => {
        const lines = fs.readFileSync(storePath, 'utf8').split('\n').filter(Boolean);
        return lines.length === 3 ? (JSON.parse(lines[2]) as JudgmentRecord) : undefined;
      },
      () =>
        `no blind record in ${storePath}; log:\n${channelLog('Code RLHF').slice(-20).join('\n')}`,
    );
    assert.strictEqual(record.v, 2);
    assert.deepStrictEqual(record.evaluation, {
      kind: 'blind-ab',
      baseCandidate: 'c0',
      tunedCandidate: 'c1',
      adapter: { name: ADAPTER_NAME, path: adapter },
    });
    const byPosition = [...record.candidates].sort((a, b) => a.position! - b.position!);
    assert.deepStrictEqual(
      byPosition.map((c) => c.text),
      shown,
      'the record holds the candidates in the order shown',
    );
    assert.deepStrictEqual(record.candidates.map((c) => [c.id, c.adapter]).sort(), [
      ['c0', null],
      ['c1', ADAPTER_NAME],
    ]);
    assert.deepStrictEqual(record.judgment, { kind: 'pick', best: byPosition[0].id });
    const tunedWon = byPosition[0].id === 'c1';

    // The score counts the two earlier judgments from the store and this one.
    const expected = winRate(tunedWon ? 1 : 0, tunedWon ? 1 : 2, 1);
    const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
    const scoreText = await waitFor(
      async () => {
        const text = (await frame.locator('.blind-score').textContent()) ?? '';
        return text.includes('n = 3') ? text : undefined;
      },
      async () => `score: ${await frame.locator('.blind-score').textContent()}`,
    );
    const counts = await frame
      .locator('.blind-score-counts')
      .evaluate((el) => ({ ...(el as HTMLElement).dataset }));
    assert.deepStrictEqual(counts, {
      tuned: String(expected.wins),
      base: String(expected.losses),
      ties: '1',
    });
    assert.ok(
      scoreText.includes(
        `Tuned win rate ${pct(expected.rate)} (95% Wilson interval ${pct(expected.low)} to ` +
          `${pct(expected.high)}, n = 3)`,
      ),
      scoreText,
    );
    assert.match(scoreText, /count as half a win/);
    const status = (await frame.locator('.status').textContent()) ?? '';
    assert.match(
      status,
      new RegExp(`You preferred the ${tunedWon ? 'tuned adapter' : 'base model'}\\.`),
    );
    await screenshot(page, 'blind-ab-score');
    assert.deepStrictEqual(blockedRequests, []);
  });
});
