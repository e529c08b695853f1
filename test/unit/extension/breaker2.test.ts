import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readAdapterHistory } from '../../../src/extension/adapterHistory';

describe('breaker 2: adapter history that cannot be read', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adapter-history-b2-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reports a history path that is a folder as a problem instead of throwing', async () => {
    const file = path.join(dir, 'adapters.jsonl');
    fs.mkdirSync(file);
    // "Select adapter" reads this; a throw would end the command with no usable message.
    const read = await readAdapterHistory(file);
    assert.deepStrictEqual(read.entries, []);
    assert.strictEqual(read.problems.length, 1);
    assert.match(read.problems[0], new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
    assert.match(read.problems[0], /cannot be read.*EISDIR/);
    assert.ok(fs.statSync(file).isDirectory(), 'the folder is left as it is');
  });
});
