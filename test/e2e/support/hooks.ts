/**
 * Mocha root hooks for the end-to-end suite: one code-server for the whole run (with the VSIX
 * built by scripts/e2e.mjs installed), a fresh copy of the sandbox workspace, and per test a
 * workbench in its own browser that is screenshotted on failure and always closed.
 */
import * as fs from 'fs';
import type { Context } from 'mocha';
import * as os from 'os';
import * as path from 'path';
import { REPO_ROOT, startCodeServer, type CodeServer } from './codeServer';
import { OUTPUT_DIR, openWorkbench, screenshot, waitFor, type Workbench } from './workbench';

export const EXTENSION_ID = 'code-rlhf.code-rlhf';

interface Suite {
  server: CodeServer;
  /** Throwaway copy of `sandbox/`, opened as the workspace folder. */
  workspace: string;
  /** Where test/e2e/inHost/index.cjs writes its results (inherited by the extension host). */
  inHostResultsDir: string;
}

let suite: Suite | undefined;
const openWorkbenches: Workbench[] = [];

/** The running server and workspace; available inside tests and hooks. */
export function e2e(): Suite {
  if (!suite) throw new Error('the e2e server is not running (run through npm run test:e2e)');
  return suite;
}

/** Opens a workbench on the sandbox copy (or another folder); closed after the test. */
export async function openTestWorkbench(url = e2e().server.url()): Promise<Workbench> {
  const workbench = await openWorkbench(url);
  openWorkbenches.push(workbench);
  return workbench;
}

/** Log files the extension host wrote for a channel, e.g. "Code RLHF". */
export function channelLogFiles(channel: string): string[] {
  const logs = path.join(e2e().server.userDataDir, 'logs');
  if (!fs.existsSync(logs)) return [];
  return fs
    .readdirSync(logs, { recursive: true })
    .map(String)
    .filter((name) => path.basename(name) === `${channel}.log`)
    .map((name) => path.join(logs, name));
}

/** Lines of a channel's log, across every extension-host session of this server. */
export function channelLog(channel: string): string[] {
  return channelLogFiles(channel).flatMap((file) => fs.readFileSync(file, 'utf8').split('\n'));
}

/** Copies the sandbox workspace to `folder` with these workspace settings. */
export function writeWorkspace(folder: string, settings: Record<string, unknown>): void {
  fs.cpSync(e2e().workspace, folder, { recursive: true });
  fs.mkdirSync(path.join(folder, '.vscode'), { recursive: true });
  fs.writeFileSync(
    path.join(folder, '.vscode', 'settings.json'),
    JSON.stringify(settings, null, 2),
  );
}

/** Waits until the model host has loaded the tiny fixture (it does so at activation). */
export async function waitForModelLoad(): Promise<void> {
  await waitFor(
    () => (channelLog('Code RLHF').some((l) => /loaded tiny-llama/.test(l)) ? true : undefined),
    () => `the model never loaded:\n${channelLog('Code RLHF').slice(-20).join('\n')}`,
    60_000,
  );
}

export const mochaHooks = {
  async beforeAll(this: Context) {
    this.timeout(10 * 60_000);
    const vsix = process.env.CODE_RLHF_VSIX;
    if (!vsix || !fs.existsSync(vsix)) {
      throw new Error(
        `CODE_RLHF_VSIX=${JSON.stringify(vsix)} is not a VSIX file: run the suite with ` +
          '`npm run test:e2e`, which builds the VSIX first',
      );
    }
    // Not emptied first: another run in this working tree may be writing there right now.
    fs.mkdirSync(OUTPUT_DIR, { recursive: true });
    const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'code-rlhf-workspace-'));
    fs.cpSync(path.join(REPO_ROOT, 'sandbox'), workspace, { recursive: true });
    const inHostResultsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'code-rlhf-inhost-'));
    const started = Date.now();
    const server = await startCodeServer({
      vsix,
      workspace,
      env: { CODE_RLHF_INHOST_RESULTS_DIR: inHostResultsDir },
    });
    process.stderr.write(
      `[e2e] code-server on ${server.baseUrl} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
    suite = { server, workspace, inHostResultsDir };
  },

  async afterEach(this: Context) {
    const failed = this.currentTest?.state === 'failed';
    for (const workbench of openWorkbenches.splice(0)) {
      if (failed) {
        const name = `failed-${this.currentTest?.fullTitle() ?? 'test'}`;
        await screenshot(workbench.page, name).catch(() => undefined);
      }
      await workbench.close().catch(() => undefined);
    }
    if (failed && suite) suite.server.collectLogs(path.join(OUTPUT_DIR, 'logs'));
  },

  async afterAll() {
    if (!suite) return;
    await suite.server.stop();
    fs.rmSync(suite.workspace, { recursive: true, force: true });
    fs.rmSync(suite.inHostResultsDir, { recursive: true, force: true });
    suite = undefined;
  },
};
