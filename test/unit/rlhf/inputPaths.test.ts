import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cli } from '../../support/cli';
import { inputPathProblem } from '../../../src/rlhf/inputPaths';

const MODEL = path.join(__dirname, '../../fixtures/model/tiny-llama');

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('input paths of the train, eval, demo and data commands', function () {
  this.timeout(60000);
  let dir: string;
  let missing: string;
  let folder: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'input-paths-'));
    missing = path.join(dir, 'missing.jsonl');
    folder = path.join(dir, 'folder');
    fs.mkdirSync(folder);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('says what is wrong with a path: missing, of the wrong kind, or fine', () => {
    const file = path.join(dir, 'file.txt');
    fs.writeFileSync(file, 'x');
    assert.strictEqual(inputPathProblem(missing, 'file'), 'does not exist');
    assert.strictEqual(inputPathProblem(path.join(file, 'x'), 'folder'), 'does not exist');
    assert.strictEqual(inputPathProblem(folder, 'file'), 'is a folder, not a file');
    assert.strictEqual(inputPathProblem(file, 'folder'), 'is not a folder');
    assert.strictEqual(inputPathProblem(' ', 'file'), 'is empty');
    assert.strictEqual(inputPathProblem(file, 'file'), undefined);
    assert.strictEqual(inputPathProblem(folder, 'file or folder'), undefined);
    assert.strictEqual(inputPathProblem(file, 'file or folder'), undefined);
  });

  it('refuses a train job whose store is missing or a folder, before its run folder exists', async () => {
    const store = 'a preference store \\(the JSONL file of judgments';
    for (const kind of ['rm', 'dpo', 'ppo']) {
      for (const [dataFile, problem] of [
        [missing, 'does not exist'],
        [folder, 'is a folder, not a file'],
        // In a folder that does not exist: openStore would have made it.
        [path.join(dir, 'sub', 'store.jsonl'), 'does not exist'],
      ]) {
        const runDir = path.join(dir, `run-${kind}`);
        const extra = kind === 'ppo' ? ['--rewardModelDir', folder] : [];
        const run = await cli(
          ...['train', kind, '--run-dir', runDir, '--modelDir', MODEL, '--dataFile', dataFile],
          ...extra,
        );
        assert.strictEqual(run.code, 1, `${kind} ${dataFile}: ${run.out}\n${run.err}`);
        assert.match(
          run.err,
          new RegExp(
            `^\\[error\\] config "dataFile": ${escape(dataFile)} ${problem}; expected ${store}`,
            'm',
          ),
        );
        assert.doesNotMatch(run.err + run.out, /no training pairs/);
        assert.strictEqual(fs.existsSync(runDir), false, `${kind}: the run folder was made`);
      }
    }
    assert.deepStrictEqual(fs.readdirSync(dir), ['folder']);
    // An existing empty store still says there is nothing to train on.
    const empty = path.join(dir, 'empty.jsonl');
    fs.writeFileSync(empty, '');
    const run = await cli(
      ...['train', 'rm', '--run-dir', path.join(dir, 'run'), '--modelDir', MODEL],
      ...['--dataFile', empty],
    );
    assert.strictEqual(run.code, 1);
    assert.match(run.err, /no training pairs \(judge some comparisons first\)/);
  });

  it('refuses the other missing input folders of train jobs, naming the key', async () => {
    const store = path.join(dir, 'empty.jsonl');
    fs.writeFileSync(store, '');
    const runDir = path.join(dir, 'run');
    const cases: [string[], RegExp][] = [
      [
        ['rm', '--modelDir', folder, '--dataFile', store],
        new RegExp(`config "modelDir": ${escape(folder)} has no config\\.json; expected a model`),
      ],
      [
        ['ppo', '--modelDir', MODEL, '--dataFile', store, '--rewardModelDir', missing],
        new RegExp(`config "rewardModelDir": ${escape(missing)} does not exist; expected a reward`),
      ],
      [
        ['gate', '--modelDir', MODEL, '--rewardModelDir', folder, '--adapterDir', missing],
        new RegExp(`config "adapterDir": ${escape(missing)} does not exist; expected a PEFT`),
      ],
      [
        ['gate', '--modelDir', MODEL, '--rewardModelDir', folder, '--adapterDir', folder],
        /config "adapterDir": .* has no adapter_config\.json; expected a PEFT adapter folder/,
      ],
    ];
    for (const [args, message] of cases) {
      const run = await cli('train', ...args, '--run-dir', runDir);
      assert.strictEqual(run.code, 1, args.join(' '));
      assert.match(run.err, message);
      assert.strictEqual(fs.existsSync(runDir), false, args.join(' '));
    }
    const config = await cli('train', 'rm', '--run-dir', runDir, '--config', missing);
    assert.strictEqual(config.code, 2);
    assert.strictEqual(
      config.err,
      `code-rlhf: --config ${missing} does not exist; expected a JSON file of config keys ` +
        '(such as {"epochs": 2})',
    );
  });

  it('refuses missing eval and demo inputs as a bad command line, naming the flag', async () => {
    const corpus = path.join(dir, 'corpus.jsonl');
    fs.writeFileSync(corpus, JSON.stringify({ text: 'const a = [1, 2, 3].map((x) => x);\n' }));
    // Only checked to be there: every case below is refused before anything is loaded.
    const adapter = path.join(dir, 'adapter');
    fs.mkdirSync(adapter);
    fs.writeFileSync(path.join(adapter, 'adapter_config.json'), '{}');
    const evalArgs = { model: MODEL, adapter, prompts: corpus };
    const cases: [Record<string, string>, string][] = [
      [{ model: missing }, `--model ${missing} does not exist; expected a model folder`],
      [{ adapter: missing }, `--adapter ${missing} does not exist; expected a PEFT adapter`],
      [{ adapter: folder }, `--adapter ${folder} has no adapter_config.json; expected a PEFT`],
      [{ prompts: missing }, `--prompts ${missing} does not exist; expected a corpus split`],
      [{ baseline: missing }, `--baseline ${missing} does not exist; expected a PEFT adapter`],
      [{ 'reward-model': corpus }, `--reward-model ${corpus} is not a folder; expected a reward`],
    ];
    for (const [change, message] of cases) {
      const flags = Object.entries({ ...evalArgs, ...change }).flatMap(([k, v]) => [`--${k}`, v]);
      const run = await cli('eval', ...flags, '--count', '1');
      assert.strictEqual(run.code, 2, JSON.stringify(change));
      assert.ok(run.err.startsWith(`code-rlhf: ${message}`), run.err);
    }
    // The demo refuses missing prompts before it makes its work dir or loads the model.
    const workDir = path.join(dir, 'demo');
    const demo = await cli('demo', '--model', MODEL, '--prompts', missing, '--work-dir', workDir);
    assert.strictEqual(demo.code, 2);
    assert.match(demo.err, new RegExp(`--prompts ${escape(missing)} does not exist`));
    assert.doesNotMatch(demo.out, /^model /m);
    assert.strictEqual(fs.existsSync(workDir), false);
  });

  it('refuses a data command input that is missing or a folder, saying what belongs there', async () => {
    const stats = await cli('data', 'stats', folder);
    assert.strictEqual(stats.code, 2);
    assert.match(stats.err, new RegExp(`${escape(folder)} is a folder, not a file; expected a`));
    const repair = await cli('data', 'repair', missing);
    assert.strictEqual(repair.code, 2);
    assert.match(repair.err, /missing\.jsonl does not exist; expected a preference store/);
    assert.strictEqual(fs.existsSync(missing), false);
  });
});
