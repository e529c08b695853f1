import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runCli } from '../../../src/cli/main';
import { parseTrainingCommand, parseTrainingEvent } from '../../../src/protocol/training';
import { parseConfig } from '../../../src/rlhf/config';
import {
  rewardVerdict,
  shouldPromote,
  winRateByPrompt,
  type ComparisonItem,
} from '../../../src/rlhf/evaluate';
import {
  GATE_DEFAULTS,
  GATE_SPEC,
  HELD_OUT_FILE,
  parseGateConfig,
  readHeldOutPrompts,
  writeHeldOutPrompts,
} from '../../../src/rlhf/promotionGate';
import { decidePromotion } from '../../../src/rlhf/promotionRule';
import { clusteredWinRate, formatWinRate, tCritical95, winRate } from '../../../src/rlhf/winRate';

const rule = { minPrompts: 4, klBudget: 6 };

describe('promotion rule', () => {
  it('promotes when the lower end of the 95% interval is above 50% and KL is within budget', () => {
    // 26 of 32: rate 81.3%, Wilson interval [64.7%, 91.1%].
    const w = winRate(26, 6, 0);
    assert.ok(w.low > 0.5 && w.low < 0.66, `low ${w.low}`);
    const d = decidePromotion(
      { prompts: 8, rewardWinRate: w, meanKl: 1.5, baseline: 'the base model' },
      rule,
    );
    assert.deepStrictEqual(d, {
      promote: true,
      reason:
        'reward-model win rate against the base model 81.3% [95% CI 64.7%-91.1%] ' +
        '(26 wins, 6 losses, 0 ties, n=32), mean KL 1.500 nats (budget 6)',
    });
  });

  it('keeps the current policy when the win rate is above 50% only by chance', () => {
    // 20 of 32 = 62.5%, but the interval [45.3%, 77.1%] reaches below one half.
    const d = decidePromotion({ prompts: 8, rewardWinRate: winRate(20, 12, 0), meanKl: 1 }, rule);
    assert.strictEqual(d.promote, false);
    assert.match(
      d.reason,
      /^reward-model win rate against the previous policy 62\.5% \[95% CI 45\.3%-77\.1%\] .*: the lower end of its 95% interval is not above 50%$/,
    );
  });

  it('counts ties as half: an adapter that samples what the previous one samples never wins', () => {
    const allTies = decidePromotion(
      { prompts: 16, rewardWinRate: winRate(0, 0, 64), meanKl: 0 },
      rule,
    );
    assert.strictEqual(allTies.promote, false);
    assert.match(allTies.reason, /50\.0% \[95% CI 38\.1%-61\.9%\] \(0 wins, 0 losses, 64 ties/);
  });

  it('refuses too few held-out prompts before looking at the numbers, and says what to do', () => {
    const d = decidePromotion({ prompts: 3, rewardWinRate: winRate(12, 0, 0), meanKl: 0 }, rule);
    assert.deepStrictEqual(d, {
      promote: false,
      reason:
        'only 3 held-out prompts to compare on (at least 4 needed); judge comparisons in more ' +
        'places and train again',
    });
    assert.match(
      decidePromotion({ prompts: 1, meanKl: Number.NaN }, rule).reason,
      /^only 1 held-out prompt to compare on/,
    );
  });

  it('refuses a KL over the budget or not a number, whatever the win rate', () => {
    const w = winRate(32, 0, 0);
    assert.deepStrictEqual(decidePromotion({ prompts: 8, rewardWinRate: w, meanKl: 6.01 }, rule), {
      promote: false,
      reason: 'mean KL 6.010 nats exceeds the budget 6',
    });
    assert.strictEqual(
      decidePromotion({ prompts: 8, rewardWinRate: w, meanKl: 6 }, rule).promote,
      true,
    );
    assert.deepStrictEqual(
      decidePromotion({ prompts: 8, rewardWinRate: w, meanKl: Number.NaN }, rule),
      { promote: false, reason: 'mean KL against the base model is NaN, not a number' },
    );
  });

  it('refuses when nothing was compared', () => {
    assert.deepStrictEqual(decidePromotion({ prompts: 8, meanKl: 0 }, rule), {
      promote: false,
      reason: 'no held-out comparisons to decide on',
    });
    assert.strictEqual(
      decidePromotion({ prompts: 8, rewardWinRate: winRate(0, 0, 0), meanKl: 0 }, rule).promote,
      false,
    );
  });

  it('is the rule the CLI demo applies too', () => {
    // 58 of 100: the interval [48.2%, 67.2%] reaches below one half; 60 of 100 ([50.2%, 69.1%])
    // clears it.
    const report = { prompts: 100, rewardWinRate: winRate(58, 42, 0), meanKl: 2 };
    assert.deepStrictEqual(
      shouldPromote(report, 6),
      decidePromotion(report, { minPrompts: 4, klBudget: 6 }),
    );
    assert.strictEqual(shouldPromote(report, 6).promote, false);
    assert.strictEqual(
      shouldPromote({ ...report, rewardWinRate: winRate(60, 40, 0) }, 6).promote,
      true,
    );
  });
});

describe('win rate over prompts (K samples per prompt)', () => {
  const close = (actual: number, expected: number, tol: number) =>
    assert.ok(Math.abs(actual - expected) <= tol, `${actual} is not ${expected} +- ${tol}`);
  // K = 4 reward-model comparisons on each of `scores.length` prompts; score s gives s wins.
  const items = (scores: number[]): ComparisonItem[] =>
    scores.flatMap((s, p) =>
      [0, 1, 2, 3].map((k) => ({
        prompt: `prompt ${p}`,
        tuned: 't',
        baseline: 'b',
        tunedFirst: true,
        kl: 0,
        rewardTuned: k < s ? 1 : 0,
        rewardBaseline: k < s ? 0 : 1,
      })),
    );

  it("Student's t 95% quantiles match the tables", () => {
    const table: [number, number][] = [
      [1, 12.706205],
      [3, 3.182446],
      [7, 2.364624],
      [10, 2.228139],
      [31, 2.039513],
      [1000, 1.962339],
    ];
    for (const [df, t] of table) close(tCritical95(df), t, 1e-6);
    assert.throws(() => tCritical95(0), /degrees of freedom 0: allowed are integers >= 1/);
  });

  it('keeps an adapter whose wins come from a few prompts where it always wins', () => {
    // 6 of 8 prompts won 4 of 4, 2 lost 4 of 4: 24 of 32 (75%). As 32 independent comparisons
    // the Wilson interval is [57.9%, 86.7%] and would promote; over 8 prompts it is not.
    const clustered = items([4, 4, 4, 4, 4, 4, 0, 0]);
    const independent = winRate(24, 8, 0);
    assert.ok(independent.low > 0.5);
    const w = winRateByPrompt(clustered, rewardVerdict);
    assert.strictEqual(w.rate, 0.75);
    assert.deepStrictEqual([w.wins, w.losses, w.ties, w.n, w.prompts], [24, 8, 0, 32, 8]);
    // Reference (scipy): Var(p) = 8/7 * 24 / 32^2, n* = 7.0, n*_df = 7.0 (t_31 / t_7)^2.
    close(w.effectiveN!, 5.207472, 1e-5);
    close(w.low, 0.342438, 1e-5);
    close(w.high, 0.945302, 1e-5);
    const d = decidePromotion({ prompts: 8, rewardWinRate: w, meanKl: 1 }, rule);
    assert.strictEqual(d.promote, false);
    assert.match(
      d.reason,
      /75\.0% \[95% CI 34\.2%-94\.5%\] .*n=32 from 8 prompts, effective n=5\.2\)/,
    );
    assert.strictEqual(
      decidePromotion({ prompts: 8, rewardWinRate: independent, meanKl: 1 }, rule).promote,
      true,
    );
  });

  it('still promotes a gain that holds across prompts', () => {
    // 32 prompts, each won 3 or 4 of 4 (28 prompts 3 of 4): 100 of 128.
    const w = winRateByPrompt(items([...Array(28).fill(3), 4, 4, 4, 4]), rewardVerdict);
    assert.strictEqual(w.n, 128);
    // Prompts agree more than binomial noise would: the design effect is not credited, only
    // the t correction for 32 prompts shrinks n.
    close(w.effectiveN!, 128 * (tCritical95(127) / tCritical95(31)) ** 2, 1e-9);
    assert.ok(w.low > 0.5, formatWinRate(w));
    assert.strictEqual(
      decidePromotion({ prompts: 32, rewardWinRate: w, meanKl: 1 }, rule).promote,
      true,
    );
  });

  it('is plain Wilson with one comparison per prompt, and [0, 1] with one prompt', () => {
    const single = clusteredWinRate([
      { wins: 1, losses: 0, ties: 0 },
      { wins: 0, losses: 1, ties: 0 },
      { wins: 0, losses: 0, ties: 1 },
      { wins: 1, losses: 0, ties: 0 },
    ]);
    assert.deepStrictEqual(single, winRate(2, 1, 1));
    const one = clusteredWinRate([{ wins: 4, losses: 0, ties: 0 }]);
    assert.deepStrictEqual([one.rate, one.low, one.high], [1, 0, 1]);
  });

  it('counts ties as half within a prompt, and all ties never promote', () => {
    const ties = winRateByPrompt(
      items([2, 2, 2, 2]).map((item) => ({ ...item, rewardBaseline: item.rewardTuned })),
      rewardVerdict,
    );
    assert.deepStrictEqual([ties.ties, ties.rate], [16, 0.5]);
    assert.ok(ties.low < 0.5 && ties.high > 0.5);
    assert.strictEqual(
      decidePromotion({ prompts: 4, rewardWinRate: ties, meanKl: 0 }, rule).promote,
      false,
    );
  });
});

describe('promotion gate config: minPrompts', () => {
  const parse = (input: Record<string, unknown>) =>
    parseConfig(input, GATE_SPEC, GATE_DEFAULTS, 'promotion gate config');

  it('refuses fewer than 4 prompts, naming the key, the value and what is allowed', () => {
    for (const value of [0, 1, 2, 3]) {
      assert.throws(
        () => parse({ minPrompts: value }),
        new RegExp(`^ConfigError: promotion gate config: "minPrompts" is ${value}; allowed: >= 4$`),
      );
    }
    assert.strictEqual(parse({ minPrompts: 4 }).minPrompts, 4);
    assert.strictEqual(parse({}).minPrompts, 4);
  });

  it('leaves maxPromptTokens at its own minimum of 1 token', () => {
    // A token budget, not a prompt count: the prompt minimum does not apply to it.
    for (const value of [1, 3]) {
      assert.strictEqual(parse({ maxPromptTokens: value }).maxPromptTokens, value);
    }
    assert.throws(
      () => parse({ maxPromptTokens: 0 }),
      /^ConfigError: promotion gate config: "maxPromptTokens" is 0; allowed: >= 1$/,
    );
  });

  it('refuses maxPrompts below minPrompts, naming both keys and values', () => {
    const message =
      /^ConfigError: promotion gate config: "maxPrompts" is 2, below "minPrompts" 4; allowed: maxPrompts >= minPrompts/;
    assert.throws(() => parseGateConfig({ maxPrompts: 2 }), message);
    assert.throws(
      () => parseGateConfig({ maxPrompts: 5, minPrompts: 6 }),
      /"maxPrompts" is 5, below "minPrompts" 6/,
    );
    assert.strictEqual(parseGateConfig({ maxPrompts: 4 }).maxPrompts, 4);
    assert.strictEqual(parseGateConfig({ maxPrompts: 8, minPrompts: 8 }).minPrompts, 8);
  });

  it('refuses it from a CLI flag and from a --config file before any model is loaded', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gate-config-'));
    try {
      const configFile = path.join(dir, 'gate.json');
      fs.writeFileSync(configFile, JSON.stringify({ minPrompts: 3 }));
      const runs: [string[], RegExp][] = [
        [['--minPrompts', '2'], /"minPrompts" is 2; allowed: >= 4/],
        [['--config', configFile], /"minPrompts" is 3; allowed: >= 4/],
        [['--maxPrompts', '2'], /"maxPrompts" is 2, below "minPrompts" 4/],
      ];
      for (const [args, error] of runs) {
        const out: string[] = [];
        const io = { out: (t: string) => out.push(t), err: (t: string) => out.push(t) };
        const code = await runCli(['train', 'gate', '--run-dir', dir, ...args], io);
        assert.strictEqual(code, 1, out.join('\n'));
        assert.match(
          out.join('\n'),
          new RegExp(`\\[error\\] promotion gate config: ${error.source}`),
        );
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('held-out prompts written by the trainers', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'held-out-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('round-trips, including prompts with newlines and non-ASCII text', () => {
    const heldOut = {
      stage: 'dpo',
      seed: 3,
      validationFraction: 0.2,
      prompts: ['def f(x):\n    ', 'const é = "\u2028";', ''],
    };
    writeHeldOutPrompts(dir, heldOut);
    assert.deepStrictEqual(readHeldOutPrompts(dir), heldOut);
  });

  it('names the file and the key when the file is missing or malformed', () => {
    const file = path.join(dir, HELD_OUT_FILE);
    assert.throws(() => readHeldOutPrompts(dir), new RegExp(`${file} is missing: .*train again`));
    fs.writeFileSync(file, '{"version":1,');
    assert.throws(() => readHeldOutPrompts(dir), /held-out-prompts\.json: not valid JSON/);
    fs.writeFileSync(
      file,
      JSON.stringify({ version: 1, stage: 'rm', seed: 0, validationFraction: 0.2, prompts: [1] }),
    );
    assert.throws(
      () => readHeldOutPrompts(dir),
      /held-out-prompts\.json: "prompts" is \[1\]; allowed: an array of strings/,
    );
    fs.writeFileSync(file, JSON.stringify({ version: 2 }));
    assert.throws(() => readHeldOutPrompts(dir), /"version" is 2; allowed: 1/);
  });
});

describe('the verdict in train/done', () => {
  const done = { type: 'train/done', jobId: 'r-gate', status: 'completed' };

  it('survives the process boundary and is checked on arrival', () => {
    const decision = { promote: false, reason: 'only 3 held-out prompts' };
    assert.deepStrictEqual(parseTrainingEvent(JSON.parse(JSON.stringify({ ...done, decision }))), {
      ...done,
      decision,
    });
    assert.deepStrictEqual(parseTrainingEvent(done), done);
    for (const bad of [{ promote: 'yes', reason: 'r' }, { promote: true, reason: '' }, [true]]) {
      assert.throws(
        () => parseTrainingEvent({ ...done, decision: bad }),
        /train\/done message: "decision" must be \{"promote": boolean, "reason": non-empty string\}/,
      );
    }
  });

  it('accepts "gate" as a job kind', () => {
    const start = {
      type: 'train/start',
      jobId: 'g',
      kind: 'gate',
      runDir: '/r',
      resume: false,
      config: {},
    };
    assert.deepStrictEqual(parseTrainingCommand(start), start);
  });
});
