import * as assert from 'assert';
import { e2e, EXTENSION_ID } from './support/hooks';
import { installedExtensionDir, runInHostTests } from './support/inHost';

describe('in-host tests (test/e2e/inHost/*.inHost.ts)', () => {
  it('pass inside the extension host of the installed VSIX', async function () {
    this.timeout(240_000);
    const { server, inHostResultsDir } = e2e();
    const results = await runInHostTests(
      server,
      inHostResultsDir,
      installedExtensionDir(server, EXTENSION_ID),
    );
    const report = [
      ...results.passed.map((title) => `  passed: ${title}`),
      ...results.failed.map((f) => `  FAILED: ${f.title}\n${f.error}`),
    ].join('\n');
    process.stderr.write(`[e2e] in-host results:\n${report}\n`);
    assert.strictEqual(results.error, undefined, `in-host runner crashed: ${results.error}`);
    if (results.failed.length > 0) assert.fail(`in-host tests failed:\n${report}`);
    assert.ok(results.total > 0, 'no in-host tests ran');
    assert.strictEqual(
      results.passed.length,
      results.total,
      `not all in-host tests ran:\n${report}`,
    );
  });
});
