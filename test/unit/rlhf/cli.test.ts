import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runCli } from '../../../src/cli/main';
import { openStore } from '../../../src/data/store';
import { Oracle, cleanCodeRule } from '../../../src/rlhf/oracle';
import { oracleRecord } from '../../../src/rlhf/preferences';

const MODEL = path.join(__dirname, '../../fixtures/model/tiny-llama');

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t) }, out, err };
}

describe('code-rlhf train / eval CLI', function () {
  this.timeout(120000);

  it('trains a reward model, then DPO, from a store; names bad flags', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-train-'));
    const data = path.join(dir, 'prefs.jsonl');
    const store = await openStore(data);
    const oracle = new Oracle(cleanCodeRule);
    await store.appendMany(
      Array.from(
        { length: 24 },
        (_, i) =>
          oracleRecord(oracle, `x${i % 8} = `, `${i};\n`, '((', { model: 'm', index: i }).record,
      ),
    );
    const common = [
      '--modelDir',
      MODEL,
      '--dataFile',
      data,
      '--loraRank',
      '2',
      '--maxPromptTokens',
      '12',
      '--maxCompletionTokens',
      '6',
    ];
    const rm = io();
    const code = await runCli(
      [
        'train',
        'rm',
        '--run-dir',
        path.join(dir, 'run'),
        '--epochs',
        '2',
        '--batchSize',
        '4',
        ...common,
      ],
      rm.io,
    );
    assert.strictEqual(code, 0, rm.err.join('\n'));
    assert.ok(
      rm.out.some((l) => /^\[done\] (completed|early-stopped) -> .*reward-model/.test(l)),
      rm.out.join('\n'),
    );
    assert.ok(rm.out.some((l) => /eval\/accuracy/.test(l)));
    assert.ok(fs.existsSync(path.join(dir, 'run', 'reward-model', 'reward_head.safetensors')));

    const dpo = io();
    assert.strictEqual(
      await runCli(
        ['train', 'dpo', '--run-dir', path.join(dir, 'run'), '--epochs', '1', ...common],
        dpo.io,
      ),
      0,
      dpo.err.join('\n'),
    );
    assert.ok(fs.existsSync(path.join(dir, 'run', 'dpo-policy', 'adapter_model.safetensors')));

    // eval loads the model, the adapter and the reward model through the host and judges with both.
    const corpus = path.join(dir, 'corpus.jsonl');
    fs.writeFileSync(
      corpus,
      [
        { text: 'const total = items.reduce((sum, item) => sum + item.price, 0);\n' },
        { text: 'function scale(values, factor) {\n  return values.map((v) => v * factor);\n}\n' },
      ]
        .map((r) => JSON.stringify(r))
        .join('\n'),
    );
    const evaluation = io();
    const evalArgs = [
      ...['--model', MODEL, '--adapter', path.join(dir, 'run', 'dpo-policy')],
      ...['--prompts', corpus, '--count', '3', '--max-new-tokens', '4', '--oracle', 'clean-code'],
      ...['--reward-model', path.join(dir, 'run', 'reward-model')],
    ];
    assert.strictEqual(
      await runCli(['eval', ...evalArgs], evaluation.io),
      0,
      evaluation.err.join('\n'),
    );
    const report = evaluation.out.join('\n');
    assert.match(report, /^prompts: 3$/m);
    assert.match(report, /^oracle win rate \(tuned\): /m);
    assert.match(report, /^reward-model win rate \(tuned\): /m);
    assert.match(report, /^mean KL per completion: -?\d+\.\d{4} nats$/m);

    const bad = io();
    assert.strictEqual(
      await runCli(['train', 'rm', '--run-dir', dir, '--epochs', 'many', ...common], bad.io),
      2,
    );
    assert.match(bad.err.join('\n'), /--epochs needs a number, got "many"/);
    const unknown = io();
    assert.strictEqual(await runCli(['train', 'sft', '--run-dir', dir], unknown.io), 2);
    assert.match(unknown.err.join('\n'), /unknown trainer "sft"; allowed: rm, ppo, dpo/);
    const failed = io();
    assert.strictEqual(await runCli(['train', 'ppo', '--run-dir', dir, ...common], failed.io), 1);
    assert.match(failed.out.join('\n'), /\[done\] failed: PPO config "rewardModelDir" is empty/);
  });
});
