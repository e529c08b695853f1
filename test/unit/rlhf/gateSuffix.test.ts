/**
 * The promotion gate and evaluation on held-out contexts with a suffix: the held-out files keep
 * each context's suffix, the comparison completes it fill-in-the-middle and the reward model
 * scores it with the suffix, and the win rate clusters by context.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadModel } from '../../../src/model/loader';
import { initLora, savePeftAdapter, type LoraConfig } from '../../../src/model/lora';
import { rewardVerdict, winRateByPrompt, type ComparisonItem } from '../../../src/rlhf/evaluate';
import { saveHead } from '../../../src/rlhf/heads';
import {
  GATE_DEFAULTS,
  HELD_OUT_FILE,
  heldOutContexts,
  heldOutFields,
  readHeldOutPrompts,
  runPromotionGate,
  writeHeldOutPrompts,
} from '../../../src/rlhf/promotionGate';
import { createRng, normal } from '../../../src/rlhf/random';
import { RewardScorer } from '../../../src/rlhf/rewardModel';
import { directContext } from '../../../src/rlhf/trainerContext';

const MODEL = path.join(__dirname, '../../fixtures/model/tiny-llama');

const CONTEXTS = [
  { prompt: 'function add(a, b) {\n  return ', suffix: ';\n}\n' },
  { prompt: 'function add(a, b) {\n  return ', suffix: '' },
  { prompt: 'const items = [1, 2, 3].map(', suffix: ');\n' },
  { prompt: 'let total = ', suffix: '\nreturn total;\n' },
  { prompt: 'if (x) {', suffix: '\n}\n' },
];

describe('held-out contexts with a suffix', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'held-out-sfx-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const meta = { stage: 'rm', seed: 0, validationFraction: 0.2 };

  it('round-trip with their suffixes; suffix-free contexts write the file as before', () => {
    writeHeldOutPrompts(dir, { ...meta, ...heldOutFields(CONTEXTS) });
    assert.deepStrictEqual(heldOutContexts(readHeldOutPrompts(dir)), CONTEXTS);
    const plain = CONTEXTS.map((c) => ({ ...c, suffix: '' }));
    writeHeldOutPrompts(dir, { ...meta, ...heldOutFields(plain) });
    const written = JSON.parse(fs.readFileSync(path.join(dir, HELD_OUT_FILE), 'utf8'));
    assert.deepStrictEqual(written, { version: 1, ...meta, prompts: plain.map((c) => c.prompt) });
    assert.deepStrictEqual(heldOutContexts(readHeldOutPrompts(dir)), plain);
  });

  it('name a suffix list that does not match the prompts', () => {
    const file = path.join(dir, HELD_OUT_FILE);
    fs.writeFileSync(
      file,
      JSON.stringify({ version: 1, ...meta, prompts: ['a', 'b'], suffixes: [''] }),
    );
    assert.throws(
      () => readHeldOutPrompts(dir),
      /held-out-prompts\.json: "suffixes" is \[""\]; allowed: an array of 2 strings \(one per prompt\), or absent/,
    );
  });
});

describe('win rate clusters by context', () => {
  it('one prefix judged with two suffixes is two prompts', () => {
    const item = (suffix: string | undefined, won: boolean): ComparisonItem => ({
      prompt: 'x = ',
      ...(suffix === undefined ? {} : { suffix }),
      tuned: 't',
      baseline: 'b',
      tunedFirst: true,
      kl: 0,
      rewardTuned: won ? 1 : 0,
      rewardBaseline: won ? 0 : 1,
    });
    const w = winRateByPrompt(
      [item(';', true), item(';', true), item(undefined, false), item('', false)],
      rewardVerdict,
    );
    assert.deepStrictEqual([w.wins, w.losses, w.n, w.prompts], [2, 2, 4, 2]);
  });
});

describe('promotion gate on contexts with a suffix (tiny Llama fixture)', function () {
  this.timeout(120000);

  it('completes and scores each held-out context with its suffix', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gate-sfx-'));
    try {
      const model = loadModel(MODEL);
      const lora: LoraConfig = {
        rank: 2,
        alpha: 4,
        targets: ['q_proj', 'v_proj'],
        useRslora: false,
      };
      const rng = createRng(3);
      const rewardModelDir = path.join(dir, 'rm');
      savePeftAdapter(rewardModelDir, initLora(model, lora, 1));
      const hidden = model.config.hiddenSize;
      const head = {
        weight: Float32Array.from({ length: hidden }, () => normal(rng) / Math.sqrt(hidden)),
        bias: new Float32Array(1),
      };
      saveHead(rewardModelDir, 'reward', head);
      const encoding = { maxPromptTokens: 24, maxSuffixTokens: 4, maxCompletionTokens: 9 };
      fs.writeFileSync(path.join(rewardModelDir, 'run.json'), JSON.stringify({ config: encoding }));
      const tunedDir = path.join(dir, 'tuned');
      const tuned = initLora(model, lora, 2);
      for (const f of tuned.factors.values()) f.b.forEach((_, i) => (f.b[i] = 0.05 * normal(rng)));
      savePeftAdapter(tunedDir, tuned, model.dir);
      const meta = { seed: 0, validationFraction: 0.2 };
      // The reward model did not hold out the last context: the gate compares on the first four.
      writeHeldOutPrompts(rewardModelDir, {
        stage: 'rm',
        ...meta,
        ...heldOutFields(CONTEXTS.slice(0, 4)),
      });
      writeHeldOutPrompts(tunedDir, { stage: 'dpo', ...meta, ...heldOutFields(CONTEXTS) });

      const workDir = path.join(dir, 'gate');
      fs.mkdirSync(workDir);
      const result = await runPromotionGate({
        config: {
          ...GATE_DEFAULTS,
          modelDir: MODEL,
          rewardModelDir,
          adapterDir: tunedDir,
          samplesPerPrompt: 2,
          maxNewTokens: 8,
          maxLines: 0,
        },
        workDir,
        ctx: directContext(),
      });
      assert.strictEqual(result.heldOutPrompts, 4);
      const items = result.report!.items;
      assert.strictEqual(items.length, 8);
      const compared = new Set(items.map((i) => JSON.stringify([i.prompt, i.suffix ?? ''])));
      assert.deepStrictEqual(
        [...compared].sort(),
        CONTEXTS.slice(0, 4)
          .map((c) => JSON.stringify([c.prompt, c.suffix]))
          .sort(),
      );
      // The scores are the reward model's on the context with its suffix, cut as it was trained.
      const scorer = await RewardScorer.load(model, rewardModelDir);
      try {
        const fim = model.tokenizer.fim!;
        const rows = items.map((i) =>
          scorer.encode({ prompt: i.prompt, suffix: i.suffix ?? '' }, i.tuned, GATE_DEFAULTS),
        );
        const withSuffix = rows.filter((r, k) => (items[k].suffix ?? '') !== '');
        assert.ok(
          withSuffix.length === 6 && withSuffix.every((r) => r.prompt.includes(fim.suffix)),
        );
        const scores = await scorer.score(rows);
        items.forEach((item, k) =>
          assert.ok(
            Math.abs(item.rewardTuned! - scores[k]) < 1e-5,
            `${item.rewardTuned} vs ${scores[k]}`,
          ),
        );
      } finally {
        await scorer.release();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
