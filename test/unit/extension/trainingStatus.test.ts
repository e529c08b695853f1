import * as assert from 'assert';
import { followTraining } from '../../../src/extension/trainingStatus';
import type { TypedMessage } from '../../../src/protocol/modelHost';

describe('training state in the status bar', () => {
  it('follows progress and completion events and drops malformed ones', () => {
    const listeners = new Map<string, (m: TypedMessage) => void>();
    const client = {
      on: (type: string, listener: (m: TypedMessage) => void) => {
        listeners.set(type, listener);
        return { dispose: () => listeners.delete(type) };
      },
    };
    const warnings: string[] = [];
    const log = { info() {}, debug() {}, error() {}, warn: (m: string) => warnings.push(m) };
    const states: string[] = [];
    const subscription = followTraining(client, log, (text) => states.push(text));
    const emit = (m: TypedMessage) => listeners.get(m.type)!(m);
    emit({ type: 'train/progress', jobId: 'j', phase: 'rollout', step: 3, totalSteps: 40 });
    emit({ type: 'train/progress', jobId: 'j', phase: 'rollout', step: -1, totalSteps: 40 });
    emit({ type: 'train/done', jobId: 'j', status: 'cancelled' });
    emit({ type: 'train/done', jobId: 'j', status: 'completed' });
    assert.deepStrictEqual(states, ['rollout 3/40', 'idle (last run cancelled)', 'idle']);
    assert.strictEqual(warnings.length, 1);
    assert.match(warnings[0], /"step" must be a non-negative integer, got -1/);
    subscription.dispose();
    assert.strictEqual(listeners.size, 0);
  });
});
