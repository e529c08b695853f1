import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { checkVsixContents, listZip } from '../../../scripts/package.mjs';

const ORT = 'node_modules/onnxruntime-node';
const COMMON = 'node_modules/onnxruntime-common';

/** The files a correct linux-x64 VSIX carries (besides models/default when present). */
function goodLinuxX64(): string[] {
  return [
    'package.json',
    'readme.md',
    'LICENSE.txt',
    'dist/extension.js',
    'dist/modelHost.js',
    'dist/cli.js',
    'dist/webview/dashboard.js',
    'dist/webview/compare.js',
    'media/webview.css',
    `${ORT}/package.json`,
    `${ORT}/dist/index.js`,
    `${ORT}/dist/binding.js`,
    `${ORT}/bin/napi-v6/linux/x64/onnxruntime_binding.node`,
    `${ORT}/bin/napi-v6/linux/x64/libonnxruntime.so.1`,
    `${COMMON}/package.json`,
    `${COMMON}/dist/cjs/index.js`,
  ];
}

/** checkVsixContents also requires every file of models/default when that folder exists. */
function withModelFiles(files: string[]): string[] {
  const dir = path.resolve(__dirname, '..', '..', '..', 'models', 'default');
  if (!fs.existsSync(dir)) return files;
  const model = fs
    .readdirSync(dir, { recursive: true })
    .map(String)
    .filter((name) => fs.statSync(path.join(dir, name)).isFile())
    .map((name) => `models/default/${name.split(path.sep).join('/')}`);
  return [...files, ...model];
}

describe('VSIX content check (failure kind O4)', () => {
  it('accepts a linux-x64 VSIX with its binding and shared library', () => {
    assert.deepStrictEqual(checkVsixContents(withModelFiles(goodLinuxX64()), 'linux-x64'), []);
  });

  it('reports a missing native binding and a missing shared library', () => {
    const files = withModelFiles(goodLinuxX64()).filter((f) => !f.includes('/bin/napi-v6/'));
    assert.deepStrictEqual(checkVsixContents(files, 'linux-x64'), [
      `missing ${ORT}/bin/napi-v6/linux/x64/onnxruntime_binding.node`,
      `missing the onnxruntime shared library in ${ORT}/bin/napi-v6/linux/x64/`,
    ]);
  });

  it('reports binaries of another platform, sources, tests and source maps', () => {
    const files = [
      ...withModelFiles(goodLinuxX64()),
      `${ORT}/bin/napi-v6/win32/x64/onnxruntime.dll`,
      'src/extension/extension.ts',
      'test/fixtures/tiny.onnx',
      'dist/extension.js.map',
      'node_modules/adm-zip/adm-zip.js',
    ];
    assert.deepStrictEqual(checkVsixContents(files, 'linux-x64'), [
      `other platform's binary: ${ORT}/bin/napi-v6/win32/x64/onnxruntime.dll`,
      'must not ship: src/extension/extension.ts',
      'must not ship: test/fixtures/tiny.onnx',
      'must not ship: dist/extension.js.map',
      'must not ship: node_modules/adm-zip/adm-zip.js',
    ]);
  });

  it('expects the darwin-arm64 binding in a darwin-arm64 VSIX', () => {
    const problems = checkVsixContents(withModelFiles(goodLinuxX64()), 'darwin-arm64');
    assert.ok(
      problems.includes(`missing ${ORT}/bin/napi-v6/darwin/arm64/onnxruntime_binding.node`),
    );
    assert.ok(
      problems.includes(
        `other platform's binary: ${ORT}/bin/napi-v6/linux/x64/libonnxruntime.so.1`,
      ),
    );
  });
});

describe('listZip', () => {
  it('lists the entries of a zip written by another tool (python3 zipfile)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'code-rlhf-zip-'));
    try {
      const file = path.join(dir, 'x.zip');
      const script =
        'import sys, zipfile\n' +
        'with zipfile.ZipFile(sys.argv[1], "w") as z:\n' +
        '    z.writestr("extension/package.json", "{}")\n' +
        '    z.writestr("extension/dist/a b.js", "x" * 1000)\n' +
        '    z.writestr("extension.vsixmanifest", "<x/>")\n';
      const result = spawnSync('python3', ['-c', script, file], { encoding: 'utf8' });
      assert.strictEqual(result.status, 0, result.stderr);
      assert.deepStrictEqual(listZip(file), [
        'extension/package.json',
        'extension/dist/a b.js',
        'extension.vsixmanifest',
      ]);
      fs.writeFileSync(file, 'not a zip');
      assert.throws(() => listZip(file), /not a zip file/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
