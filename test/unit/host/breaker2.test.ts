import * as assert from 'assert';
import { ppoPrompts } from '../../../src/host/trainingRunners';
import { blindJudgment, sampleJudgment } from '../data/helpers/records';

describe('breaker 2: PPO prompts from the preference store', () => {
  it('leaves out the prompts of blind A/B evaluation judgments', () => {
    const train = sampleJudgment('t1');
    const blind = blindJudgment('b1', 'const evaluatedOnly = ', {
      name: 'run-1 ppo',
      path: '/store/training/run-1/ppo/adapter',
    });
    const chat = sampleJudgment('m1');
    chat.prompt = { prefix: '', suffix: '', messages: [{ role: 'user', content: 'hi' }] };
    // The prompt a blind A/B judgment measured the adapter on must not become a PPO prompt.
    assert.deepStrictEqual(ppoPrompts([train, blind, chat, sampleJudgment('t2')]), [
      { prompt: train.prompt.prefix, suffix: '' },
    ]);
  });

  it('keeps the suffix of each context: one prompt per distinct prefix and suffix', () => {
    const fim = sampleJudgment('f1');
    fim.prompt = { prefix: 'total = ', suffix: ';\nreturn total;\n' };
    const sameFim = sampleJudgment('f2');
    sameFim.prompt = { ...fim.prompt };
    const otherSuffix = sampleJudgment('f3');
    otherSuffix.prompt = { prefix: 'total = ', suffix: '' };
    assert.deepStrictEqual(ppoPrompts([fim, sameFim, otherSuffix]), [
      { prompt: 'total = ', suffix: ';\nreturn total;\n' },
      { prompt: 'total = ', suffix: '' },
    ]);
  });
});
