// Runs the in-host tests (test/e2e/inHost/*.inHost.ts) in desktop VS Code through
// @vscode/test-electron, for developers whose machine can download VS Code (or who point
// VSCODE_EXECUTABLE at an installed one). Where VS Code cannot be downloaded, e.g. offline,
// it says so and exits 0: the same tests run in code-server as part of `npm run test:e2e`.
//
//   npm run test:electron
//   VSCODE_EXECUTABLE=/usr/share/code/code npm run test:electron
//   VSCODE_VERSION=stable npm run test:electron
// On a Linux machine without a display, run it under xvfb-run.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { downloadAndUnzipVSCode, runTests } from '@vscode/test-electron';
import { repoRoot } from './package.mjs';

/** Same VS Code as the code-server the e2e suite runs (engines.vscode ^1.100.0). */
const version = process.env.VSCODE_VERSION ?? '1.100.3';

async function vscodeExecutable() {
  if (process.env.VSCODE_EXECUTABLE) {
    if (!fs.existsSync(process.env.VSCODE_EXECUTABLE)) {
      throw new Error(`VSCODE_EXECUTABLE=${process.env.VSCODE_EXECUTABLE} does not exist`);
    }
    return process.env.VSCODE_EXECUTABLE;
  }
  try {
    return await downloadAndUnzipVSCode({
      version,
      cachePath: path.join(repoRoot, '.e2e', 'vscode-test'),
      timeout: 15_000,
    });
  } catch (error) {
    console.log(
      `test:electron: cannot download VS Code ${version} (${error.message}); skipped. ` +
        'The same in-host tests run in code-server with `npm run test:e2e`; set ' +
        'VSCODE_EXECUTABLE to use an installed VS Code.',
    );
    return undefined;
  }
}

async function main() {
  const executable = await vscodeExecutable();
  if (!executable) return 0;
  const build = spawnSync('npm', ['run', 'build'], { cwd: repoRoot, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('npm run build failed');

  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'code-rlhf-electron-'));
  try {
    const workspace = path.join(scratch, 'workspace');
    fs.cpSync(path.join(repoRoot, 'sandbox'), workspace, { recursive: true });
    const resultsDir = path.join(scratch, 'results');
    fs.mkdirSync(resultsDir);
    const code = await runTests({
      vscodeExecutablePath: executable,
      extensionDevelopmentPath: repoRoot,
      extensionTestsPath: path.join(repoRoot, 'test', 'e2e', 'inHost', 'index.cjs'),
      extensionTestsEnv: { CODE_RLHF_INHOST_RESULTS_DIR: resultsDir },
      launchArgs: [
        workspace,
        '--disable-extensions',
        '--disable-workspace-trust',
        '--skip-welcome',
        '--skip-release-notes',
        `--user-data-dir=${path.join(scratch, 'user-data')}`,
      ],
    });
    const files = fs.readdirSync(resultsDir);
    if (files.length === 0) throw new Error(`VS Code exited with ${code} and wrote no results`);
    const results = JSON.parse(fs.readFileSync(path.join(resultsDir, files[0]), 'utf8'));
    for (const title of results.passed) console.log(`  passed: ${title}`);
    for (const failure of results.failed)
      console.log(`  FAILED: ${failure.title}\n${failure.error}`);
    if (results.error) console.log(`  runner error: ${results.error}`);
    return code === 0 && results.failed.length === 0 && !results.error ? 0 : 1;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`test:electron: ${error.message}`);
    process.exit(1);
  },
);
