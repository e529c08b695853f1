import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runCli } from '../../../src/cli/main';

const MODEL = path.join(__dirname, '../../fixtures/model/tiny-llama');

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('number flags of train, eval and demo', function () {
  this.timeout(60000);
  let dir: string;
  let corpus: string;
  let adapter: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-numbers-'));
    corpus = path.join(dir, 'corpus.jsonl');
    fs.writeFileSync(corpus, JSON.stringify({ text: 'const a = [1, 2, 3].map((x) => x);\n' }));
    // Only checked to be there: every run below is refused before anything is loaded.
    adapter = path.join(dir, 'adapter');
    fs.mkdirSync(adapter);
    fs.writeFileSync(path.join(adapter, 'adapter_config.json'), '{}');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** The ways to give a flag an empty value: `--x=`, `--x ""`, `--x " "`. */
  const emptyValues = (flag: string): [string[], string][] => [
    [[`--${flag}=`], '""'],
    [[`--${flag}`, ''], '""'],
    [[`--${flag}`, ' '], '" "'],
  ];

  it('refuses an empty value, naming the flag, as train does', async () => {
    const evalArgs = ['eval', '--model', MODEL, '--adapter', adapter, '--prompts', corpus];
    for (const flag of ['count', 'seed', 'temperature', 'max-new-tokens', 'max-lines']) {
      for (const [value, shown] of emptyValues(flag)) {
        const run = await cli(...evalArgs, ...(flag === 'count' ? [] : ['--count', '1']), ...value);
        assert.strictEqual(run.code, 2, `eval ${value.join(' ')}: ${run.err}`);
        assert.strictEqual(run.err, `code-rlhf: --${flag} needs a number, got ${shown}`);
      }
    }
    const workDir = path.join(dir, 'demo');
    const demoArgs = ['demo', '--model', MODEL, '--prompts', corpus, '--work-dir', workDir];
    const demoFlags = ['noise', 'position-bias', 'judgments', 'eval-prompts', 'iterations'];
    for (const flag of [...demoFlags, 'rm-epochs', 'seed', 'max-new-tokens']) {
      for (const [value, shown] of emptyValues(flag)) {
        const run = await cli(...demoArgs, ...value);
        assert.strictEqual(run.code, 2, `demo ${value.join(' ')}: ${run.err}`);
        assert.strictEqual(run.err, `code-rlhf: --${flag} needs a number, got ${shown}`);
      }
    }
    assert.strictEqual(fs.existsSync(workDir), false);
    const train = await cli('train', 'rm', '--run-dir', path.join(dir, 'run'), '--epochs=');
    assert.strictEqual(train.code, 2);
    assert.strictEqual(train.err, 'code-rlhf: --epochs needs a number, got ""');
  });
});
