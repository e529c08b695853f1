/**
 * Runs the in-host mocha specs (test/e2e/inHost/*.inHost.ts) inside a real extension host: the
 * workbench is opened with a payload naming the extension under development (the folder the
 * VSIX was installed into) and the test entry point; the entry writes a results file that this
 * side reads, since the extension host exits 0 whether tests pass or not.
 */
import * as fs from 'fs';
import * as path from 'path';
import { REPO_ROOT, type CodeServer } from './codeServer';
import { openWorkbench, screenshot, waitFor } from './workbench';

export interface InHostResults {
  /** Number of tests mocha found. */
  total: number;
  passed: string[];
  failed: { title: string; error: string }[];
  error?: string;
}

/** The folder code-server unpacked the VSIX into, e.g. `code-rlhf.code-rlhf-0.1.0-linux-x64`. */
export function installedExtensionDir(server: CodeServer, id: string): string {
  const found = fs
    .readdirSync(server.extensionsDir)
    .filter((name) => name.toLowerCase().startsWith(`${id.toLowerCase()}-`));
  if (found.length !== 1) {
    throw new Error(`expected one folder for ${id} in ${server.extensionsDir}, found ${found}`);
  }
  return path.join(server.extensionsDir, found[0]);
}

export async function runInHostTests(
  server: CodeServer,
  resultsDir: string,
  extensionDir: string,
  timeoutMs = 180_000,
): Promise<InHostResults> {
  fs.rmSync(resultsDir, { recursive: true, force: true });
  fs.mkdirSync(resultsDir, { recursive: true });
  const entry = path.join(REPO_ROOT, 'test', 'e2e', 'inHost', 'index.cjs');
  const url = server.url(undefined, [
    ['extensionDevelopmentPath', server.remoteUri(extensionDir)],
    ['extensionTestsPath', server.remoteUri(entry)],
  ]);
  const workbench = await openWorkbench(url);
  try {
    const file = await waitFor(
      () => fs.readdirSync(resultsDir).find((name) => /^results-\d+\.json$/.test(name)),
      () => `no in-host results in ${resultsDir}; see the extension host log`,
      timeoutMs,
    );
    return JSON.parse(fs.readFileSync(path.join(resultsDir, file), 'utf8')) as InHostResults;
  } catch (error) {
    await screenshot(workbench.page, 'in-host-timeout').catch(() => undefined);
    throw error;
  } finally {
    await workbench.close();
  }
}
