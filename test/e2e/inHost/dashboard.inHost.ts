// Runs inside the extension host (see index.cjs): the full `vscode` API is available.
import * as assert from 'assert';
import * as vscode from 'vscode';
import type { CodeRlhfApi } from '../../../src/extension/extension';

const EXTENSION_ID = 'code-rlhf.code-rlhf';

async function until<T>(check: () => T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('extension in the extension host', () => {
  it('activates from the installed VSIX and exposes its API', async () => {
    const extension = vscode.extensions.getExtension<CodeRlhfApi>(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} is not installed`);
    const api = await extension.activate();
    assert.strictEqual(typeof api.dashboardMessages, 'function');
    const commands = await vscode.commands.getCommands(true);
    assert.ok(commands.includes('codeRlhf.showDashboard'), 'codeRlhf.showDashboard not registered');
    // Every contributed command, the status bar item's menu (codeRlhf.statusMenu) included.
    const contributed = (
      extension.packageJSON as { contributes: { commands: { command: string }[] } }
    ).contributes.commands.map((c) => c.command);
    assert.deepStrictEqual(
      contributed.filter((c) => !commands.includes(c)),
      [],
      'contributed but not registered',
    );
  });

  it('receives "ready" from the dashboard webview script running in the browser', async () => {
    const api = await vscode.extensions.getExtension<CodeRlhfApi>(EXTENSION_ID)!.activate();
    await vscode.commands.executeCommand('codeRlhf.showDashboard');
    const received = await until(
      () => (api.dashboardMessages().includes('ready') ? api.dashboardMessages() : undefined),
      `no "ready" from the dashboard webview; received ${JSON.stringify(api.dashboardMessages())}`,
    );
    assert.deepStrictEqual([...received], ['ready']);
  });
});
