// End-to-end tests in a real VS Code (code-server in Chromium), see test/e2e/README.md.
//
//   npm run test:e2e                         # build + package the VSIX, run every scenario
//   npm run test:e2e -- --grep dashboard     # extra arguments go to mocha
//   npm run test:e2e -- --no-build           # reuse dist/ (still repackages the VSIX)
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hostTarget, packageExtension, repoRoot, vsixPath } from './package.mjs';

const started = Date.now();
const args = process.argv.slice(2);
const build = !args.includes('--no-build');
const mochaArgs = args.filter((arg) => arg !== '--no-build');

// A private VSIX path: other engineers may package in this working tree at the same time.
const vsixDir = fs.mkdtempSync(path.join(os.tmpdir(), 'code-rlhf-vsix-'));
process.on('exit', () => fs.rmSync(vsixDir, { recursive: true, force: true }));
// Ctrl-C also reaches mocha, which stops the server; then this process cleans up and exits.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => undefined);

let vsix;
try {
  const out = path.join(vsixDir, path.basename(vsixPath(hostTarget())));
  vsix = packageExtension({ build, out });
} catch (error) {
  console.error(`test:e2e: ${error.message}`);
  process.exit(1);
}

const mocha = path.join(repoRoot, 'node_modules', 'mocha', 'bin', 'mocha.js');
const result = spawnSync(
  process.execPath,
  [mocha, '--config', path.join('test', 'e2e', 'mocharc.json'), ...mochaArgs],
  { cwd: repoRoot, stdio: 'inherit', env: { ...process.env, CODE_RLHF_VSIX: vsix } },
);
const seconds = ((Date.now() - started) / 1000).toFixed(1);
console.log(`test:e2e: ${result.status === 0 ? 'passed' : 'FAILED'} in ${seconds} s`);
process.exit(result.status ?? 1);
