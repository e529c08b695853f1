/**
 * Training encodings of a judgment's context (text before and after the cursor): unchanged
 * left-to-right encodings when there is no suffix, and the editor's fill-in-the-middle layout
 * when there is one.
 */
import * as assert from 'assert';
import * as path from 'path';
import { createGenerator } from '../../../src/generation';
import { loadModel } from '../../../src/model/loader';
import type { CodeTokenizer } from '../../../src/model/tokenizer';
import { ModelRuntime } from '../../../src/model/runtime';
import { completionMarkFor, encodePair, type EncodingLimits } from '../../../src/rlhf/batch';
import { RM_DEFAULTS } from '../../../src/rlhf/config';
import type { TrainingPair } from '../../../src/rlhf/preferences';
import { encodeGroups, encodePairs } from '../../../src/rlhf/rewardModel';

const MODEL = path.join(__dirname, '../../fixtures/model/tiny-llama');

const LONG_PROMPT =
  Array.from({ length: 12 }, (_, i) => `let v${i} = ${i};`).join('\n') + '\nconst total = ';

/**
 * Token ids the encoding produced before suffixes were read (computed with that version's
 * `encodePair(tokenizer, prompt, completion, maxPromptTokens, maxCompletionTokens)`).
 */
const BEFORE_SUFFIXES: {
  prompt: string;
  completion: string;
  limits: [number, number];
  ids: { prompt: number[]; completion: number[] };
}[] = [
  {
    prompt: 'function add(a, b) {\n  return ',
    completion: 'a + b;\n}',
    limits: [96, 32],
    ids: {
      prompt: [
        305, 102, 117, 110, 99, 116, 105, 292, 296, 100, 100, 40, 97, 44, 297, 41, 300, 10, 32, 272,
        32,
      ],
      completion: [97, 281, 297, 59, 10, 125],
    },
  },
  {
    prompt: LONG_PROMPT,
    completion: ' v0 + v1 + v2 + v3;',
    limits: [16, 5],
    ids: {
      prompt: [305, 49, 59, 10, 99, 292, 115, 116, 32, 116, 111, 116, 97, 108, 270, 32],
      completion: [32, 118, 48, 281, 32],
    },
  },
  {
    prompt: '',
    completion: 'x = 1',
    limits: [8, 8],
    ids: { prompt: [305], completion: [120, 270, 295] },
  },
];

describe('rlhf encodings of a judgment context with a suffix (tiny Llama fixture)', function () {
  this.timeout(60000);
  const model = loadModel(MODEL);
  const tokenizer = model.tokenizer;
  const fim = tokenizer.fim!;

  it('with no suffix, encodings are the token ids of the version that read no suffix', () => {
    // Without FIM tokens a suffix cannot be placed: the prompt stays left-to-right.
    const noFim = Object.create(tokenizer, { fim: { value: undefined } }) as CodeTokenizer;
    for (const c of BEFORE_SUFFIXES) {
      const [maxPromptTokens, maxCompletionTokens] = c.limits;
      const limits: EncodingLimits = { maxPromptTokens, maxSuffixTokens: 32, maxCompletionTokens };
      const row = (t: CodeTokenizer, suffix: string, l: EncodingLimits) =>
        encodePair(t, { prompt: c.prompt, suffix }, c.completion, l);
      assert.deepStrictEqual(row(tokenizer, '', limits), c.ids, JSON.stringify(c.prompt));
      // A suffix is not read with a suffix limit of 0 or none (reward models saved before).
      assert.deepStrictEqual(row(tokenizer, ';\n}', { ...limits, maxSuffixTokens: 0 }), c.ids);
      assert.deepStrictEqual(
        row(tokenizer, ';\n}', { maxPromptTokens, maxCompletionTokens }),
        c.ids,
      );
      assert.deepStrictEqual(row(noFim, ';\n}', limits), c.ids);
    }
  });

  it('with a suffix, the prompt is the one a generation request for that context gets', async () => {
    const runtime = ModelRuntime.fromModel(model, { threads: 1 });
    const generator = createGenerator(runtime);
    try {
      const context = { prompt: 'function add(a, b) {\n  return ', suffix: ';\n}\n\nadd(1, 2);' };
      const sampled = await generator.completeDetailed({
        prefix: context.prompt,
        suffix: context.suffix,
        count: 1,
        maxNewTokens: 4,
        maxLines: 0,
        temperature: 1,
        topK: 0,
        topP: 1,
        seed: 1,
      });
      assert.strictEqual(sampled.promptMode, 'fill-in-the-middle');
      const row = encodePair(tokenizer, context, ' a + b', {
        maxPromptTokens: 96,
        maxSuffixTokens: 32,
        maxCompletionTokens: 8,
      });
      assert.deepStrictEqual(row.prompt, sampled.promptIds);
    } finally {
      await generator.dispose();
      await runtime.dispose();
    }
  });

  it('cuts the prefix from the left to maxPromptTokens and the suffix from the right to maxSuffixTokens', () => {
    const suffix = '\n' + 'total += 1;\n'.repeat(10);
    const row = encodePair(tokenizer, { prompt: LONG_PROMPT, suffix }, ' v0;', {
      maxPromptTokens: 16,
      maxSuffixTokens: 6,
      maxCompletionTokens: 8,
    });
    const prefixIds = tokenizer.encodePlain(LONG_PROMPT);
    const start = tokenizer.promptPrefixIds;
    assert.deepStrictEqual(row.prompt, [
      ...start,
      fim.prefix,
      // As many prefix tokens as a left-to-right prompt of 16 tokens keeps.
      ...prefixIds.slice(prefixIds.length - (16 - start.length)),
      fim.suffix,
      ...tokenizer.encodeContinuation(suffix).slice(0, 6),
      fim.middle,
    ]);
    assert.strictEqual(row.prompt.length, 16 + 3 + 6);
  });

  it('reward model: a pair judged with a suffix encodes the suffix tokens, grouped by its context', () => {
    const suffix = ';\n}\n';
    const pair = (recordId: string, s: string): TrainingPair => ({
      recordId,
      prompt: 'function add(a, b) {\n  return ',
      suffix: s,
      chosen: 'a + b',
      rejected: '((',
      target: 1,
      margin: 0,
    });
    const config = { ...RM_DEFAULTS, maxPromptTokens: 32, maxCompletionTokens: 8 };
    const [encoded] = encodePairs(model, [pair('r1', suffix)], config);
    for (const row of [encoded.chosen, encoded.rejected]) {
      const from = row.prompt.indexOf(fim.suffix);
      const to = row.prompt.indexOf(fim.middle);
      assert.ok(from > 0 && to > from, `no FIM layout in ${row.prompt}`);
      assert.deepStrictEqual(row.prompt.slice(from + 1, to), tokenizer.encodeContinuation(suffix));
      assert.strictEqual(row.prompt[row.prompt.length - 1], fim.middle);
    }
    // Two judgments of one prefix with different suffixes stay two groups, each with its rows.
    const groups = encodeGroups(model, [pair('r1', suffix), pair('r2', '')], config);
    assert.strictEqual(groups.length, 2);
    assert.deepStrictEqual(groups[0].rows[0], encoded.chosen);
    assert.strictEqual(groups[1].suffix, '');
    // Without a suffix, the reward model's rows still mark where the completion starts.
    const empty = groups[1].rows[0].prompt;
    assert.deepStrictEqual(empty.slice(-2), [fim.suffix, fim.middle]);
    const unmarked = encodePairs(model, [pair('r2', '')], { ...config, markCompletion: false });
    assert.ok(!unmarked[0].chosen.prompt.includes(fim.suffix));
  });

  it('markCompletion: without a read suffix, the prefix tokens of the left-to-right row between FIM tokens', () => {
    const k = tokenizer.promptPrefixIds.length;
    const noFim = Object.create(tokenizer, { fim: { value: undefined } }) as CodeTokenizer;
    for (const c of BEFORE_SUFFIXES) {
      const [maxPromptTokens, maxCompletionTokens] = c.limits;
      const limits: EncodingLimits = { maxPromptTokens, maxCompletionTokens, markCompletion: true };
      const marked = encodePair(tokenizer, { prompt: c.prompt, suffix: '' }, c.completion, limits);
      assert.deepStrictEqual(marked, {
        prompt: [
          ...c.ids.prompt.slice(0, k),
          fim.prefix,
          ...c.ids.prompt.slice(k),
          fim.suffix,
          fim.middle,
        ],
        completion: c.ids.completion,
      });
      // A suffix the limits do not read is left out the same way.
      const unread = { ...limits, maxSuffixTokens: 0 };
      assert.deepStrictEqual(
        encodePair(tokenizer, { prompt: c.prompt, suffix: ';\n}' }, c.completion, unread),
        marked,
      );
      // Without a recorded mark (reward models from before 'eos' marks), a model without FIM
      // tokens is scored unmarked: the row is left-to-right.
      assert.deepStrictEqual(
        encodePair(noFim, { prompt: c.prompt, suffix: '' }, c.completion, limits),
        c.ids,
      );
      // With the 'eos' mark, the left-to-right prompt ends with the EOS token.
      const eos = { ...limits, completionMark: 'eos' as const };
      assert.deepStrictEqual(
        encodePair(noFim, { prompt: c.prompt, suffix: '' }, c.completion, eos),
        { prompt: [...c.ids.prompt, tokenizer.eosId], completion: c.ids.completion },
      );
      // A recorded 'fim' mark on a model without FIM tokens is refused, not dropped.
      const fimMark = { ...limits, completionMark: 'fim' as const };
      assert.throws(
        () => encodePair(noFim, { prompt: c.prompt, suffix: '' }, c.completion, fimMark),
        /completionMark is 'fim' but this model's tokenizer has no FIM tokens/,
      );
    }
    assert.strictEqual(completionMarkFor(tokenizer), 'fim');
    assert.strictEqual(completionMarkFor(noFim), 'eos');
    const bare = Object.create(noFim, { eosId: { value: undefined } }) as CodeTokenizer;
    assert.strictEqual(completionMarkFor(bare), 'none');
    // 'none' leaves the row unmarked even on a model that has FIM tokens.
    const none = { maxPromptTokens: 8, maxCompletionTokens: 4, markCompletion: true };
    assert.deepStrictEqual(
      encodePair(tokenizer, { prompt: 'x', suffix: '' }, 'y', { ...none, completionMark: 'none' }),
      encodePair(tokenizer, { prompt: 'x', suffix: '' }, 'y', { ...none, markCompletion: false }),
    );
    assert.throws(
      () =>
        encodePair(bare, { prompt: 'x', suffix: '' }, 'y', {
          maxPromptTokens: 8,
          maxCompletionTokens: 4,
          markCompletion: true,
          completionMark: 'eos',
        }),
      /completionMark is 'eos' but this model's tokenizer has no EOS token/,
    );
    // With a suffix read, the FIM layout already marks the start: the flag changes nothing.
    const context = { prompt: LONG_PROMPT, suffix: ';\n' };
    const limits = { maxPromptTokens: 16, maxSuffixTokens: 4, maxCompletionTokens: 4 };
    assert.deepStrictEqual(
      encodePair(tokenizer, context, ' v0', { ...limits, markCompletion: true }),
      encodePair(tokenizer, context, ' v0', limits),
    );
  });
});
