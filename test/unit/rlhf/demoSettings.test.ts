import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cli } from '../../support/cli';

const MODEL = path.join(__dirname, '../../fixtures/model/tiny-llama');

describe('code-rlhf demo settings', function () {
  this.timeout(60000);
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-settings-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('refuses each out of range, naming its flag and the range, before any work', async () => {
    const corpus = path.join(dir, 'corpus.jsonl');
    fs.writeFileSync(corpus, JSON.stringify({ text: 'const a = [1, 2, 3].map((x) => x);\n' }));
    const noise =
      '>= 0 and < 0.5 (the chance a judgment is flipped; at 0.5 the labels carry no signal)';
    const bias =
      '>= 0 and < 1 (the chance the first candidate shown wins unseen; at 1 every judgment does)';
    const judgments =
      'an integer >= 2 (the reward model trains on some judged prompts and validates on others)';
    const evalPrompts = 'an integer >= 4 (fewer are never enough to promote the tuned adapter)';
    const cases: [string, string, string][] = [
      ['--noise', '0.5', `--noise is 0.5; allowed: ${noise}`],
      ['--noise', '-0.1', `--noise is -0.1; allowed: ${noise}`],
      ['--position-bias', '1', `--position-bias is 1; allowed: ${bias}`],
      ['--position-bias', '-1', `--position-bias is -1; allowed: ${bias}`],
      ['--judgments', '1', `--judgments is 1; allowed: ${judgments}`],
      ['--judgments', '2.5', `--judgments is 2.5; allowed: ${judgments}`],
      ['--eval-prompts', '3', `--eval-prompts is 3; allowed: ${evalPrompts}`],
      ['--eval-prompts', '0', `--eval-prompts is 0; allowed: ${evalPrompts}`],
      [
        '--max-new-tokens',
        '0',
        '--max-new-tokens (demo PPO config): "maxNewTokens" is 0; allowed: >= 1 and <= 131072',
      ],
      [
        '--iterations',
        '0',
        '--iterations (demo PPO config): "iterations" is 0; allowed: >= 1 and <= 100000',
      ],
      [
        '--rm-epochs',
        '0',
        '--rm-epochs (demo reward model config): "epochs" is 0; allowed: >= 1 and <= 1000',
      ],
      [
        '--seed',
        '-1',
        '--seed (demo reward model config): "seed" is -1; allowed: >= 0 and <= 4294967295',
      ],
      ['--oracle', 'nope', 'unknown oracle "nope"; allowed: '],
    ];
    const workDir = path.join(dir, 'work');
    for (const [flag, value, message] of cases) {
      const run = await cli(
        ...['demo', '--model', MODEL, '--prompts', corpus, '--work-dir', workDir, flag, value],
      );
      assert.strictEqual(run.code, 1, `${flag} ${value}: ${run.out}\n${run.err}`);
      assert.ok(run.err.startsWith(`code-rlhf: ${message}`), `${flag} ${value}: ${run.err}`);
      assert.doesNotMatch(run.out, /^model /m, `${flag} ${value}: the model was loaded`);
      assert.strictEqual(fs.existsSync(workDir), false, `${flag} ${value}: the work dir was made`);
    }
    // An empty work dir would be the current folder.
    const empty = await cli('demo', '--model', MODEL, '--prompts', corpus, '--work-dir=');
    assert.strictEqual(empty.code, 2);
    assert.match(empty.err, /^code-rlhf: --work-dir is empty; name a folder for the run/);
  });
});
