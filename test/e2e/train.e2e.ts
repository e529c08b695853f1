/**
 * "Train on my judgments" in a real VS Code with the real model host and the tiny fixture
 * checkpoint: the reward model and then DPO (`codeRlhf.trainingAlgorithm`) train on judgments
 * already in the workspace store, the dashboard draws their metrics, the promotion gate
 * decides, and "Select adapter" switches completions to the run's adapter.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { appendOracleJudgments } from '../support/oracleJudgments';
import { REPO_ROOT } from './support/codeServer';
import {
  channelLog,
  e2e,
  openTestWorkbench,
  waitForModelLoad,
  writeWorkspace,
} from './support/hooks';
import { findFrameWith, openFile, runCommand, screenshot, waitFor } from './support/workbench';

const MODEL = path.join(REPO_ROOT, 'test', 'fixtures', 'model', 'tiny-llama');
const ENDED = /training run (run-\S+) ended (\S+): (.*)$/;

describe('train on my judgments in a real VS Code', () => {
  let folder: string | undefined;
  after(() => folder && fs.rmSync(folder, { recursive: true, force: true }));

  it('trains the reward model then DPO in the model host and charts it live', async function () {
    this.timeout(300_000);
    folder = fs.mkdtempSync(path.join(os.tmpdir(), 'code-rlhf-train-'));
    writeWorkspace(folder, {
      'codeRlhf.modelPath': MODEL,
      'codeRlhf.storeScope': 'workspace',
      'codeRlhf.inlineSuggestions': false,
      'codeRlhf.trainingAlgorithm': 'dpo',
    });
    await appendOracleJudgments(
      path.join(folder, '.code-rlhf', 'judgments.jsonl'),
      32,
      'tiny-llama',
    );

    const { page, blockedRequests } = await openTestWorkbench(e2e().server.url(folder));
    await openFile(page, 'src/math.ts');
    await waitForModelLoad();
    await runCommand(page, 'Code RLHF: Train on my judgments');

    const frame = await findFrameWith(page, '#charts', 60_000);
    // The reward model's validation accuracy is drawn while the run goes on.
    await waitFor(
      async () =>
        (await frame.locator('figure[data-chart="accuracy"] svg .series').count()) > 0
          ? true
          : undefined,
      () => `no accuracy chart; log:\n${channelLog('Code RLHF').slice(-20).join('\n')}`,
      120_000,
    );
    await screenshot(page, 'train-dashboard-live');
    const ended = await waitFor(
      () => {
        const line = channelLog('Code RLHF').find((l) => ENDED.test(l));
        return line ? ENDED.exec(line)! : undefined;
      },
      () => `the run never ended; log:\n${channelLog('Code RLHF').slice(-30).join('\n')}`,
      180_000,
    );
    const [, runId, status, text] = ended;
    assert.ok(['completed', 'early-stopped'].includes(status), `${status}: ${text}`);
    assert.match(text, /^reward model \S+ \(validation accuracy [\d.]+%\); DPO \S+/);
    assert.match(text, /adapter (not )?promoted: /);

    // The dashboard shows both stages' metrics and configs, and how the run ended.
    await waitFor(
      async () =>
        (await frame.locator('#run-status').textContent())?.startsWith(status) ? true : undefined,
      () => 'the dashboard never showed the end of the run',
    );
    assert.ok((await frame.locator('figure[data-chart="loss"] svg .series').count()) >= 2);
    const configRows = await frame.locator('#run-config tr').allTextContents();
    assert.ok(configRows.some((r) => r.startsWith('dpo') && r.includes('dataFile')));
    // The existing state part of the dashboard still works.
    assert.strictEqual(await frame.locator('#model').textContent(), 'tiny-llama');
    const runDir = channelLog('Code RLHF')
      .map((l) => new RegExp(`training run ${runId}: .* in (.*)$`).exec(l)?.[1])
      .find(Boolean);
    assert.ok(runDir && fs.existsSync(path.join(runDir, 'dpo')), `no run folder ${runDir}`);
    await screenshot(page, 'train-dashboard-done');

    // The run's adapter is in the history whether or not the gate promoted it; choosing it in
    // "Select adapter" makes it the completion policy, shown in the status bar.
    assert.match(text, /; promotion gate \S+ \(\d+ held-out prompts/);
    await page.locator('.monaco-workbench').click({ position: { x: 5, y: 300 } });
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input');
    await input.fill('>Code RLHF: Select adapter');
    await page
      .locator('.quick-input-list .monaco-list-row')
      .filter({ hasText: 'Code RLHF: Select adapter' })
      .first()
      .waitFor({ timeout: 30_000 });
    await page.keyboard.press('Enter');
    const name = `${runId} dpo`;
    const row = page.locator('.quick-input-list .monaco-list-row').filter({ hasText: name });
    await row.first().waitFor({ timeout: 30_000 });
    assert.match((await row.first().textContent()) ?? '', /DPO · .*(not )?promoted: /);
    await screenshot(page, 'train-select-adapter');
    await row.first().click();
    await waitFor(
      () =>
        channelLog('Code RLHF').some((l) => l.includes(`completions now use adapter ${name}`))
          ? true
          : undefined,
      () => `the adapter was not selected; log:\n${channelLog('Code RLHF').slice(-10).join('\n')}`,
    );
    await waitFor(
      async () =>
        ((await page.locator('.statusbar').textContent()) ?? '').includes(name) ? true : undefined,
      async () => `status bar: ${await page.locator('.statusbar').textContent()}`,
    );
    assert.deepStrictEqual(blockedRequests, [], 'the workbench tried to reach another host');
  });
});
