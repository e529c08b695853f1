// Runs inside the extension host. Failure kind O4: the packaged extension must carry a working
// onnxruntime binding for this platform (and only this platform's), loadable by a process
// started with the editor's own runtime, as the model host is.
import * as assert from 'assert';
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import { encodeModel } from '../../../src/engine/onnxProto';

const EXTENSION_ID = 'code-rlhf.code-rlhf';

/** y = x + x over float32[3]. */
function doublingModel(): Uint8Array {
  return encodeModel({
    name: 'double',
    opset: 18,
    nodes: [{ opType: 'Add', domain: '', inputs: ['x', 'x'], outputs: ['y'], attrs: {} }],
    inputs: [{ name: 'x', dtype: 'float32', shape: [3] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [3] }],
    initializers: [],
  });
}

const CHILD = `
const ort = require(process.argv[1]);
ort.InferenceSession.create(process.argv[2])
  .then((s) => s.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2, 3.5]), [3]) }))
  .then((r) => process.stdout.write(JSON.stringify(Array.from(r.y.data))))
  .catch((e) => { process.stderr.write(String(e && e.stack)); process.exit(1); });
`;

describe('onnxruntime-node in the installed extension', () => {
  it('ships only this platform binding, and it runs a session in a child process', async () => {
    const extension = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} is not installed`);
    const ortDir = path.join(extension.extensionPath, 'node_modules', 'onnxruntime-node');
    const napi = path.join(ortDir, 'bin', 'napi-v6');
    assert.deepStrictEqual(fs.readdirSync(napi), [process.platform]);
    assert.deepStrictEqual(fs.readdirSync(path.join(napi, process.platform)), [process.arch]);
    const binding = path.join(napi, process.platform, process.arch, 'onnxruntime_binding.node');
    assert.ok(fs.existsSync(binding), `${binding} is missing`);

    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'code-rlhf-ort-'));
    try {
      const model = path.join(scratch, 'double.onnx');
      fs.writeFileSync(model, doublingModel());
      const output = await new Promise<string>((resolve, reject) => {
        execFile(
          process.execPath,
          ['-e', CHILD, ortDir, model],
          { env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' }, timeout: 30_000 },
          (error, stdout, stderr) =>
            error ? reject(new Error(`${error}\n${stderr}`)) : resolve(stdout),
        );
      });
      assert.deepStrictEqual(JSON.parse(output), [2, 4, 7]);
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });
});
