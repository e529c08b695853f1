// End-to-end tests in a real VS Code (code-server in Chromium), see test/e2e/README.md.
//
//   npm run test:e2e                         # build + package the VSIX, run every scenario
//   npm run test:e2e -- --grep dashboard     # extra arguments go to mocha
//   npm run test:e2e -- --no-build           # reuse dist/ (still repackages the VSIX)
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { packageExtension, repoRoot } from './package.mjs';

const started = Date.now();
const args = process.argv.slice(2);
const build = !args.includes('--no-build');
const mochaArgs = args.filter((arg) => arg !== '--no-build');

let vsix;
try {
  vsix = packageExtension({ build });
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
