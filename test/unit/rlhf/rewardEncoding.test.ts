import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadModel } from '../../../src/model/loader';
import { initLora } from '../../../src/model/lora';
import { PPO_DEFAULTS } from '../../../src/rlhf/config';
import { AdaptiveKlController } from '../../../src/rlhf/klController';
import { RewardScorer, readRewardEncoding } from '../../../src/rlhf/rewardModel';
import { warnIfRewardLimitsUnknown } from '../../../src/rlhf/rewardLimits';

const MODEL = path.join(__dirname, '../../fixtures/model/tiny-llama');

describe('rlhf reward-model encoding (the RM is queried as it was trained)', function () {
  this.timeout(60000);
  const model = loadModel(MODEL);
  const longPrompt = Array.from({ length: 40 }, (_, i) => `let v${i} = ${i};`).join('\n');

  it('reads the training limits from run.json; absent file is undefined; bad values are named', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rm-enc-'));
    assert.strictEqual(readRewardEncoding(dir), undefined);
    const file = path.join(dir, 'run.json');
    fs.writeFileSync(
      file,
      JSON.stringify({ config: { maxPromptTokens: 64, maxCompletionTokens: 17 } }),
    );
    assert.deepStrictEqual(readRewardEncoding(dir), {
      maxPromptTokens: 64,
      maxCompletionTokens: 17,
    });
    fs.writeFileSync(
      file,
      JSON.stringify({ config: { maxPromptTokens: 0, maxCompletionTokens: 17 } }),
    );
    assert.throws(
      () => readRewardEncoding(dir),
      (e: Error) =>
        e.message.includes(file) &&
        e.message.includes('config.maxPromptTokens is 0') &&
        e.message.includes('an integer >= 1'),
    );
    fs.writeFileSync(file, JSON.stringify({ config: { maxPromptTokens: 64 } }));
    assert.throws(() => readRewardEncoding(dir), /config\.maxCompletionTokens is undefined/);
    fs.writeFileSync(
      file,
      JSON.stringify({
        config: { maxPromptTokens: 64, maxCompletionTokens: 17, markCompletion: true },
      }),
    );
    assert.deepStrictEqual(readRewardEncoding(dir), {
      maxPromptTokens: 64,
      maxCompletionTokens: 17,
      markCompletion: true,
    });
    fs.writeFileSync(
      file,
      JSON.stringify({
        config: { maxPromptTokens: 64, maxCompletionTokens: 17, markCompletion: 1 },
      }),
    );
    assert.throws(
      () => readRewardEncoding(dir),
      (e: Error) =>
        e.message.includes(file) &&
        e.message.includes('config.markCompletion is 1') &&
        e.message.includes('allowed: true, false, or absent'),
    );
    // The mark a reward model was trained with is read back; an unknown one is named.
    const limits = { maxPromptTokens: 64, maxCompletionTokens: 17, markCompletion: true };
    fs.writeFileSync(file, JSON.stringify({ config: limits, completionMark: 'eos' }));
    assert.deepStrictEqual(readRewardEncoding(dir), { ...limits, completionMark: 'eos' });
    fs.writeFileSync(file, JSON.stringify({ config: limits, completionMark: 'bos' }));
    assert.throws(
      () => readRewardEncoding(dir),
      (e: Error) =>
        e.message.includes(file) &&
        e.message.includes('completionMark is "bos"; allowed: "fim", "eos", "none", or absent'),
    );
    fs.writeFileSync(file, '{"config": ');
    assert.throws(() => readRewardEncoding(dir), /run\.json: not valid JSON/);
    // Valid JSON that is not an object: named as such, not a TypeError on null.config.
    for (const text of ['null', '5', '[]']) {
      fs.writeFileSync(file, text);
      assert.throws(
        () => readRewardEncoding(dir),
        (e: Error) => e.message === `${file}: expected a JSON object with "config", got ${text}`,
        text,
      );
    }
  });

  it('reads the suffix limit when run.json has one; a reward model saved without it scores without suffixes', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rm-enc-'));
    const file = path.join(dir, 'run.json');
    const config = { maxPromptTokens: 24, maxSuffixTokens: 5, maxCompletionTokens: 4 };
    fs.writeFileSync(file, JSON.stringify({ config }));
    assert.deepStrictEqual(readRewardEncoding(dir), config);
    fs.writeFileSync(file, JSON.stringify({ config: { ...config, maxSuffixTokens: -1 } }));
    assert.throws(
      () => readRewardEncoding(dir),
      (e: Error) =>
        e.message.includes(file) &&
        e.message.includes('config.maxSuffixTokens is -1') &&
        e.message.includes('an integer >= 0, or absent'),
    );

    const adapter = initLora(
      model,
      { rank: 2, alpha: 2, targets: ['q_proj'], useRslora: false },
      1,
    );
    const head = { weight: new Float32Array(model.config.hiddenSize), bias: new Float32Array(1) };
    const before = await RewardScorer.create(model, adapter, head, {
      encoding: { maxPromptTokens: 24, maxCompletionTokens: 4 },
    });
    const after = await RewardScorer.create(model, adapter, head, { encoding: config });
    try {
      const asked = { ...PPO_DEFAULTS, maxSuffixTokens: 64 };
      const context = { prompt: longPrompt, suffix: ';\nconsole.log(v0);\n' };
      // Saved before suffixes were read: exactly the prompt-only encoding it was trained on.
      assert.deepStrictEqual(
        before.encode(context, ' x + y', asked),
        before.encode(longPrompt, ' x + y', asked),
      );
      // Saved with a suffix limit: that many suffix tokens, whatever the caller asks.
      const fim = model.tokenizer.fim!;
      const row = after.encode(context, ' x + y', asked);
      const suffixIds = row.prompt.slice(row.prompt.indexOf(fim.suffix) + 1, -1);
      assert.deepStrictEqual(
        suffixIds,
        model.tokenizer.encodeContinuation(context.suffix).slice(0, 5),
      );
      assert.strictEqual(row.prompt.length, 24 + 3 + 5);
    } finally {
      await before.release();
      await after.release();
    }
  });

  it('encode() cuts prompts to the training limit, whatever the caller asks; the fallback applies only when unknown', async () => {
    const adapter = initLora(
      model,
      { rank: 2, alpha: 2, targets: ['q_proj'], useRslora: false },
      1,
    );
    const head = { weight: new Float32Array(model.config.hiddenSize), bias: new Float32Array(1) };
    const trained = await RewardScorer.create(model, adapter, head, {
      encoding: { maxPromptTokens: 12, maxCompletionTokens: 3 },
    });
    const unknown = await RewardScorer.create(model, adapter, head);
    try {
      const asked = { maxPromptTokens: 40, maxCompletionTokens: 8 };
      const a = trained.encode(longPrompt, ' x = y + z + w;', asked);
      assert.strictEqual(a.prompt.length, 12);
      assert.strictEqual(a.completion.length, 3);
      const b = unknown.encode(longPrompt, ' x = y + z + w;', asked);
      assert.strictEqual(b.prompt.length, 40);
      assert.ok(b.completion.length > 3 && b.completion.length <= 8, `${b.completion.length}`);
      // After the model's prompt prefix, the kept tokens are the end of the prompt (left
      // truncation), the same in both.
      const k = model.tokenizer.promptPrefixIds.length;
      assert.deepStrictEqual(a.prompt.slice(k), b.prompt.slice(b.prompt.length - (12 - k)));
    } finally {
      await trained.release();
      await unknown.release();
    }
  });
  it('a folder without run.json is scored unmarked, and the warning says so', async () => {
    const adapter = initLora(
      model,
      { rank: 2, alpha: 2, targets: ['q_proj'], useRslora: false },
      3,
    );
    const head = { weight: new Float32Array(model.config.hiddenSize), bias: new Float32Array(1) };
    const scorer = await RewardScorer.create(model, adapter, head);
    const limits = { maxPromptTokens: 16, maxSuffixTokens: 8, maxCompletionTokens: 4 };
    try {
      // The fallback never marks the completion: nothing says this model was trained marked.
      const row = scorer.encode({ prompt: 'let a = ', suffix: '' }, '1;', limits);
      const fim = model.tokenizer.fim!;
      assert.ok(!row.prompt.includes(fim.middle), `unmarked prompt ${row.prompt}`);
      const warnings: string[] = [];
      warnIfRewardLimitsUnknown(scorer, '/rm', limits, (level, m) =>
        warnings.push(`${level}: ${m}`),
      );
      assert.deepStrictEqual(warnings, [
        'warn: reward model /rm has no run.json, so the token limits it was trained with are ' +
          "unknown; scoring with this job's limits instead (maxPromptTokens 16, " +
          'maxSuffixTokens 8, maxCompletionTokens 4), which cut its inputs differently if its ' +
          'training used others, and with rows unmarked (no completion mark): a reward model ' +
          'trained with markCompletion (the default) scores them off-distribution',
      ]);
      warnIfRewardLimitsUnknown({ encoding: limits }, '/rm', limits, (_l, m) => warnings.push(m));
      assert.strictEqual(warnings.length, 1, 'no warning when the encoding is known');
    } finally {
      await scorer.release();
    }
  });
});

describe('rlhf adaptive KL gain with the default horizon', () => {
  it('moves beta by K_beta = 0.1 times the clipped error per default rollout (Ziegler et al.)', () => {
    const perRollout = PPO_DEFAULTS.promptsPerBatch * PPO_DEFAULTS.samplesPerPrompt;
    const kl = new AdaptiveKlController(0.05, PPO_DEFAULTS.targetKl, PPO_DEFAULTS.klHorizon);
    kl.update(10 * PPO_DEFAULTS.targetKl, perRollout); // error clipped to +0.2
    assert.ok(Math.abs(kl.value - 0.05 * 1.02) < 1e-12, `${kl.value}`);
    kl.update(0, perRollout); // error clipped to -0.2
    assert.ok(Math.abs(kl.value - 0.05 * 1.02 * 0.98) < 1e-12, `${kl.value}`);
    // Over a 20-rollout run, KL held at twice the target raises beta by about half, not 0.6%.
    const run = new AdaptiveKlController(0.05, PPO_DEFAULTS.targetKl, PPO_DEFAULTS.klHorizon);
    for (let i = 0; i < 20; i++) run.update(2 * PPO_DEFAULTS.targetKl, perRollout);
    assert.ok(run.value > 0.05 * 1.45, `${run.value}`);
  });
});
