import * as assert from 'assert';
import { rewardVerdict, winRateByPrompt } from '../../../src/rlhf/evaluate';
import { contextKey, type PromptContext } from '../../../src/rlhf/promptContext';

describe('contextKey', () => {
  // Pairs of different contexts that a NUL separator between prompt and suffix keyed alike.
  const lookalikes: [PromptContext, PromptContext][] = [
    [
      { prompt: 'a\u0000b', suffix: '' },
      { prompt: 'a', suffix: 'b' },
    ],
    [
      { prompt: 'x = f(\u0000', suffix: ')' },
      { prompt: 'x = f(', suffix: '\u0000)' },
    ],
    [
      { prompt: '', suffix: '\u0000' },
      { prompt: '\u0000', suffix: '' },
    ],
  ];

  it('gives different contexts different keys, even when a prompt holds a NUL', () => {
    for (const [a, b] of lookalikes) {
      assert.notStrictEqual(contextKey(a), contextKey(b), JSON.stringify([a, b]));
    }
    const contexts = [
      ...lookalikes.flat(),
      { prompt: '', suffix: '' },
      { prompt: '12:', suffix: '' },
      { prompt: '1', suffix: '2:' },
      { prompt: 'def f():\n    ', suffix: '\n' },
    ];
    assert.strictEqual(new Set(contexts.map(contextKey)).size, contexts.length);
  });

  it('gives one context the same key whatever object holds it', () => {
    const a = { prompt: 'let x = ', suffix: ';\n' };
    assert.strictEqual(contextKey(a), contextKey({ ...a }));
  });

  it('keeps look-alike contexts apart in the win rate over prompts', () => {
    // Two samples on each of the two contexts of the first look-alike pair: two prompts.
    const [a, b] = lookalikes[0];
    const items = [a, a, b, b].map((c, i) => ({
      ...c,
      rewardTuned: i,
      rewardBaseline: 1.5,
    }));
    assert.strictEqual(winRateByPrompt(items, rewardVerdict).prompts, 2);
  });
});
