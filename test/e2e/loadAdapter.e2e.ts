/**
 * Loading an adapter trained elsewhere in a real VS Code with the real model host: "Select
 * adapter"'s "Load adapter from folder…" row and its folder picker, then a keybinding that
 * runs "Select adapter" with a PEFT folder as its argument (no dialog); the model host checks it
 * over the tiny Llama, the adapter history gets an "imported" entry, and the next comparison's
 * candidates are generated with it (the stored judgment names it).
 *
 * The model is a copy of the tiny fixture in a folder of this test's own, so the adapter made
 * active here never applies to the other scenarios on the shared server.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readAdapterHistory } from '../../src/extension/adapterHistory';
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
const ADAPTER_NAME = 'cluster-dpo-7 imported';
const KEY = 'ctrl+shift+alt+9';

describe('loading an adapter folder in a real VS Code', () => {
  let root: string | undefined;
  let keybindings: string | undefined;
  let keybindingsBefore: string | undefined;
  after(() => {
    if (keybindings) {
      if (keybindingsBefore === undefined) fs.rmSync(keybindings, { force: true });
      else fs.writeFileSync(keybindings, keybindingsBefore);
    }
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('loads a folder from the picker and from the command argument; completions use it', async function () {
    this.timeout(150_000);
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'code-rlhf-load-adapter-'));
    const model = path.join(root, 'tiny-llama');
    const adapter = path.join(root, 'cluster-dpo-7');
    const folder = path.join(root, 'workspace');
    fs.cpSync(path.join(FIXTURES, 'tiny-llama'), model, { recursive: true });
    fs.cpSync(path.join(FIXTURES, 'tiny-llama-lora'), adapter, { recursive: true });
    writeWorkspace(folder, {
      'codeRlhf.modelPath': model,
      'codeRlhf.storeScope': 'workspace',
      'codeRlhf.inlineSuggestions': false,
      'codeRlhf.insertChosen': false,
    });
    // A user keybinding that passes the folder, as a script or a team's setup would.
    keybindings = path.join(e2e().server.userDataDir, 'User', 'keybindings.json');
    keybindingsBefore = fs.existsSync(keybindings)
      ? fs.readFileSync(keybindings, 'utf8')
      : undefined;
    fs.writeFileSync(
      keybindings,
      JSON.stringify([{ key: KEY, command: 'codeRlhf.selectAdapter', args: adapter }], null, 2),
    );

    const { page } = await openTestWorkbench(e2e().server.url(folder));
    await openFile(page, FILE);
    await waitForModelLoad();

    // The list's last row opens the folder picker (VS Code's own dialog in code-server).
    const picked = path.join(root, 'team-rm-2');
    fs.cpSync(adapter, picked, { recursive: true });
    await runCommand(page, 'Code RLHF: Select adapter');
    const input = page.locator('.quick-input-widget input');
    await input.fill('Load adapter from folder');
    await page
      .locator('.quick-input-list .monaco-list-row')
      .filter({ hasText: 'Load adapter from folder' })
      .first()
      .waitFor();
    await page.keyboard.press('Enter');
    await page.locator('.quick-input-widget').filter({ hasText: 'PEFT adapter folder' }).waitFor();
    // The dialog fills in its start folder after it opens (and may complete it again), which
    // would overwrite what was typed: type until the path stays.
    const target = `${picked}/`;
    await waitFor(
      async () => {
        if ((await input.inputValue()) === target) return true;
        await input.fill(target);
        await page.waitForTimeout(300);
        return undefined;
      },
      async () => `the folder picker shows ${await input.inputValue()}, not ${target}`,
    );
    await page.waitForTimeout(500);
    await page.locator('.quick-input-widget .monaco-button', { hasText: 'Load adapter' }).click();
    await waitFor(
      () =>
        channelLog('Code RLHF').some((l) =>
          l.includes(`completions now use adapter team-rm-2 imported (${picked};`),
        )
          ? true
          : undefined,
      () => `the picked folder was not loaded:\n${channelLog('Code RLHF').slice(-20).join('\n')}`,
      60_000,
    );
    await page.locator('.editor-instance .monaco-editor .view-lines').first().click();
    await page.keyboard.press('Control+Shift+Alt+9');
    await waitFor(
      () =>
        channelLog('Code RLHF').some((l) =>
          l.includes(`completions now use adapter ${ADAPTER_NAME}`),
        )
          ? true
          : undefined,
      () => `the adapter was not loaded:\n${channelLog('Code RLHF').slice(-20).join('\n')}`,
      60_000,
    );
    await page
      .locator('.notifications-toasts')
      .filter({ hasText: 'imported, not gated' })
      .waitFor({ timeout: 15_000 });
    await screenshot(page, 'load-adapter-loaded');

    const training = path.join(
      e2e().server.userDataDir,
      'User',
      'globalStorage',
      EXTENSION_ID,
      'training',
    );
    const history = await readAdapterHistory(path.join(training, 'adapters.jsonl'));
    const entry = history.entries.find((e) => e.path === adapter);
    assert.ok(entry, `no history entry for ${adapter}: ${JSON.stringify(history)}`);
    assert.strictEqual(entry.algorithm, 'imported');
    assert.strictEqual(entry.promoted, false);
    assert.strictEqual(entry.modelDir, model);
    const pointer = JSON.parse(
      fs.readFileSync(path.join(training, 'active-adapter.json'), 'utf8'),
    ) as { adapter: { name: string; path: string } };
    assert.deepStrictEqual([pointer.adapter.name, pointer.adapter.path], [ADAPTER_NAME, adapter]);

    // The next comparison is generated with the adapter: its candidates carry its name.
    await page.locator('.editor-instance .monaco-editor .view-lines').first().click();
    await page.keyboard.press('Control+End');
    await page.keyboard.press('Control+Alt+Enter');
    const frame = await findFrameWith(page, '.candidate', 60_000);
    await frame.locator('.status').click();
    await page.keyboard.press('1');
    const storePath = path.join(folder, '.code-rlhf', 'judgments.jsonl');
    const record = await waitFor(
      () => {
        if (!fs.existsSync(storePath)) return undefined;
        const lines = fs.readFileSync(storePath, 'utf8').split('\n').filter(Boolean);
        return lines.length > 0 ? (JSON.parse(lines[0]) as JudgmentRecord) : undefined;
      },
      () => `no record in ${storePath}; log:\n${channelLog('Code RLHF').slice(-20).join('\n')}`,
    );
    assert.ok(record.candidates.length > 0);
    assert.deepStrictEqual(
      [...new Set(record.candidates.map((c) => c.adapter))],
      [ADAPTER_NAME],
      'every candidate was generated with the loaded adapter',
    );
  });
});
