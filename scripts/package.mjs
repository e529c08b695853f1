// Builds a platform-specific VSIX with @vscode/vsce and checks what went into it.
//
//   npm run package                          # host platform (linux-x64 on our machines)
//   npm run package -- --target darwin-arm64 --out /tmp/x.vsix --no-build
//
// onnxruntime-node ships every platform's native binaries (~300 MB); a VSIX carries only the
// folder of its own target. The checks below read the VSIX's zip directory, so they describe the
// artifact itself, not what vsce was asked to do.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** VSIX target -> onnxruntime-node binary folder (bin/napi-v6/<os>/<arch>). */
const ORT_FOLDERS = {
  'linux-x64': 'linux/x64',
  'linux-arm64': 'linux/arm64',
  'darwin-arm64': 'darwin/arm64',
  'win32-x64': 'win32/x64',
  'win32-arm64': 'win32/arm64',
};
const ORT_BIN = 'node_modules/onnxruntime-node/bin/napi-v6';

/** Files every VSIX must carry (paths inside the extension folder). */
const REQUIRED = [
  'package.json',
  'readme.md',
  'LICENSE.txt',
  'dist/extension.js',
  'dist/modelHost.js',
  'dist/cli.js',
  'dist/webview/dashboard.js',
  'dist/webview/compare.js',
  'media/webview.css',
  'node_modules/onnxruntime-node/package.json',
  'node_modules/onnxruntime-node/dist/index.js',
  'node_modules/onnxruntime-node/dist/binding.js',
  'node_modules/onnxruntime-common/package.json',
  'node_modules/onnxruntime-common/dist/cjs/index.js',
];

/** Paths that must never ship: sources, tests, fixtures, tooling, source maps. */
const FORBIDDEN = [
  /^src\//,
  /^webview\//,
  /^test\//,
  /^scripts\//,
  /^bench\//,
  /^sandbox\//,
  /^\.e2e\//,
  /^\.test-output\//,
  /^\.ci\//,
  /(^|\/)tsconfig\.json$/,
  /\.ts$/,
  /\.map$/,
  /\.vsix$/,
  /^node_modules\/(?!onnxruntime-node\/|onnxruntime-common\/)/,
];

export function hostTarget() {
  return `${process.platform}-${process.arch}`;
}

export function vsixPath(target) {
  const manifest = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
  return path.join(repoRoot, `${manifest.name}-${manifest.version}-${target}.vsix`);
}

function parseArgs(argv) {
  const options = { target: hostTarget(), out: undefined, build: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--target' || arg === '--out') {
      const value = argv[++i];
      if (value === undefined || value.startsWith('--')) {
        throw new Error(`${arg} needs a value`);
      }
      options[arg.slice(2)] = value;
    } else if (arg === '--no-build') {
      options.build = false;
    } else {
      throw new Error(
        `unknown argument ${JSON.stringify(arg)}; allowed: --target <t>, --out <file>, --no-build`,
      );
    }
  }
  return options;
}

function run(command, args, what) {
  const result = spawnSync(command, args, { cwd: repoRoot, stdio: 'inherit' });
  if (result.error) throw new Error(`${what}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${what} failed with exit code ${result.status}`);
}

/**
 * Lists the entry names of a zip file from its central directory. VSIX files are small (no
 * zip64), so the end-of-central-directory record is within the last 64 KiB + 22 bytes.
 */
export function listZip(file) {
  const data = fs.readFileSync(file);
  const eocdSignature = 0x06054b50;
  let eocd = -1;
  for (let i = data.length - 22; i >= Math.max(0, data.length - 22 - 0xffff); i--) {
    if (data.readUInt32LE(i) === eocdSignature) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${file} is not a zip file (no end-of-central-directory record)`);
  const count = data.readUInt16LE(eocd + 10);
  let offset = data.readUInt32LE(eocd + 16);
  const names = [];
  for (let n = 0; n < count; n++) {
    if (data.readUInt32LE(offset) !== 0x02014b50) {
      throw new Error(`${file}: bad central-directory entry ${n} at byte ${offset}`);
    }
    const nameLength = data.readUInt16LE(offset + 28);
    const extraLength = data.readUInt16LE(offset + 30);
    const commentLength = data.readUInt16LE(offset + 32);
    names.push(data.toString('utf8', offset + 46, offset + 46 + nameLength));
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return names;
}

/** Returns the problems found in a VSIX's file list (paths relative to `extension/`). */
export function checkVsixContents(files, target) {
  const problems = [];
  const present = new Set(files);
  const ortFolder = `${ORT_BIN}/${ORT_FOLDERS[target]}/`;
  const required = [...REQUIRED, `${ortFolder}onnxruntime_binding.node`];
  for (const file of required) {
    if (!present.has(file)) problems.push(`missing ${file}`);
  }
  if (!files.some((f) => f.startsWith(ortFolder) && /onnxruntime\.(dll|so|\d|dylib)/.test(f))) {
    problems.push(`missing the onnxruntime shared library in ${ortFolder}`);
  }
  const modelDir = path.join(repoRoot, 'models', 'default');
  if (fs.existsSync(modelDir)) {
    for (const name of fs.readdirSync(modelDir, { recursive: true })) {
      const rel = `models/default/${String(name).split(path.sep).join('/')}`;
      if (fs.statSync(path.join(repoRoot, rel)).isFile() && !present.has(rel)) {
        problems.push(`missing ${rel}`);
      }
    }
  }
  for (const file of files) {
    if (file.startsWith(`${ORT_BIN}/`) && !file.startsWith(ortFolder)) {
      problems.push(`other platform's binary: ${file}`);
    } else if (FORBIDDEN.some((pattern) => pattern.test(file))) {
      problems.push(`must not ship: ${file}`);
    }
  }
  return problems;
}

/** Writes the ignore file for one target: .vscodeignore plus that target's binary folder. */
function writeIgnoreFile(target) {
  const base = fs.readFileSync(path.join(repoRoot, '.vscodeignore'), 'utf8');
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'code-rlhf-vsce-')), 'ignore');
  fs.writeFileSync(file, `${base.trimEnd()}\n!${ORT_BIN}/${ORT_FOLDERS[target]}/**\n`);
  return file;
}

function formatSize(bytes) {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB (${bytes} bytes)`;
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Several engineers build and package in one working tree at the same time; webpack writing
 * dist/ while vsce reads it would ship torn files. One build+package at a time: the lock is a
 * folder (mkdir is atomic) holding the owner's pid, taken over when its owner is dead.
 */
function withPackageLock(action) {
  const lock = path.join(repoRoot, '.e2e', 'package.lock');
  const owner = path.join(lock, 'pid');
  fs.mkdirSync(path.dirname(lock), { recursive: true });
  const deadline = Date.now() + 10 * 60_000;
  for (let waited = false; ;) {
    try {
      fs.mkdirSync(lock);
      fs.writeFileSync(owner, String(process.pid));
      break;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
    }
    const pid = Number(fs.existsSync(owner) ? fs.readFileSync(owner, 'utf8') : NaN);
    if (Number.isInteger(pid) && !isAlive(pid)) {
      fs.rmSync(lock, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`${lock} held by pid ${pid} for 10 minutes`);
    if (!waited) console.log(`package: waiting for another build (pid ${pid}) to finish`);
    waited = true;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
  }
  try {
    return action();
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * Builds (unless `build` is false) and packages the extension for `target`; returns the VSIX
 * path. Throws with the list of problems when the VSIX content is wrong.
 */
export function packageExtension(options = {}) {
  return withPackageLock(() => packageUnlocked(options));
}

function packageUnlocked({ target = hostTarget(), out, build = true }) {
  if (!(target in ORT_FOLDERS)) {
    throw new Error(
      `unsupported target ${JSON.stringify(target)}: onnxruntime-node ships binaries for ` +
        `${Object.keys(ORT_FOLDERS).join(', ')}`,
    );
  }
  const binaryDir = path.join(repoRoot, ORT_BIN, ORT_FOLDERS[target]);
  if (!fs.existsSync(binaryDir)) {
    throw new Error(`${binaryDir} does not exist: run npm install first`);
  }
  const vsix = path.resolve(out ?? vsixPath(target));
  if (build) run('npm', ['run', 'build'], 'npm run build');

  const vsce = path.join(repoRoot, 'node_modules', '@vscode', 'vsce', 'vsce');
  const ignoreFile = writeIgnoreFile(target);
  try {
    fs.rmSync(vsix, { force: true });
    const common = ['--ignoreFile', ignoreFile, '--dependencies'];
    run(process.execPath, [vsce, 'package', '--target', target, '--out', vsix, ...common], 'vsce');

    // `vsce ls` lists what vsce selects; the zip listing is what actually shipped.
    const ls = spawnSync(process.execPath, [vsce, 'ls', ...common], {
      cwd: repoRoot,
      encoding: 'utf8',
    });
    if (ls.status !== 0) throw new Error(`vsce ls failed: ${ls.stderr}`);
    const listed = ls.stdout.split('\n').filter((line) => line.trim() !== '');
    const shipped = listZip(vsix)
      .filter((name) => name.startsWith('extension/'))
      .map((name) => name.slice('extension/'.length));

    const problems = checkVsixContents(shipped, target);
    // vsce stores README.md as readme.md and LICENSE as LICENSE.txt.
    const renamed = { 'README.md': 'readme.md', LICENSE: 'LICENSE.txt' };
    const onlyListed = listed.filter((f) => !shipped.includes(renamed[f] ?? f));
    if (onlyListed.length > 0) {
      problems.push(`vsce ls lists files the VSIX lacks: ${onlyListed.slice(0, 5).join(', ')}`);
    }
    if (problems.length > 0) {
      throw new Error(`VSIX ${vsix} is wrong:\n  ${problems.join('\n  ')}`);
    }
    const size = fs.statSync(vsix).size;
    const shown = vsix.startsWith(repoRoot + path.sep) ? path.relative(repoRoot, vsix) : vsix;
    console.log(`VSIX ${shown}: ${target}, ${shipped.length} files`);
    console.log(`VSIX size: ${formatSize(size)}`);
    return vsix;
  } finally {
    fs.rmSync(path.dirname(ignoreFile), { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    packageExtension(parseArgs(process.argv.slice(2)));
  } catch (error) {
    console.error(`package: ${error.message}`);
    process.exit(1);
  }
}
