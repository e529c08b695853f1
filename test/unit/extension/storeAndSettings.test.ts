import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readSettings } from '../../../src/extension/config';
import { modelFolderProblems } from '../../../src/extension/modelFolder';
import { storeLocation, type UriLike } from '../../../src/extension/storeLocation';

const uri = (p: string, scheme = 'file'): UriLike => ({ scheme, authority: '', path: p });
// Like vscode.Uri.joinPath: POSIX segments on the URI path, whatever the OS.
const join = (base: UriLike, ...segments: string[]): UriLike => ({
  ...base,
  path: path.posix.join(base.path, ...segments),
});
const globalStorage = uri('/home/u/.vscode-server/data/User/globalStorage/code-rlhf.code-rlhf');

describe('V3: preference store location', () => {
  it('(a) multi-root: records go to the folder holding the active file, not the first one', () => {
    const folders = [
      { name: 'app', uri: uri('/ws/app') },
      { name: 'lib', uri: uri('/ws/lib') },
    ];
    const location = storeLocation(
      'workspace',
      folders,
      uri('/ws/lib/src/x.ts'),
      globalStorage,
      join,
    );
    assert.deepStrictEqual(location, {
      uri: uri('/ws/lib/.code-rlhf/judgments.jsonl'),
      scope: 'workspace',
      folder: 'lib',
    });
    // A folder whose name is a prefix of another is not a parent of it.
    const prefixed = storeLocation(
      'workspace',
      [{ name: 'ws-lib', uri: uri('/ws/li') }, ...folders],
      uri('/ws/lib/a.ts'),
      globalStorage,
      join,
    );
    assert.strictEqual(prefixed.folder, 'lib');
  });

  it('(b) no folder open or an untitled file: the global store, no crash', () => {
    for (const document of [uri('/tmp/x.ts'), uri('Untitled-1', 'untitled'), undefined]) {
      const location = storeLocation('workspace', [], document, globalStorage, join);
      assert.strictEqual(location.scope, 'global');
      assert.strictEqual(location.uri.path, `${globalStorage.path}/judgments.jsonl`);
    }
  });

  it('(c) a Linux host with a Windows UI still builds POSIX paths from URIs', () => {
    const remote = (p: string) => ({ scheme: 'vscode-remote', authority: 'wsl+Ubuntu', path: p });
    const folders = [{ name: 'proj', uri: remote('/home/u/proj') }];
    const location = storeLocation(
      'workspace',
      folders,
      remote('/home/u/proj/a.py'),
      globalStorage,
      join,
    );
    assert.strictEqual(location.uri.path, '/home/u/proj/.code-rlhf/judgments.jsonl');
    assert.ok(!location.uri.path.includes('\\') && !/^\/[A-Za-z]:/.test(location.uri.path));
    // A document on another authority is not inside the folder.
    const other = storeLocation(
      'workspace',
      folders,
      uri('/home/u/proj/a.py'),
      globalStorage,
      join,
    );
    assert.strictEqual(other.scope, 'global');
  });

  it('global scope ignores the folders', () => {
    const location = storeLocation(
      'global',
      [{ name: 'app', uri: uri('/ws/app') }],
      uri('/ws/app/x.ts'),
      globalStorage,
      join,
    );
    assert.strictEqual(location.scope, 'global');
  });
});

describe('settings', () => {
  it('falls back to defaults and names each bad value', () => {
    const values: Record<string, unknown> = {
      candidateCount: 9,
      storeScope: 'cloud',
      insertChosen: 'yes',
      excludeGlobs: ['**/*.env'],
    };
    const { settings, problems } = readSettings((key) => values[key]);
    assert.strictEqual(settings.candidateCount, 4);
    assert.strictEqual(settings.storeScope, 'global');
    assert.strictEqual(settings.insertChosen, true);
    assert.deepStrictEqual(settings.excludeGlobs, ['**/*.env']);
    assert.deepStrictEqual(problems, [
      'codeRlhf.candidateCount is 9; allowed: an integer from 2 to 8. Using the default.',
      'codeRlhf.insertChosen is "yes"; allowed: true or false. Using the default.',
      'codeRlhf.storeScope is "cloud"; allowed: "global" or "workspace". Using the default.',
    ]);
  });
});

describe('model folder check', () => {
  it('names each missing file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'model-folder-'));
    try {
      fs.writeFileSync(path.join(dir, 'config.json'), '{"architectures": ["LlamaForCausalLM"]}');
      assert.deepStrictEqual(modelFolderProblems(dir), [
        `${path.join(dir, 'tokenizer.json')} is missing (a fast tokenizer is required)`,
        `no model.safetensors or model.safetensors.index.json in ${dir} ` +
          '(only safetensors weights are supported)',
      ]);
      assert.deepStrictEqual(modelFolderProblems(path.join(dir, 'nope')), [
        `${path.join(dir, 'nope')} does not exist or cannot be read`,
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('accepts the tiny real checkpoint fixture', () => {
    const fixture = path.join(__dirname, '..', '..', 'fixtures', 'model', 'tiny-llama');
    assert.deepStrictEqual(modelFolderProblems(fixture), []);
  });
});
