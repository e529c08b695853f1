/**
 * A blind comparison of adapters loaded from their folders, run in this process: the model, the
 * tuned and baseline adapters, one runtime and generator over the base weights and, when asked,
 * the reward model are loaded here and released when the comparison ends. `code-rlhf eval` runs
 * it; the CLI names folders and prints the report, and never holds model objects itself.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createGenerator } from '../generation';
import { loadModel } from '../model/loader';
import { loadPeftAdapter } from '../model/lora';
import { ModelRuntime } from '../model/runtime';
import { compareAdapters, type EvalSettings, type EvaluationReport } from '../rlhf/evaluate';
import type { Oracle } from '../rlhf/oracle';
import { warnIfRewardLimitsUnknown } from '../rlhf/rewardLimits';
import { RewardScorer } from '../rlhf/rewardModel';
import type { TrainerContext } from '../rlhf/trainerContext';

export interface AdapterFolderComparison {
  /** Hugging Face model folder of the base model. */
  modelDir: string;
  /** PEFT folder of the tuned adapter. */
  adapterDir: string;
  /** PEFT folder of the adapter to compare against; undefined compares against the base. */
  baselineAdapterDir?: string;
  /** Reward-model output folder (from `train rm`) to judge with, if any. */
  rewardModelDir?: string;
  /** Simulated annotator to judge with, if any. */
  oracle?: Oracle;
  prompts: readonly string[];
  settings: EvalSettings;
  ctx: TrainerContext;
}

export async function compareAdapterFolders(
  options: AdapterFolderComparison,
): Promise<EvaluationReport> {
  const model = loadModel(options.modelDir);
  const tuned = loadPeftAdapter(options.adapterDir, model);
  const baseline =
    options.baselineAdapterDir !== undefined
      ? loadPeftAdapter(options.baselineAdapterDir, model)
      : undefined;
  const runtime = ModelRuntime.fromModel(model);
  const generator = createGenerator(runtime);
  let scorer: RewardScorer | undefined;
  // compareAdapters writes its rollouts here; nothing in it outlives the comparison.
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'code-rlhf-eval-'));
  try {
    if (options.rewardModelDir !== undefined) {
      scorer = await RewardScorer.load(model, options.rewardModelDir);
      warnIfRewardLimitsUnknown(scorer, options.rewardModelDir, options.settings, options.ctx.log);
    }
    return await compareAdapters({
      model,
      runtime,
      generator,
      prompts: options.prompts,
      tuned,
      baseline,
      oracle: options.oracle,
      rewardScorer: scorer,
      settings: options.settings,
      workDir,
      ctx: options.ctx,
    });
  } finally {
    await scorer?.release();
    await generator.dispose();
    await runtime.dispose();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}
