import * as assert from 'assert';
import type { TypedMessage } from '../../../src/protocol/modelHost';
import { parseTrainingEvent, type TrainingEvent } from '../../../src/protocol/training';
import { MessageLoop, type HostTransport } from '../../../src/host/loop';
import { ModelScheduler } from '../../../src/host/scheduler';
import {
  registerTrainingHandlers,
  type TrainingJobRunner,
  type TrainingRunners,
} from '../../../src/host/trainingHandlers';

function harness(runner: TrainingJobRunner) {
  const sent: TypedMessage[] = [];
  let listener: (raw: unknown) => void = () => {};
  const transport: HostTransport = {
    send: (m) => sent.push(JSON.parse(JSON.stringify(m))),
    onMessage: (l) => (listener = l),
  };
  const loop = new MessageLoop(transport);
  const scheduler = new ModelScheduler();
  const runners: TrainingRunners = { rm: runner, ppo: runner, dpo: runner, gate: runner };
  const handlers = registerTrainingHandlers(loop, scheduler, runners);
  loop.start();
  const events = () =>
    sent.filter((m) => m.type.startsWith('train/')).map((m) => parseTrainingEvent(m));
  const doneFor = async (jobId: string): Promise<TrainingEvent> => {
    for (let i = 0; i < 500; i++) {
      const found = events().find((e) => e.type === 'train/done' && e.jobId === jobId);
      if (found) return found;
      await new Promise((r) => setTimeout(r, 2));
    }
    throw new Error(`no train/done for ${jobId}: ${JSON.stringify(sent)}`);
  };
  return { deliver: (raw: unknown) => listener(raw), events, doneFor, handlers, scheduler, sent };
}

const start = (jobId: string) => ({
  type: 'train/start',
  jobId,
  kind: 'rm',
  runDir: '/tmp/x',
  resume: false,
  config: {},
});

/** A job of `steps` model steps that reports each one, like the real trainers do. */
function steppingRunner(steps: number, stepMs: number): TrainingJobRunner {
  return async (ctx) => {
    for (let s = 1; s <= steps; s++) {
      await ctx.step(() => new Promise((r) => setTimeout(r, stepMs)));
      ctx.progress('optimize', s, steps);
      ctx.metrics(s, { 'loss/train': 1 / s });
    }
    return { status: 'completed', summary: { steps } };
  };
}

describe('model host training jobs', () => {
  it('runs a job and streams progress, metrics and exactly one done', async () => {
    const h = harness(steppingRunner(3, 1));
    h.deliver(start('j1'));
    const done = await h.doneFor('j1');
    assert.deepStrictEqual(done, {
      type: 'train/done',
      jobId: 'j1',
      status: 'completed',
      summary: { steps: 3 },
    });
    const evs = h.events();
    assert.strictEqual(evs.filter((e) => e.type === 'train/metrics').length, 3);
    assert.strictEqual(evs.filter((e) => e.type === 'train/done').length, 1);
    assert.strictEqual(h.handlers.running(), undefined);
  });

  it('cancel stops at the next step boundary and reports "cancelled"', async () => {
    const h = harness(steppingRunner(1000, 2));
    h.deliver(start('j2'));
    await new Promise((r) => setTimeout(r, 20));
    h.deliver({ type: 'train/cancel', jobId: 'j2' });
    const done = await h.doneFor('j2');
    assert.strictEqual(done.type === 'train/done' && done.status, 'cancelled');
    const steps = h.events().filter((e) => e.type === 'train/metrics').length;
    assert.ok(steps > 0 && steps < 1000, `ran ${steps} steps`);
  });

  it('refuses a second job while one runs, and reports failures with the error', async () => {
    const h = harness(steppingRunner(50, 2));
    h.deliver(start('a'));
    h.deliver(start('b'));
    const b = await h.doneFor('b');
    assert.ok(
      b.type === 'train/done' && b.status === 'failed' && /"a" is still running/.test(b.error!),
    );
    h.deliver({ type: 'train/cancel', jobId: 'a' });
    await h.doneFor('a');
    const failing = harness(async () => {
      throw new Error('reward head not found at /x');
    });
    failing.deliver(start('c'));
    const c = await failing.doneFor('c');
    assert.ok(
      c.type === 'train/done' && c.status === 'failed' && c.error === 'reward head not found at /x',
    );
    failing.deliver({
      type: 'train/start',
      jobId: 'd',
      kind: 'sft',
      runDir: '/x',
      resume: false,
      config: {},
    });
    const d = await failing.doneFor('d');
    assert.ok(d.type === 'train/done' && d.status === 'failed' && /"kind" is "sft"/.test(d.error!));
  });

  it('training steps wait behind interactive work, not the other way round', async () => {
    const order: string[] = [];
    const h = harness(async (ctx) => {
      for (let s = 0; s < 3; s++) await ctx.step(async () => void order.push(`train${s}`));
      return { status: 'completed' };
    });
    const gate = h.scheduler.run(
      'interactive',
      () => new Promise<void>((r) => setTimeout(() => (order.push('complete'), r()), 10)),
    );
    h.deliver(start('j'));
    await gate;
    await h.doneFor('j');
    assert.deepStrictEqual(order, ['complete', 'train0', 'train1', 'train2']);
  });
});
