import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadModel } from '../../../src/model/loader';
import { loadPeftAdapter } from '../../../src/model/lora';
import { DPO_DEFAULTS } from '../../../src/rlhf/config';
import { DPO_DIR, trainDpo } from '../../../src/rlhf/dpo';
import type { TrainingPair } from '../../../src/rlhf/preferences';
import { directContext } from '../../../src/rlhf/trainerContext';

const MODEL = path.join(__dirname, '../../fixtures/model/tiny-llama');

describe('rlhf DPO (tiny Llama fixture)', function () {
  this.timeout(120000);
  it('starts at loss ln 2 (policy = reference), the loss falls and the adapter changes (with and without suffixes)', async () => {
    const model = loadModel(MODEL);
    const pairs: TrainingPair[] = Array.from({ length: 48 }, (_, i) => ({
      recordId: `r${i}`,
      prompt: `let v${i % 12} = `,
      // Half the judgments were made mid-file: those pairs train on fill-in-the-middle prompts.
      suffix: i % 2 === 0 ? '' : '\nexport { v0 };\n',
      chosen: `${(i * 37) % 100};\n`,
      rejected: ['((', '[[{', '{{(', ')('][i % 4],
      target: 1,
      margin: 0,
    }));
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dpo-'));
    const rows: Record<string, number>[] = [];
    const result = await trainDpo({
      model,
      pairs,
      config: {
        ...DPO_DEFAULTS,
        modelDir: MODEL,
        epochs: 4,
        batchSize: 8,
        learningRate: 1e-2,
        loraRank: 4,
        loraAlpha: 8,
        maxPromptTokens: 16,
        maxCompletionTokens: 8,
        validationFraction: 0.25,
        patience: 5,
      },
      runDir,
      resume: false,
      ctx: directContext({ onMetrics: (_s, row) => rows.push(row) }),
    });
    assert.ok(Math.abs(result.firstLoss - Math.LN2) < 1e-5, `first loss ${result.firstLoss}`);
    assert.ok(
      result.lastLoss < result.firstLoss - 0.1,
      `loss ${result.firstLoss} -> ${result.lastLoss}`,
    );
    assert.ok(result.validationAccuracy > 0.8, `validation accuracy ${result.validationAccuracy}`);
    const saved = loadPeftAdapter(result.outputDir, model);
    assert.ok([...saved.factors.values()].some((f) => f.b.some((x) => x !== 0)));
    assert.ok(rows.some((r) => 'rewards/margins' in r && 'logps/chosen' in r));
  });

  it('refuses to resume from a checkpoint whose step counter is damaged, and keeps it', async () => {
    const model = loadModel(MODEL);
    const pairs: TrainingPair[] = Array.from({ length: 16 }, (_, i) => ({
      recordId: `r${i}`,
      prompt: `let v${i % 4} = `,
      suffix: '',
      chosen: `${i};\n`,
      rejected: '((',
      target: 1,
      margin: 0,
    }));
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dpo-resume-'));
    const config = {
      ...DPO_DEFAULTS,
      modelDir: MODEL,
      epochs: 1,
      batchSize: 4,
      loraRank: 2,
      loraAlpha: 4,
      maxPromptTokens: 8,
      maxCompletionTokens: 4,
      validationFraction: 0.25,
      checkpointEvery: 1,
    };
    await trainDpo({ model, pairs, config, runDir, resume: false, ctx: directContext() });
    const checkpoints = path.join(runDir, 'checkpoints', DPO_DIR);
    const latest = fs.readFileSync(path.join(checkpoints, 'latest'), 'utf8').trim();
    const manifest = path.join(checkpoints, latest, 'manifest.json');
    const good = JSON.parse(fs.readFileSync(manifest, 'utf8'));
    // The manifest is not covered by the file digests; `step < total` is false for these, so
    // a resume that trusted them would end at once and output the checkpoint as trained.
    for (const step of [undefined, 'x', -1, 1.5]) {
      const text = JSON.stringify({ ...good, state: { ...good.state, step } });
      fs.writeFileSync(manifest, text);
      await assert.rejects(
        trainDpo({ model, pairs, config, runDir, resume: true, ctx: directContext() }),
        new RegExp(
          `manifest\\.json: "state\\.step" is ${step === undefined ? 'undefined' : JSON.stringify(step)}; ` +
            'allowed: a non-negative integer; checkpoint step-\\d+ is damaged',
        ),
      );
      assert.strictEqual(fs.readFileSync(manifest, 'utf8'), text, 'the checkpoint was changed');
    }
  });
});
