import * as assert from 'assert';
import { channelLog, e2e, openTestWorkbench } from './support/hooks';
import { findFrameWith, openFile, runCommand, screenshot, waitFor } from './support/workbench';

const REFRESH_LINE = '[dashboard] dashboard message: refresh';

describe('dashboard webview in a real VS Code', () => {
  it('delivers a click on Refresh to the extension host, which answers', async function () {
    this.timeout(120_000);
    const { page, blockedRequests } = await openTestWorkbench();

    await openFile(page, 'src/math.ts');
    await runCommand(page, 'Code RLHF: Show dashboard');

    const frame = await findFrameWith(page, '#refresh');
    // The host answers the webview's "ready" with its state; the script renders it as text.
    await waitFor(
      async () => ((await frame.locator('#model').textContent()) === '' ? undefined : true),
      () => 'the dashboard never showed the state sent by the host',
    );
    assert.strictEqual(await frame.locator('#model').textContent(), 'default (embedded)');
    assert.strictEqual(await frame.locator('#training').textContent(), 'idle');
    assert.strictEqual(await frame.locator('#judgments').textContent(), '0');
    const refreshesBefore = channelLog('Code RLHF').filter((l) => l.endsWith(REFRESH_LINE));
    assert.deepStrictEqual(refreshesBefore, [], 'no refresh may be logged before the click');

    await frame.locator('#refresh').click();

    // The extension host's log channel is written by the host process itself: the line proves
    // that onDidReceiveMessage ran there with a validated {type: 'refresh'} message.
    const refreshes = await waitFor(
      () => {
        const lines = channelLog('Code RLHF').filter((l) => l.endsWith(REFRESH_LINE));
        return lines.length > 0 ? lines : undefined;
      },
      () => `no "${REFRESH_LINE}" in the Code RLHF log; log files: ${channelLogFilesText()}`,
    );
    assert.strictEqual(refreshes.length, 1, `one click, one message: ${refreshes.join('\n')}`);

    await screenshot(page, 'dashboard-after-refresh');
    assert.deepStrictEqual(blockedRequests, [], 'the workbench tried to reach another host');
  });
});

function channelLogFilesText(): string {
  const server = e2e().server;
  return `${server.userDataDir}/logs (see .test-output/e2e/logs after a failure)`;
}
