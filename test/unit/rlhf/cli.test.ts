import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { COMMANDS, runCli } from '../../../src/cli/main';
import { describeError, isInternalError } from '../../../src/host/errorReport';
import { openStore } from '../../../src/data/store';
import { GraphBuildError } from '../../../src/engine/graph';
import { InputValidationError } from '../../../src/engine/runner';
import { loadModel } from '../../../src/model/loader';
import { initLora, savePeftAdapter, type LoraConfig } from '../../../src/model/lora';
import { SettingError } from '../../../src/model/settingError';
import { saveHead } from '../../../src/rlhf/heads';
import { writeCheckpoint } from '../../../src/rlhf/checkpoint';
import { Oracle, cleanCodeRule } from '../../../src/rlhf/oracle';
import { oracleRecord } from '../../../src/rlhf/preferences';
import { appendOracleJudgments } from '../../support/oracleJudgments';

const MODEL = path.join(__dirname, '../../fixtures/model/tiny-llama');

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t) }, out, err };
}

/** Every file under `dir` (relative path -> content), to show that nothing in it changed. */
function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    files[path.relative(dir, file)] = fs.readFileSync(file, 'utf8');
  }
  return files;
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

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
    assert.match(failed.err.join('\n'), /^\[error\] PPO config "rewardModelDir" is empty/m);
    assert.deepStrictEqual(failed.out, ['[done] failed']);
  });

  it('prints the keys of a trainer with <command> --help, and exits 0', async () => {
    for (const kind of ['rm', 'ppo', 'dpo', 'gate']) {
      for (const args of [['--help'], ['--run-dir', 'x', '-h']]) {
        const run = io();
        assert.strictEqual(await runCli(['train', kind, ...args], run.io), 0, run.err.join('\n'));
        const help = run.out.join('\n');
        assert.match(help, new RegExp(`^${kind} keys:$`, 'm'));
        assert.strictEqual(help.match(/^\w+ keys:$/gm)?.length, 1, help);
        assert.match(help, /^ {2}--seed <number> {2}random seed \(default 0\)$/m);
      }
    }
    const rm = io();
    await runCli(['train', 'rm', '--help'], rm.io);
    assert.match(
      rm.out.join('\n'),
      /^ {2}--epochs <number> {2}passes over the training pairs \(default 3\)$/m,
    );
    // What a resume may change, from the trainers' own lists.
    assert.match(
      rm.out.join('\n'),
      /^ {4}rm: epochs, patience, checkpointEvery\n {4}dpo: epochs, patience, checkpointEvery\n {4}ppo: iterations, checkpointEvery$/m,
    );
    const gate = io();
    await runCli(['train', 'gate', '--help'], gate.io);
    assert.match(gate.out.join('\n'), /^ {2}--minPrompts <number> {2}fewest held-out prompts/m);
    for (const command of ['eval', 'demo']) {
      const run = io();
      assert.strictEqual(await runCli([command, '--model', 'm', '--help'], run.io), 0);
      assert.match(run.out.join('\n'), new RegExp(`^code-rlhf ${command}: `));
    }
  });

  it('prints the reason a train job failed once, on stderr, and exits 1', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-failed-'));
    try {
      const noPairs = path.join(dir, 'none.jsonl');
      fs.writeFileSync(noPairs, '');
      const cases: [string[], string][] = [
        // Inside the job: the store has no judgments.
        [['--modelDir', MODEL, '--dataFile', noPairs], `${noPairs}: no training pairs`],
        // A setting out of range, with --verbose (the stack trace names it once too).
        [
          ['--verbose', '--modelDir', MODEL, '--learningRate', '0'],
          'reward model config: "learningRate" is 0; allowed: > 0 and <= 1',
        ],
      ];
      for (const [flags, reason] of cases) {
        const run = io();
        const args = ['train', 'rm', '--run-dir', path.join(dir, 'run'), ...flags];
        assert.strictEqual(await runCli(args, run.io), 1, flags.join(' '));
        const all = [...run.out, ...run.err].join('\n');
        assert.strictEqual(all.split(reason).length - 1, 1, all);
        assert.ok(run.err.some((line) => line.startsWith(`[error] `) && line.includes(reason)));
        assert.strictEqual(run.out[run.out.length - 1], '[done] failed', all);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prints a stack trace only for internal errors, or for every error with --verbose', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-errors-'));
    const frame = /^\s+at /m;
    try {
      // Bad input inside a job: a model folder that does not exist.
      const args = ['train', 'rm', '--run-dir', path.join(dir, 'run')];
      const missing = [...args, '--modelDir', path.join(dir, 'none'), '--dataFile', 'x'];
      const plain = io();
      assert.strictEqual(await runCli(missing, plain.io), 1);
      const plainText = [...plain.err, ...plain.out].join('\n');
      assert.match(
        plainText,
        /\[error\] config "modelDir": .*none does not exist; expected a model/,
      );
      assert.doesNotMatch(plainText, frame);
      for (const flag of ['--verbose', '--debug']) {
        const verbose = io();
        assert.strictEqual(await runCli([flag, ...missing], verbose.io), 1);
        assert.match(verbose.err.join('\n'), frame);
      }
      // Bad input outside a job, and a usage error.
      const demo = io();
      assert.strictEqual(await runCli(['demo', '--model', path.join(dir, 'none')], demo.io), 2);
      assert.deepStrictEqual(demo.err.length, 1);
      assert.doesNotMatch(demo.err[0], frame);
      // A bug: the stack trace, and a request to report it.
      COMMANDS.push({
        name: 'crash',
        summary: '',
        run: async () => (undefined as unknown as { x: number }).x,
      });
      const crash = io();
      assert.strictEqual(await runCli(['crash'], crash.io), 1);
      assert.match(
        crash.err.join('\n'),
        /^code-rlhf: internal error \(please report it\): TypeError: /,
      );
      assert.match(crash.err.join('\n'), frame);
    } finally {
      const crash = COMMANDS.findIndex((c) => c.name === 'crash');
      if (crash >= 0) COMMANDS.splice(crash, 1);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    assert.strictEqual(isInternalError(new Error('bad key')), false);
    assert.strictEqual(isInternalError(new SyntaxError('Unexpected token')), false);
    // A RangeError JavaScript raises is a bug; one our code raises for a setting is not.
    assert.strictEqual(isInternalError(new RangeError('Invalid array length')), true);
    assert.strictEqual(isInternalError(new SettingError('topK must be >= 0, got -1')), false);
    assert.strictEqual(isInternalError('a string'), true);
    // Failures of our own code that are plain Error subclasses, not bad input.
    assert.strictEqual(isInternalError(new GraphBuildError('matmul: shapes [2] and [3]')), true);
    assert.strictEqual(isInternalError(new InputValidationError('x', '[1]', '[2]', 'm')), true);
    // Invariants are asserted (STYLE.md), as PPO's first-minibatch check is.
    const invariant = new assert.AssertionError({
      message: 'PPO invariant: first minibatch ratio 1.5, approx KL 0.2',
    });
    assert.strictEqual(isInternalError(invariant), true);
    assert.match(describeError(invariant), /^AssertionError.*: PPO invariant: .*\n\s+at /);
    assert.strictEqual(describeError(new Error('bad key')), 'bad key');
    assert.match(describeError(new Error('bad key'), true), /^Error: bad key\n\s+at /);
  });

  it('eval with a setting out of range prints its message, without a stack trace', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-eval-settings-'));
    try {
      const model = loadModel(MODEL);
      const adapterDir = path.join(dir, 'adapter');
      const lora: LoraConfig = { rank: 2, alpha: 4, targets: ['q_proj'], useRslora: false };
      savePeftAdapter(adapterDir, initLora(model, lora, 1), model.dir);
      const corpus = path.join(dir, 'corpus.jsonl');
      fs.writeFileSync(
        corpus,
        JSON.stringify({ text: 'const a = [1, 2, 3].map((x) => x * 2);\n' }),
      );
      const evalArgs = [
        ...['eval', '--model', MODEL, '--adapter', adapterDir, '--prompts', corpus],
        ...['--count', '1', '--oracle', 'clean-code'],
      ];
      // The ranges of PPO's and the gate's sampling settings, checked as a bad command line.
      const cases: [string[], string][] = [
        [['--max-new-tokens', '0'], '--max-new-tokens is 0; allowed: >= 1 and <= 131072'],
        [['--temperature', '0'], '--temperature is 0; allowed: >= 0.05 and <= 5'],
        [['--temperature', '-1'], '--temperature is -1; allowed: >= 0.05 and <= 5'],
        [['--max-lines', '-1'], '--max-lines is -1; allowed: >= 0'],
      ];
      for (const [flags, message] of cases) {
        const run = io();
        assert.strictEqual(await runCli([...evalArgs, ...flags], run.io), 2, flags.join(' '));
        assert.deepStrictEqual(run.err, [`code-rlhf: ${message}`], flags.join(' '));
      }
      // No prompts would report a mean KL of 0 over no completions.
      for (const count of ['0', '1.5']) {
        const run = io();
        const args = [...evalArgs.slice(0, -4), '--count', count, '--oracle', 'clean-code'];
        assert.strictEqual(await runCli(args, run.io), 2, count);
        assert.match(
          run.err.join('\n'),
          new RegExp(`--count is ${count}; allowed: (an integer )?>= 1 and <= 10000`),
        );
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('warns when a reward model folder has no run.json, naming it and the limits used', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-rm-limits-'));
    try {
      // A reward model assembled from an adapter and a head, without the run.json of a run.
      const model = loadModel(MODEL);
      const rmDir = path.join(dir, 'rm');
      const lora: LoraConfig = {
        rank: 2,
        alpha: 4,
        targets: ['q_proj', 'v_proj'],
        useRslora: false,
      };
      savePeftAdapter(rmDir, initLora(model, lora, 1), model.dir);
      const hidden = model.config.hiddenSize;
      saveHead(rmDir, 'reward', { weight: new Float32Array(hidden), bias: new Float32Array(1) });
      const corpus = path.join(dir, 'corpus.jsonl');
      fs.writeFileSync(
        corpus,
        JSON.stringify({ text: 'const a = [1, 2, 3].map((x) => x * 2);\n' }),
      );
      const warning = (limits: string) =>
        new RegExp(
          `^\\[warn\\] reward model ${escape(rmDir)} has no run\\.json, so the token limits it was ` +
            `trained with are unknown; scoring with this job's limits instead \\(${limits}\\)`,
          'm',
        );
      const evalArgs = [
        ...['eval', '--model', MODEL, '--adapter', rmDir, '--prompts', corpus, '--count', '1'],
        ...['--max-new-tokens', '2', '--reward-model', rmDir],
      ];
      const evaluation = io();
      assert.strictEqual(await runCli(evalArgs, evaluation.io), 0, evaluation.err.join('\n'));
      const evalLimits = 'maxPromptTokens 96, maxSuffixTokens 0, maxCompletionTokens 3';
      assert.match(evaluation.err.join('\n'), warning(evalLimits));

      const data = path.join(dir, 'prefs.jsonl');
      await appendOracleJudgments(data, 16, 'm');
      const ppo = io();
      const ppoArgs = [
        ...['train', 'ppo', '--run-dir', path.join(dir, 'ppo'), '--modelDir', MODEL],
        ...['--dataFile', data, '--rewardModelDir', rmDir, '--iterations', '1'],
        ...['--promptsPerBatch', '2', '--maxNewTokens', '2', '--minibatchSize', '2'],
        ...['--loraRank', '2', '--maxPromptTokens', '12', '--maxCompletionTokens', '6'],
      ];
      assert.strictEqual(await runCli(ppoArgs, ppo.io), 0, ppo.err.join('\n'));
      const ppoLimits = 'maxPromptTokens 12, maxSuffixTokens 32, maxCompletionTokens 6';
      assert.match(ppo.err.join('\n'), warning(ppoLimits));

      // With its run.json, the reward model scores with its own limits: no warning.
      const config = { maxPromptTokens: 12, maxCompletionTokens: 6, maxSuffixTokens: 0 };
      fs.writeFileSync(path.join(rmDir, 'run.json'), JSON.stringify({ config }));
      const known = io();
      assert.strictEqual(await runCli(evalArgs, known.io), 0, known.err.join('\n'));
      assert.doesNotMatch(known.err.join('\n'), /run\.json/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a --config file that is not a JSON object of keys, naming the file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-config-'));
    try {
      const file = path.join(dir, 'config.json');
      const cases: [string, string][] = [
        ['null', 'null'],
        ['5', '5'],
        ['"s"', '"s"'],
        ['true', 'true'],
        ['[1]', 'an array'],
      ];
      for (const [content, got] of cases) {
        fs.writeFileSync(file, content);
        const run = io();
        const args = ['train', 'rm', '--run-dir', path.join(dir, 'run'), '--config', file];
        assert.strictEqual(await runCli([...args, '--epochs', '2'], run.io), 2, content);
        assert.deepStrictEqual(run.err, [
          `code-rlhf: --config ${file}: expected a JSON object of config keys (such as ` +
            `{"epochs": 2}), got ${got}`,
        ]);
      }
      assert.deepStrictEqual(fs.readdirSync(dir), ['config.json']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start beside checkpoints the run did not write, and deletes none of them', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-checkpoints-'));
    try {
      const data = path.join(dir, 'prefs.jsonl');
      const oracle = new Oracle(cleanCodeRule);
      await (
        await openStore(data)
      ).appendMany(
        Array.from(
          { length: 24 },
          (_, i) =>
            oracleRecord(oracle, `x${i % 8} = `, `${i};\n`, '((', { model: 'm', index: i }).record,
        ),
      );
      const runDir = path.join(dir, 'run');
      const checkpoints = path.join(runDir, 'checkpoints', 'reward-model');
      // An earlier run's checkpoints, at steps that a run checkpointing every step reaches.
      writeCheckpoint(checkpoints, 2, { 'params.bin': 'earlier run, step 2' }, { step: 2 });
      writeCheckpoint(checkpoints, 4, { 'params.bin': 'earlier run, step 4' }, { step: 4 });
      const before = snapshot(checkpoints);
      const args = [
        ...['train', 'rm', '--run-dir', runDir, '--modelDir', MODEL, '--dataFile', data],
        ...['--epochs', '2', '--batchSize', '4', '--checkpointEvery', '1', '--loraRank', '2'],
        ...['--maxPromptTokens', '12', '--maxCompletionTokens', '6'],
      ];
      const fresh = {
        kept: new RegExp(
          `\\[error\\] ${escape(checkpoints)} already holds 2 step folders ` +
            '\\(step-0000002, step-0000004\\) of an earlier run, which a fresh run there would ' +
            'replace and prune; pass --resume to continue from them, or choose a new --run-dir',
        ),
        // Not "pass --resume": without the pointer that is refused too (below).
        deleted: new RegExp(
          `\\[error\\] ${escape(checkpoints)} already holds 2 step folders ` +
            '\\(step-0000002, step-0000004\\) of an earlier run \\(and no "latest" pointer\\), ' +
            'which a fresh run there would replace and prune; to resume from one, write its ' +
            `name into ${escape(path.join(checkpoints, 'latest'))} and pass --resume; or choose ` +
            'a new --run-dir',
        ),
      };
      // A fresh run, with the earlier run's pointer and after the user deleted it.
      for (const pointer of ['kept', 'deleted'] as const) {
        if (pointer === 'deleted') fs.rmSync(path.join(checkpoints, 'latest'));
        const run = io();
        assert.strictEqual(
          await runCli(args, run.io),
          1,
          `pointer ${pointer}: ${run.out.join('\n')}`,
        );
        assert.match(run.err.join('\n'), fresh[pointer]);
      }
      // Without the pointer, --resume would start from scratch: refused as well.
      const resumed = io();
      assert.strictEqual(await runCli([...args, '--resume'], resumed.io), 1);
      assert.match(
        resumed.err.join('\n'),
        new RegExp(
          `no "latest" pointer, so a resumed run would start from scratch and prune them; to ` +
            `resume from one, write its name into ${escape(path.join(checkpoints, 'latest'))} ` +
            'and pass --resume',
        ),
      );
      // The demo refuses such a work dir before it loads anything.
      const demo = io();
      assert.strictEqual(
        await runCli(['demo', '--model', MODEL, '--work-dir', runDir], demo.io),
        1,
      );
      assert.match(demo.err.join('\n'), /already holds 2 step folders .*choose a new --work-dir/);
      const { latest, ...stepFolders } = before;
      assert.strictEqual(latest, 'step-0000004\n');
      assert.deepStrictEqual(snapshot(checkpoints), stepFolders);
      assert.deepStrictEqual(fs.readdirSync(runDir), ['checkpoints']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
