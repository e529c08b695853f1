/**
 * A real VS Code (code-server 4.100.3, VS Code 1.100) for end-to-end tests and the sandbox.
 *
 * code-server is installed into its own package folder (`.e2e/code-server`), never into the
 * extension's dependencies: it is ~300 MB and builds native modules. Each server runs with
 * throwaway user-data, extensions, HOME and XDG folders, binds to 127.0.0.1 only, and is started
 * in its own process group so that stopping it also stops the extension host and every helper
 * process it started. See /work/shared/notes/vscode-e2e.md for the measured recipe.
 */
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const CODE_SERVER_VERSION = '4.100.3';
/** Tracked package.json + package-lock.json that pin code-server and its dependencies. */
const PACKAGE_TEMPLATE = path.join(REPO_ROOT, 'test', 'e2e', 'codeServer');
const INSTALL_DIR = path.join(REPO_ROOT, '.e2e', 'code-server');
const ENTRY = path.join(INSTALL_DIR, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
const MARKER = path.join(INSTALL_DIR, 'installed.json');

/**
 * code-server's @vscode/ripgrep postinstall downloads a ripgrep binary from GitHub, which these
 * machines cannot reach; it first looks for this archive under $TMPDIR, so we seed it with the
 * system's ripgrep (Debian package `ripgrep`). Version numbers are those of code-server 4.100.3.
 */
const RIPGREP_CACHE = 'vscode-ripgrep-cache-1.15.11';
const RIPGREP_ARCHIVES: Record<string, string> = {
  x64: 'ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz',
  arm64: 'ripgrep-v13.0.0-10-aarch64-unknown-linux-gnu.tar.gz',
};

function log(message: string): void {
  process.stderr.write(`[e2e] ${message}\n`);
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

function tail(file: string, lines = 40): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return `(no ${file})`;
  }
}

function seedRipgrepCache(tmpDir: string): void {
  const archive = RIPGREP_ARCHIVES[process.arch];
  const rg = findOnPath('rg');
  if (process.platform !== 'linux' || !archive) {
    log(`no ripgrep seed for ${process.platform}-${process.arch}; its install will download it`);
    return;
  }
  if (!rg) {
    throw new Error('ripgrep (rg) is not on PATH: install the Debian package "ripgrep"');
  }
  const cacheDir = path.join(tmpDir, RIPGREP_CACHE);
  const stage = path.join(tmpDir, 'rg-stage');
  fs.mkdirSync(cacheDir, { recursive: true });
  fs.mkdirSync(stage, { recursive: true });
  fs.copyFileSync(rg, path.join(stage, 'rg'));
  fs.chmodSync(path.join(stage, 'rg'), 0o755);
  const tar = spawnSync('tar', ['-czf', path.join(cacheDir, archive), '-C', stage, 'rg']);
  if (tar.status !== 0) throw new Error(`tar failed seeding the ripgrep cache: ${tar.stderr}`);
}

/** The Node headers that node-gyp needs; offline it cannot download them. */
function nodeHeadersDir(): string | undefined {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node.h')) ? prefix : undefined;
}

function isInstalled(): boolean {
  try {
    const marker = JSON.parse(fs.readFileSync(MARKER, 'utf8')) as { version?: string };
    return marker.version === CODE_SERVER_VERSION && fs.existsSync(ENTRY);
  } catch {
    return false;
  }
}

/**
 * Installs code-server into `.e2e/code-server` unless the same version is already there.
 * Takes 2-3 minutes and ~300 MB on a 2-core machine; output goes to `.e2e/install.log`.
 */
export function ensureCodeServer(): string {
  if (isInstalled()) return ENTRY;
  const release = acquireInstallLock();
  try {
    // Another run may have finished the install while we waited for the lock.
    return isInstalled() ? ENTRY : install();
  } finally {
    release();
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Several engineers run the suites in one working tree at the same time: one install at a
 * time. The lock is a folder (mkdir is atomic) holding the owner's pid; a dead owner's lock is
 * taken over.
 */
function acquireInstallLock(): () => void {
  const lock = path.join(REPO_ROOT, '.e2e', 'install.lock');
  const owner = path.join(lock, 'pid');
  fs.mkdirSync(path.dirname(lock), { recursive: true });
  const deadline = Date.now() + 15 * 60_000;
  for (let waited = false; ;) {
    try {
      fs.mkdirSync(lock);
      fs.writeFileSync(owner, String(process.pid));
      return () => fs.rmSync(lock, { recursive: true, force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const pid = Number(fs.existsSync(owner) ? fs.readFileSync(owner, 'utf8') : NaN);
    if (Number.isInteger(pid) && !isAlive(pid)) {
      fs.rmSync(lock, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`${lock} held by pid ${pid} for 15 minutes`);
    if (!waited) log(`waiting for another code-server install (pid ${pid}) to finish`);
    waited = true;
    sleepSync(1000);
  }
}

function install(): string {
  for (const tool of ['chromium', 'rg']) {
    if (!findOnPath(tool)) log(`warning: ${tool} is not on PATH (README: Installing and testing)`);
  }
  log(`installing code-server ${CODE_SERVER_VERSION} into ${INSTALL_DIR} (about 2 minutes)`);
  const started = Date.now();
  fs.rmSync(INSTALL_DIR, { recursive: true, force: true });
  fs.mkdirSync(INSTALL_DIR, { recursive: true });
  for (const file of ['package.json', 'package-lock.json']) {
    fs.copyFileSync(path.join(PACKAGE_TEMPLATE, file), path.join(INSTALL_DIR, file));
  }
  const tmpDir = path.join(REPO_ROOT, '.e2e', 'tmp');
  fs.rmSync(tmpDir, { recursive: true, force: true });
  fs.mkdirSync(tmpDir, { recursive: true });
  seedRipgrepCache(tmpDir);

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TMPDIR: tmpDir,
    // code-server's postinstall refuses to run as root without it.
    npm_config_unsafe_perm: 'true',
    // A nested `npx node-gyp` asks before installing; a user .npmrc may say yes=false.
    npm_config_yes: 'true',
    // npm 11 skips dependency install scripts that are not approved in package.json, and the
    // nested `npm install` runs in code-server's lib/vscode, which has no approvals. This
    // pinned tree needs its native builds, so scripts are allowed for this install only.
    npm_config_dangerously_allow_all_scripts: 'true',
    npm_config_foreground_scripts: 'true',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    JOBS: '2',
  };
  const headers = nodeHeadersDir();
  if (headers && !env.npm_config_nodedir) env.npm_config_nodedir = headers;

  const logFile = path.join(REPO_ROOT, '.e2e', 'install.log');
  const out = fs.openSync(logFile, 'w');
  const result = spawnSync('npm', ['ci'], {
    cwd: INSTALL_DIR,
    env,
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  if (result.error || result.status !== 0) {
    throw new Error(
      `installing code-server failed (${result.error?.message ?? `exit code ${result.status}`}); ` +
        `last lines of ${logFile}:\n${tail(logFile)}`,
    );
  }
  if (!fs.existsSync(ENTRY)) {
    throw new Error(`code-server installed but ${ENTRY} is missing; see ${logFile}`);
  }
  fs.rmSync(tmpDir, { recursive: true, force: true });
  fs.writeFileSync(MARKER, JSON.stringify({ version: CODE_SERVER_VERSION }) + '\n');
  log(`code-server installed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return ENTRY;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const request = http.get(url, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on('error', () => resolve(0));
    request.setTimeout(2000, () => {
      request.destroy();
      resolve(0);
    });
  });
}

/** User settings that keep the workbench quiet, offline and deterministic. */
const USER_SETTINGS = {
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoUpdate': false,
  'extensions.autoCheckUpdates': false,
  'extensions.ignoreRecommendations': true,
  'workbench.startupEditor': 'none',
  'workbench.enableExperiments': false,
  'workbench.tips.enabled': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'security.workspace.trust.enabled': false,
  'chat.disableAIFeatures': true,
  'git.enabled': false,
  'npm.fetchOnlinePackageInfo': false,
};

export interface ServerOptions {
  /** VSIX to install into the throwaway extensions folder. */
  vsix?: string;
  /** Folder opened by default (copied by the caller if tests may change it). */
  workspace: string;
  /** Fixed port; by default a free one is chosen. */
  port?: number;
  /** Extra environment for the server and the extension host it starts. */
  env?: Record<string, string>;
  /** Extra user settings merged over the defaults. */
  settings?: Record<string, unknown>;
}

export interface CodeServer {
  readonly port: number;
  readonly baseUrl: string;
  /** Root of this server's throwaway folders (user-data, extensions, home, logs). */
  readonly root: string;
  readonly userDataDir: string;
  readonly extensionsDir: string;
  readonly logFile: string;
  /** Workbench URL for a folder, with an optional development/test payload. */
  url(folder?: string, payload?: [string, string][]): string;
  /** Turns an absolute path on this machine into a URI the workbench can load. */
  remoteUri(absolutePath: string): string;
  /** Copies the server log and the workbench/extension-host logs into `dest`. */
  collectLogs(dest: string): void;
  /** Stops the server's whole process group and deletes its folders; safe to call twice. */
  stop(): Promise<void>;
}

/** Servers started by this process: stopped, and their folders deleted, even on abort. */
const running = new Map<ChildProcess, string>();
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // group already gone
  }
}
function stopAllSync(): void {
  for (const [child, root] of running) {
    killGroup(child, 'SIGKILL');
    fs.rmSync(root, { recursive: true, force: true, maxRetries: 3 });
  }
  running.clear();
}
process.on('exit', stopAllSync);
// Ctrl-C reaches our process group, not the server's (it has its own session): stop the
// servers, then exit with the usual status for the signal.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    stopAllSync();
    process.exit(128 + os.constants.signals[signal]);
  });
}

function runEntry(entry: string, args: string[], env: NodeJS.ProcessEnv, what: string): void {
  const result = spawnSync(process.execPath, [entry, ...args], { env, encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`${what} failed (exit ${result.status}):\n${result.stdout}\n${result.stderr}`);
  }
}

/** Starts code-server on 127.0.0.1 and waits until it answers. */
export async function startCodeServer(options: ServerOptions): Promise<CodeServer> {
  const entry = ensureCodeServer();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'code-rlhf-vscode-'));
  const dirs = {
    userData: path.join(root, 'user-data'),
    extensions: path.join(root, 'extensions'),
    home: path.join(root, 'home'),
    config: path.join(root, 'xdg-config'),
    data: path.join(root, 'xdg-data'),
    cache: path.join(root, 'xdg-cache'),
  };
  for (const dir of Object.values(dirs)) fs.mkdirSync(dir, { recursive: true });
  fs.mkdirSync(path.join(dirs.userData, 'User'), { recursive: true });
  fs.writeFileSync(
    path.join(dirs.userData, 'User', 'settings.json'),
    JSON.stringify({ ...USER_SETTINGS, ...options.settings }, null, 2),
  );
  const port = options.port ?? (await freePort());
  const configFile = path.join(root, 'config.yaml');
  fs.writeFileSync(configFile, `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: dirs.home,
    XDG_CONFIG_HOME: dirs.config,
    XDG_DATA_HOME: dirs.data,
    XDG_CACHE_HOME: dirs.cache,
    // No marketplace: nothing may be fetched from outside this machine.
    EXTENSIONS_GALLERY: '{}',
    ...options.env,
  };
  delete env.VSCODE_IPC_HOOK_CLI;
  const common = ['--extensions-dir', dirs.extensions, '--user-data-dir', dirs.userData];
  if (options.vsix) {
    try {
      runEntry(entry, [...common, '--install-extension', options.vsix], env, 'installing the VSIX');
    } catch (error) {
      fs.rmSync(root, { recursive: true, force: true });
      throw error;
    }
  }

  const logFile = path.join(root, 'code-server.log');
  const out = fs.openSync(logFile, 'w');
  const args = [
    entry,
    '--config',
    configFile,
    '--bind-addr',
    `127.0.0.1:${port}`,
    '--auth',
    'none',
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
    ...common,
    options.workspace,
  ];
  // detached: the server leads a new session and process group (setsid), so one kill of the
  // group reaches the extension host, file watchers, pty host and anything an extension forked.
  const child = spawn(process.execPath, args, { env, detached: true, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  running.set(child, root);
  let exited = false;
  child.once('exit', () => (exited = true));

  const baseUrl = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (!running.has(child)) return;
    running.delete(child);
    killGroup(child, 'SIGTERM');
    const deadline = Date.now() + 5000;
    while (!exited && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    killGroup(child, 'SIGKILL');
    fs.rmSync(root, { recursive: true, force: true });
  };

  const deadline = Date.now() + 60_000;
  while ((await httpStatus(`${baseUrl}/healthz`)) !== 200) {
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(
        `code-server did not start on ${baseUrl} (${exited ? 'it exited' : 'timeout'}); ` +
          `last lines of ${logFile}:\n${tail(logFile)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  const remoteUri = (absolutePath: string): string =>
    `vscode-remote://127.0.0.1:${port}${absolutePath.split(path.sep).join('/')}`;
  return {
    port,
    baseUrl,
    root,
    userDataDir: dirs.userData,
    extensionsDir: dirs.extensions,
    logFile,
    remoteUri,
    url(folder = options.workspace, payload) {
      let url = `${baseUrl}/?folder=${encodeURIComponent(folder)}`;
      if (payload) url += `&payload=${encodeURIComponent(JSON.stringify(payload))}`;
      return url;
    },
    collectLogs(dest) {
      fs.mkdirSync(dest, { recursive: true });
      fs.copyFileSync(logFile, path.join(dest, 'code-server.log'));
      const logs = path.join(dirs.userData, 'logs');
      if (fs.existsSync(logs)) fs.cpSync(logs, path.join(dest, 'logs'), { recursive: true });
    },
    stop,
  };
}
