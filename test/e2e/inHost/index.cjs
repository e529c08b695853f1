// Entry point loaded by the VS Code extension host when a workbench is opened with an
// `extensionTestsPath` payload (see test/e2e/support/inHost.ts). It runs the mocha specs
// `test/e2e/inHost/**/*.inHost.ts` inside the extension host, with the full `vscode` API.
//
// code-server's extension host exits 0 even when tests fail, so the outcome is written to a JSON
// file in $CODE_RLHF_INHOST_RESULTS_DIR (set on the code-server process, inherited by the host),
// atomically (temp file, then rename) so the runner never reads half a file. Desktop VS Code
// (@vscode/test-electron, scripts/testElectron.mjs) uses the rejection of run() instead.
'use strict';
const fs = require('fs');
const path = require('path');

function collectSpecs(dir) {
  return fs
    .readdirSync(dir, { recursive: true })
    .map(String)
    .filter((name) => name.endsWith('.inHost.ts'))
    .sort()
    .map((name) => path.join(dir, name));
}

function writeResults(results) {
  const dir = process.env.CODE_RLHF_INHOST_RESULTS_DIR;
  if (!dir) throw new Error('CODE_RLHF_INHOST_RESULTS_DIR is not set in the extension host');
  const file = path.join(dir, `results-${process.pid}.json`);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(results, null, 2));
  fs.renameSync(`${file}.tmp`, file);
}

async function run() {
  const results = { total: 0, passed: [], failed: [], error: undefined };
  try {
    require('tsx/cjs/api').register();
    const Mocha = require('mocha');
    const mocha = new Mocha({ ui: 'bdd', timeout: 60000, color: false, reporter: 'spec' });
    for (const spec of collectSpecs(__dirname)) mocha.addFile(spec);
    await new Promise((resolve) => {
      const runner = mocha.run(() => resolve());
      results.total = runner.total;
      runner.on('pass', (test) => results.passed.push(test.fullTitle()));
      runner.on('fail', (test, error) =>
        results.failed.push({ title: test.fullTitle(), error: String(error && error.stack) }),
      );
    });
  } catch (error) {
    results.error = String(error && error.stack ? error.stack : error);
  }
  writeResults(results);
  if (results.error) throw new Error(results.error);
  if (results.failed.length > 0) throw new Error(`${results.failed.length} in-host test(s) failed`);
}

module.exports = { run };
