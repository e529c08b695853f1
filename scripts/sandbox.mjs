// Starts a real VS Code in the browser (code-server on 127.0.0.1) with the extension installed
// from a freshly built VSIX and a copy of the sample workspace in sandbox/. Stays up until
// Ctrl-C, then stops the server's whole process group and deletes its throwaway folders.
//
//   npm run sandbox                      # free port
//   npm run sandbox -- --port 8080       # fixed port
//   npm run sandbox -- --no-build        # reuse dist/
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { require as tsxRequire } from 'tsx/cjs/api';
import { hostTarget, packageExtension, repoRoot, vsixPath } from './package.mjs';

function parseArgs(argv) {
  const options = { port: undefined, build: true };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--port') {
      const port = Number(argv[++i]);
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        throw new Error(`--port must be an integer from 1 to 65535, got ${argv[i]}`);
      }
      options.port = port;
    } else if (argv[i] === '--no-build') {
      options.build = false;
    } else {
      throw new Error(
        `unknown argument ${JSON.stringify(argv[i])}; allowed: --port <n>, --no-build`,
      );
    }
  }
  return options;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  // A private VSIX path: other engineers may package in this working tree at the same time.
  const vsixDir = fs.mkdtempSync(path.join(os.tmpdir(), 'code-rlhf-vsix-'));
  process.on('exit', () => fs.rmSync(vsixDir, { recursive: true, force: true }));
  const out = path.join(vsixDir, path.basename(vsixPath(hostTarget())));
  const vsix = packageExtension({ build: options.build, out });
  const { startCodeServer } = tsxRequire('../test/e2e/support/codeServer.ts', import.meta.url);

  // Edits made in the sandbox go to a throwaway copy; sandbox/ stays as committed.
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'code-rlhf-sandbox-'));
  process.on('exit', () => fs.rmSync(workspace, { recursive: true, force: true }));
  fs.cpSync(path.join(repoRoot, 'sandbox'), workspace, { recursive: true });

  const server = await startCodeServer({ vsix, workspace, port: options.port });
  console.log('');
  console.log(`Code RLHF sandbox: ${server.url()}`);
  console.log(`  workspace (a copy of sandbox/): ${workspace}`);
  console.log(`  server log: ${server.logFile}`);
  console.log('Press Ctrl-C to stop.');
  // Stopping is done by the signal handlers of codeServer.ts; if the server dies, say so.
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const healthy = await globalThis.fetch(`${server.baseUrl}/healthz`).then(
      (response) => response.ok,
      () => false,
    );
    if (!healthy) {
      console.error(`sandbox: code-server stopped answering; see ${server.logFile}`);
      await server.stop();
      process.exit(1);
    }
  }
}

main().catch((error) => {
  console.error(`sandbox: ${error.message}`);
  process.exit(1);
});
