/**
 * Judgments the training tests learn from: the clean-code oracle comparing, on `let vN = `
 * prompts, a completion that is a number against one that opens two brackets. The order shown
 * alternates, so a reward model must read the text, not the position.
 */
import { openStore } from '../../src/data/store';
import { Oracle, cleanCodeRule } from '../../src/rlhf/oracle';
import { oracleRecord } from '../../src/rlhf/preferences';

/** Appends `count` oracle judgments, attributed to `model`, to the store at `file`. */
export async function appendOracleJudgments(
  file: string,
  count: number,
  model: string,
): Promise<void> {
  const store = await openStore(file);
  const oracle = new Oracle(cleanCodeRule);
  await store.appendMany(
    Array.from(
      { length: count },
      (_, i) =>
        oracleRecord(
          oracle,
          `let v${i % 16} = `,
          i % 2 ? `${i};\n` : '((',
          i % 2 ? '((' : `${i};\n`,
          { model, index: i },
        ).record,
    ),
  );
}
