import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cli } from '../../support/cli';

const MODEL = path.join(__dirname, '../../fixtures/model/tiny-llama');
const DECIMAL = '; allowed: a finite decimal number (such as 2, -0.5 or 1e-4)';

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
        assert.strictEqual(run.err, `code-rlhf: --${flag} needs a number, got ${shown}${DECIMAL}`);
      }
    }
    const workDir = path.join(dir, 'demo');
    const demoArgs = ['demo', '--model', MODEL, '--prompts', corpus, '--work-dir', workDir];
    const demoFlags = ['noise', 'position-bias', 'judgments', 'eval-prompts', 'iterations'];
    for (const flag of [...demoFlags, 'rm-epochs', 'seed', 'max-new-tokens']) {
      for (const [value, shown] of emptyValues(flag)) {
        const run = await cli(...demoArgs, ...value);
        assert.strictEqual(run.code, 2, `demo ${value.join(' ')}: ${run.err}`);
        assert.strictEqual(run.err, `code-rlhf: --${flag} needs a number, got ${shown}${DECIMAL}`);
      }
    }
    assert.strictEqual(fs.existsSync(workDir), false);
    const train = await cli('train', 'rm', '--run-dir', path.join(dir, 'run'), '--epochs=');
    assert.strictEqual(train.code, 2);
    assert.strictEqual(train.err, `code-rlhf: --epochs needs a number, got ""${DECIMAL}`);
  });

  it('reads only decimal numbers, not the hex, binary or octal that Number() also reads', async () => {
    for (const value of ['0x10', '0b1', '0o7', 'Infinity', '1e400', '1e', '.']) {
      const run = await cli('train', 'rm', '--run-dir', path.join(dir, 'run'), '--epochs', value);
      assert.strictEqual(run.code, 2, value);
      assert.strictEqual(
        run.err,
        `code-rlhf: --epochs needs a number, got ${JSON.stringify(value)}${DECIMAL}`,
      );
    }
    const evalArgs = ['eval', '--model', MODEL, '--adapter', adapter, '--prompts', corpus];
    const run = await cli(...evalArgs, '--count', '0x10');
    assert.strictEqual(run.err, `code-rlhf: --count needs a number, got "0x10"${DECIMAL}`);
    // Decimal spellings all pass this check and reach the range check (epochs >= 1).
    for (const value of ['-2', '+0', '0.0', ' 0 ', '.0', '0e3', '-0E-1']) {
      const train = await cli('train', 'rm', '--run-dir', path.join(dir, 'run'), '--epochs', value);
      assert.match(train.err, /"epochs" is -?\d+; allowed: >= 1 and <= 1000$/, value);
    }
  });

  it("eval checks its number flags with the trainers' ranges before loading anything", async () => {
    const evalArgs = ['eval', '--model', MODEL, '--adapter', adapter, '--prompts', corpus];
    const seed = 'allowed: an integer >= 0 and <= 4294967295';
    const cases: [string[], string][] = [
      [['--seed', '1e308'], '--seed is 1e+308; allowed: >= 0 and <= 4294967295'],
      [['--seed', '4294967296'], '--seed is 4294967296; allowed: >= 0 and <= 4294967295'],
      [['--seed', '-1'], '--seed is -1; allowed: >= 0 and <= 4294967295'],
      [['--seed', '1.5'], `--seed is 1.5; ${seed}`],
      [['--temperature', '0'], '--temperature is 0; allowed: >= 0.05 and <= 5'],
      [['--temperature', '-1'], '--temperature is -1; allowed: >= 0.05 and <= 5'],
      [['--temperature', '1e308'], '--temperature is 1e+308; allowed: >= 0.05 and <= 5'],
      [['--max-new-tokens', '0'], '--max-new-tokens is 0; allowed: >= 1 and <= 131072'],
      [['--max-lines', '-1'], '--max-lines is -1; allowed: >= 0'],
      [['--count', '1e9'], '--count is 1000000000; allowed: >= 1 and <= 10000'],
      [['--count', '0'], '--count is 0; allowed: >= 1 and <= 10000'],
      [['--count', '1.5'], '--count is 1.5; allowed: an integer >= 1 and <= 10000'],
    ];
    for (const [flags, message] of cases) {
      const run = await cli(...evalArgs, ...flags);
      assert.strictEqual(run.code, 2, flags.join(' '));
      assert.strictEqual(run.err, `code-rlhf: ${message}`, flags.join(' '));
    }
  });

  it('eval --count beyond what the prompt source can give fails at once, saying how many', async () => {
    // One line of 34 characters: 26 places to cut a prompt in it.
    const started = Date.now();
    const run = await cli(
      ...['eval', '--model', MODEL, '--adapter', adapter, '--prompts', corpus, '--count', '27'],
    );
    assert.strictEqual(run.code, 1);
    assert.match(
      run.err,
      /^code-rlhf: asked for 27 distinct prompts, but 1 sources hold at most 26: /,
    );
    assert.doesNotMatch(run.err, /^\s+at /m);
    const full = await cli(
      ...['eval', '--model', MODEL, '--adapter', adapter, '--prompts', corpus, '--count', '10000'],
    );
    assert.match(full.err, /asked for 10000 distinct prompts, but 1 sources hold at most 26/);
    assert.ok(Date.now() - started < 5000, 'no search through count x 50 attempts');
  });

  it('--config: reads a file with a byte order mark, and shows 1e400 as Infinity', async () => {
    const run = (config: string) =>
      cli('train', 'rm', '--run-dir', path.join(dir, 'run'), '--config', config);
    const bom = path.join(dir, 'bom.json');
    // epochs 0: refused by the trainer's config check, so the file was read as JSON.
    fs.writeFileSync(bom, '\uFEFF{"epochs": 0}');
    const fromBom = await run(bom);
    assert.match(fromBom.err, /reward model config: "epochs" is 0; allowed: >= 1 and <= 1000$/m);
    const huge = path.join(dir, 'huge.json');
    fs.writeFileSync(huge, '{"epochs": 1e400}');
    const fromHuge = await run(huge);
    assert.match(
      fromHuge.err,
      /reward model config: "epochs" is Infinity; allowed: a finite number$/m,
    );
  });
});
