import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runCli } from '../../../src/cli/main';
import { prepareRunFolder } from '../../../src/rlhf/runFolder';

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('run folder checks before a job starts', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'run-folder-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('creates the checkpoint folder and leaves no test file behind', () => {
    const runDir = path.join(dir, 'a', 'run');
    prepareRunFolder(runDir, 'reward-model');
    assert.deepStrictEqual(fs.readdirSync(runDir), ['checkpoints']);
    assert.deepStrictEqual(fs.readdirSync(path.join(runDir, 'checkpoints', 'reward-model')), []);
    prepareRunFolder(path.join(dir, 'gate'));
    assert.deepStrictEqual(fs.readdirSync(path.join(dir, 'gate')), []);
  });

  it('refuses an empty path, and files where its folders go, naming them', () => {
    assert.throws(() => prepareRunFolder(''), /^Error: the run folder is "": name the folder/);
    assert.throws(() => prepareRunFolder('  ', 'policy'), /the run folder is " {2}"/);
    const file = path.join(dir, 'afile');
    fs.writeFileSync(file, 'precious');
    assert.throws(
      () => prepareRunFolder(file, 'policy'),
      new RegExp(`^Error: ${escape(file)} is a file, not a folder: .*choose another run folder$`),
    );
    assert.throws(
      () => prepareRunFolder(path.join(file, 'run')),
      new RegExp(`^Error: cannot create the run folder ${escape(path.join(file, 'run'))}: ENOTDIR`),
    );
    for (const blocker of ['checkpoints', path.join('checkpoints', 'policy'), 'policy']) {
      const runDir = path.join(dir, `run-${blocker.replace(/\W/g, '-')}`);
      fs.mkdirSync(path.dirname(path.join(runDir, blocker)), { recursive: true });
      fs.writeFileSync(path.join(runDir, blocker), 'precious');
      assert.throws(
        () => prepareRunFolder(runDir, 'policy'),
        new RegExp(
          `^Error: ${escape(path.join(runDir, blocker))} is a file, not a folder: the run ` +
            'writes in a folder there; move the file away or choose another run folder$',
        ),
      );
      assert.strictEqual(fs.readFileSync(path.join(runDir, blocker), 'utf8'), 'precious');
    }
    assert.strictEqual(fs.readFileSync(file, 'utf8'), 'precious');
  });

  it('train refuses them before it loads the model; --run-dir "" is a usage error', async () => {
    const file = path.join(dir, 'afile');
    fs.writeFileSync(file, 'precious');
    const blocked = path.join(dir, 'run');
    fs.mkdirSync(blocked);
    fs.writeFileSync(path.join(blocked, 'checkpoints'), 'precious');
    // The model folder does not exist: a run that got as far as loading it would say so.
    const common = ['--modelDir', path.join(dir, 'no-model'), '--dataFile', path.join(dir, 'x')];
    for (const [runDir, error] of [
      [file, `${escape(file)} is a file, not a folder`],
      [blocked, `${escape(path.join(blocked, 'checkpoints'))} is a file, not a folder`],
    ]) {
      for (const kind of ['rm', 'dpo']) {
        const out: string[] = [];
        const io = { out: (t: string) => out.push(t), err: (t: string) => out.push(t) };
        assert.strictEqual(await runCli(['train', kind, '--run-dir', runDir, ...common], io), 1);
        assert.match(out.join('\n'), new RegExp(`\\[done\\] failed: ${error}`));
      }
    }
    const out: string[] = [];
    const io = { out: (t: string) => out.push(t), err: (t: string) => out.push(t) };
    assert.strictEqual(await runCli(['train', 'rm', '--run-dir', '', ...common], io), 2);
    assert.match(out.join('\n'), /--run-dir is empty; name a folder for the run/);
  });
});
