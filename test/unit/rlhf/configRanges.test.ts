import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runCli } from '../../../src/cli/main';
import { describeError } from '../../../src/host/errorReport';
import { SettingError } from '../../../src/model/settingError';
import {
  DPO_DEFAULTS,
  DPO_SPEC,
  PPO_DEFAULTS,
  PPO_SPEC,
  RM_DEFAULTS,
  RM_SPEC,
  parseConfig,
  type ConfigSpec,
} from '../../../src/rlhf/config';
import { parseGateConfig } from '../../../src/rlhf/promotionGate';

type Kind = 'rm' | 'ppo' | 'dpo';
const TRAINERS: Record<Kind, { spec: ConfigSpec<object>; defaults: object }> = {
  rm: { spec: RM_SPEC as ConfigSpec<object>, defaults: RM_DEFAULTS },
  ppo: { spec: PPO_SPEC as ConfigSpec<object>, defaults: PPO_DEFAULTS },
  dpo: { spec: DPO_SPEC as ConfigSpec<object>, defaults: DPO_DEFAULTS },
};

type Values = Record<string, unknown>;
const parse = (kind: Kind, input: Values): Values =>
  parseConfig(input, TRAINERS[kind].spec, TRAINERS[kind].defaults, `${kind} config`) as Values;

describe('trainer configs refuse values that train nothing, naming key, value and range', () => {
  // [trainers, key, refused value, what the error says is allowed]
  const refused: [Kind[], string, number, string][] = [
    [['rm', 'ppo', 'dpo'], 'learningRate', 0, '> 0 and <= 1'],
    [['rm', 'ppo', 'dpo'], 'learningRate', -1e-4, '> 0 and <= 1'],
    [['rm', 'ppo', 'dpo'], 'loraAlpha', 0, '> 0 and <= 1024'],
    [['rm', 'ppo', 'dpo'], 'seed', 2 ** 32, '>= 0 and <= 4294967295'],
    [['ppo'], 'clipRange', 0, '> 0 and <= 1'],
    [['ppo'], 'clipRangeValue', 0, '> 0'],
    [['ppo'], 'targetKl', 0, '> 0'],
    [['dpo'], 'beta', 0, '> 0 and <= 100'],
    // Values that ended in a NaN or infinite loss (or overflowed) instead of a refusal.
    [['rm', 'ppo', 'dpo'], 'loraAlpha', 1e308, '> 0 and <= 1024'],
    [['rm', 'ppo', 'dpo'], 'loraAlpha', 1025, '> 0 and <= 1024'],
    [['dpo'], 'beta', 1e308, '> 0 and <= 100'],
    [['ppo'], 'klCoef', 1e308, '>= 0 and <= 100'],
    [['ppo'], 'valueCoef', 1e308, '>= 0 and <= 100'],
    [['ppo'], 'missingEosPenalty', 100.5, '>= 0 and <= 100'],
  ];
  for (const [kinds, key, value, allowed] of refused) {
    it(`${key} ${value}`, () => {
      for (const kind of kinds) {
        assert.throws(
          () => parse(kind, { [key]: value }),
          (e: Error) =>
            e instanceof SettingError &&
            e.message ===
              `${kind} config: "${key}" is ${JSON.stringify(value)}; allowed: ${allowed}` &&
            describeError(e) === e.message,
        );
      }
    });
  }

  it('accepts the edges of each range, and the zeros that mean "off"', () => {
    assert.strictEqual(parse('rm', { learningRate: 1e-9 }).learningRate, 1e-9);
    assert.strictEqual(parse('dpo', { learningRate: 1 }).learningRate, 1);
    assert.strictEqual(parse('dpo', { beta: 1e-3 }).beta, 1e-3);
    assert.strictEqual(parse('rm', { seed: 2 ** 32 - 1 }).seed, 2 ** 32 - 1);
    assert.strictEqual(parse('rm', { loraAlpha: 1024 }).loraAlpha, 1024);
    assert.strictEqual(parse('dpo', { beta: 100 }).beta, 100);
    const highs = { klCoef: 100, valueCoef: 100, missingEosPenalty: 100 };
    assert.deepStrictEqual(
      Object.keys(highs).map((key) => parse('ppo', highs)[key]),
      [100, 100, 100],
    );
    const ppo = parse('ppo', {
      clipRange: 1,
      clipRangeValue: 1e-3,
      targetKl: 0.01,
      gamma: 0,
      lambda: 1,
      klCoef: 0,
      klBudget: 0,
      valueCoef: 0,
      missingEosPenalty: 0,
      rollbackRewardDrop: 0,
      maxLines: 0,
      checkpointEvery: 0,
    });
    assert.strictEqual(ppo.clipRange, 1);
    assert.strictEqual(ppo.klCoef, 0);
  });

  it("caps samplesPerPrompt at the generator's 64 candidates a request, in PPO and the gate", () => {
    assert.throws(
      () => parse('ppo', { samplesPerPrompt: 65 }),
      /^ConfigError: ppo config: "samplesPerPrompt" is 65; allowed: >= 1 and <= 64$/,
    );
    assert.throws(
      () => parseGateConfig({ samplesPerPrompt: 65 }),
      /^ConfigError: promotion gate config: "samplesPerPrompt" is 65; allowed: >= 1 and <= 64$/,
    );
    assert.strictEqual(parse('ppo', { samplesPerPrompt: 64 }).samplesPerPrompt, 64);
    assert.strictEqual(parseGateConfig({ samplesPerPrompt: 64 }).samplesPerPrompt, 64);
  });

  it("refuses a gate seed past 2^32 - 1, as the trainers' (it would replay a smaller one)", () => {
    for (const seed of [2 ** 32, 1e308]) {
      assert.throws(
        () => parseGateConfig({ seed }),
        (e: Error) =>
          e instanceof SettingError &&
          e.message === `promotion gate config: "seed" is ${seed}; allowed: >= 0 and <= 4294967295`,
      );
    }
    assert.strictEqual(parseGateConfig({ seed: 2 ** 32 - 1 }).seed, 2 ** 32 - 1);
  });

  it("refuses keys that are only Object's inherited properties as unknown keys", () => {
    for (const text of ['{"constructor": 5}', '{"toString": {}}', '{"__proto__": {"epochs": 9}}']) {
      const input = JSON.parse(text) as Record<string, unknown>;
      const key = Object.keys(input)[0];
      assert.throws(
        () => parseConfig(input, RM_SPEC, RM_DEFAULTS, 'rm config'),
        new RegExp(`^ConfigError: rm config: unknown key "${key}"; allowed: `),
        text,
      );
    }
  });

  it("shows a non-finite number as it is, not as JSON's null", () => {
    // What JSON.parse makes of {"epochs": 1e400} in a --config file.
    const config = JSON.parse('{"epochs": 1e400, "learningRate": -1e400}') as Values;
    assert.throws(
      () => parse('rm', { epochs: config.epochs }),
      /^ConfigError: rm config: "epochs" is Infinity; allowed: a finite number$/,
    );
    assert.throws(
      () => parse('rm', { learningRate: config.learningRate }),
      /^ConfigError: rm config: "learningRate" is -Infinity; allowed: a finite number$/,
    );
    assert.throws(() => parse('rm', { epochs: Number.NaN }), /"epochs" is NaN; allowed: a finite/);
  });

  it('refuses counts past their upper bound (a typo, not a run this trainer can finish)', () => {
    const cases: [Kind, string, number, string][] = [
      ['rm', 'maxPromptTokens', 1e15, '>= 1 and <= 131072'],
      ['rm', 'epochs', 1001, '>= 1 and <= 1000'],
      ['dpo', 'batchSize', 2 ** 53, '>= 1 and <= 65536'],
      ['ppo', 'iterations', 1e300, '>= 1 and <= 100000'],
      ['ppo', 'maxNewTokens', 131073, '>= 1 and <= 131072'],
    ];
    for (const [kind, key, value, range] of cases) {
      assert.throws(
        () => parse(kind, { [key]: value }),
        new RegExp(`"${key}" is ${String(value).replace('+', '\\+')}; allowed: ${range}$`),
        `${kind} ${key}`,
      );
    }
    assert.strictEqual(parse('ppo', { iterations: 100000 }).iterations, 100000);
  });

  it('says the whole range when a count is not an integer', () => {
    assert.throws(
      () => parse('rm', { epochs: 1.5 }),
      /"epochs" is 1.5; allowed: an integer >= 1 and <= 1000$/,
    );
    assert.throws(
      () => parse('ppo', { loraRank: 2.5 }),
      /"loraRank" is 2.5; allowed: an integer >= 1 and <= 256$/,
    );
  });

  it('train --learningRate 0 fails before loading anything, without a stack', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'config-ranges-'));
    try {
      const lines: string[] = [];
      const io = { out: (t: string) => lines.push(t), err: (t: string) => lines.push(t) };
      const args = ['train', 'rm', '--run-dir', path.join(dir, 'run')];
      const missing = ['--modelDir', path.join(dir, 'no-model'), '--dataFile', 'x'];
      assert.strictEqual(await runCli([...args, ...missing, '--learningRate', '0'], io), 1);
      const text = lines.join('\n');
      assert.match(text, /reward model config: "learningRate" is 0; allowed: > 0 and <= 1/);
      assert.doesNotMatch(text, /no-model|^\s+at /m);
      assert.ok(!fs.existsSync(path.join(dir, 'run')), 'no run folder made');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('demo: --rm-epochs 0 and --iterations 0 are refused before any work', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'config-ranges-demo-'));
    const model = path.join(__dirname, '../../fixtures/model/tiny-llama');
    try {
      const cases: [string[], string][] = [
        [
          ['--rm-epochs', '0'],
          '--rm-epochs (demo reward model config): "epochs" is 0; allowed: >= 1 and <= 1000',
        ],
        [
          ['--iterations', '0'],
          '--iterations (demo PPO config): "iterations" is 0; allowed: >= 1 and <= 100000',
        ],
        [
          ['--max-new-tokens', '0'],
          '--max-new-tokens (demo PPO config): "maxNewTokens" is 0; allowed: >= 1 and <= 131072',
        ],
      ];
      for (const [flags, message] of cases) {
        const lines: string[] = [];
        const io = { out: (t: string) => lines.push(t), err: (t: string) => lines.push(t) };
        const workDir = path.join(dir, 'work');
        const args = ['demo', '--model', model, '--prompts', 'src', '--work-dir', workDir];
        assert.strictEqual(await runCli([...args, ...flags], io), 1, lines.join('\n'));
        assert.strictEqual(lines[lines.length - 1], `code-rlhf: ${message}`, lines.join('\n'));
        assert.ok(!fs.existsSync(workDir), 'no work dir made');
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
