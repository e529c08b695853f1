import * as assert from 'assert';
import type { TypedMessage } from '../../../src/protocol/modelHost';
import type { HostTransport } from '../../../src/host/loop';
import { createModelHost } from '../../../src/host/modelHost';
import { ModelScheduler } from '../../../src/host/scheduler';
import { FakeGenerator } from './fakeGenerator';

const request = {
  prefix: 'function add(a, b) {\n',
  suffix: '',
  count: 3,
  maxNewTokens: 16,
  maxLines: 1,
  temperature: 0.8,
  topK: 0,
  topP: 0.95,
  seed: 7,
};

function fakeTransport() {
  const sent: TypedMessage[] = [];
  let listener: (raw: unknown) => void = () => {};
  const transport: HostTransport = {
    send: (message) => sent.push(message),
    onMessage: (l) => (listener = l),
  };
  const waitFor = async (predicate: (m: TypedMessage) => boolean): Promise<TypedMessage> => {
    for (let i = 0; i < 200; i++) {
      const found = sent.find(predicate);
      if (found) return found;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    throw new Error(`no matching message; sent: ${JSON.stringify(sent)}`);
  };
  return { transport, sent, deliver: (raw: unknown) => listener(raw), waitFor };
}

const response = (id: number) => (m: TypedMessage) => m.type === 'response' && m.id === id;

describe('model host request loop', () => {
  it('loads a model and answers a completion request with K candidates', async () => {
    const { transport, deliver, waitFor } = fakeTransport();
    const generators: FakeGenerator[] = [];
    createModelHost(transport, async (dir) => {
      generators.push(new FakeGenerator({ name: `m:${dir}` }));
      return generators[generators.length - 1];
    });
    deliver({ type: 'request', id: 1, method: 'load', params: { modelDir: '/models/a' } });
    const loaded = await waitFor(response(1));
    assert.strictEqual(loaded.ok, true);
    assert.strictEqual((loaded.result as { model: string }).model, 'm:/models/a');
    deliver({ type: 'request', id: 2, method: 'complete', params: request });
    const done = await waitFor(response(2));
    const result = done.result as { candidates: { text: string }[]; model: string };
    assert.deepStrictEqual(
      result.candidates.map((c) => c.text),
      [' candidate0\n', ' candidate1\n', ' candidate2\n'],
    );
    assert.deepStrictEqual(generators[0].calls[0], request);
  });

  it('switching models disposes the previous generator exactly once', async () => {
    const { transport, deliver, waitFor } = fakeTransport();
    const generators: FakeGenerator[] = [];
    createModelHost(transport, async () => {
      generators.push(new FakeGenerator());
      return generators[generators.length - 1];
    });
    deliver({ type: 'request', id: 1, method: 'load', params: { modelDir: '/a' } });
    deliver({ type: 'request', id: 2, method: 'load', params: { modelDir: '/a' } });
    deliver({ type: 'request', id: 3, method: 'load', params: { modelDir: '/b' } });
    await waitFor(response(3));
    assert.strictEqual(generators.length, 2, 'loading the same folder twice reuses the sessions');
    assert.strictEqual(generators[0].disposed, 1);
    assert.strictEqual(generators[1].disposed, 0);
  });

  it('rejects bad params naming the key and the allowed range, and unknown methods', async () => {
    const { transport, deliver, waitFor } = fakeTransport();
    createModelHost(transport, async () => new FakeGenerator());
    deliver({ type: 'request', id: 1, method: 'complete', params: { ...request, count: 0 } });
    const bad = await waitFor(response(1));
    assert.strictEqual(bad.ok, false);
    assert.match((bad.error as Error).message, /"count" must be an integer in \[1, 64\], got 0/);
    deliver({ type: 'request', id: 2, method: 'train', params: {} });
    const unknown = await waitFor(response(2));
    assert.match(
      (unknown.error as Error).message,
      /unknown method "train"; allowed: load, complete/,
    );
    deliver({ type: 'request', id: 3, method: 'complete', params: request });
    const noModel = await waitFor(response(3));
    assert.strictEqual((noModel.error as Error).name, 'NoModelLoadedError');
  });

  it('drops malformed messages with a log record and keeps serving', async () => {
    const { transport, deliver, waitFor, sent } = fakeTransport();
    createModelHost(transport, async () => new FakeGenerator());
    deliver('not an object');
    deliver({ type: 'nope' });
    deliver({ type: 'request', id: -1, method: 'ping', params: {} });
    deliver({ type: 'request', id: 9, method: 'ping', params: {} });
    const pong = await waitFor(response(9));
    assert.strictEqual(pong.ok, true);
    const warnings = sent.filter((m) => m.type === 'log' && m.level === 'warn');
    assert.strictEqual(warnings.length, 3, JSON.stringify(warnings));
    assert.match(String(warnings[1].message), /unknown type "nope"; registered: cancel, request/);
  });

  it('a cancelled request answers AbortError and leaves nothing pending', async () => {
    const { transport, deliver, waitFor } = fakeTransport();
    const generator = new FakeGenerator({ delayMs: 10_000 });
    const host = createModelHost(transport, async () => generator);
    deliver({ type: 'request', id: 1, method: 'load', params: { modelDir: '/a' } });
    await waitFor(response(1));
    deliver({ type: 'request', id: 2, method: 'complete', params: request });
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.strictEqual(host.rpc.pending, 1);
    deliver({ type: 'cancel', id: 2 });
    const cancelled = await waitFor(response(2));
    assert.strictEqual((cancelled.error as Error).name, 'AbortError');
    assert.strictEqual(host.rpc.pending, 0);
  });

  it('another module can register its own message type with one call', async () => {
    const { transport, deliver, waitFor } = fakeTransport();
    const host = createModelHost(transport, async () => new FakeGenerator());
    host.loop.register('train/start', (message) =>
      host.loop.send({ type: 'train/done', jobId: message.jobId, status: 'completed' }),
    );
    deliver({ type: 'train/start', jobId: 'j1' });
    const done = await waitFor((m) => m.type === 'train/done');
    assert.strictEqual(done.jobId, 'j1');
    assert.throws(() => host.loop.register('train/start', () => {}), /registered twice/);
  });
});

describe('model scheduler', () => {
  it('runs interactive work before queued background steps', async () => {
    const scheduler = new ModelScheduler();
    const order: string[] = [];
    const step = (name: string) => async () => {
      order.push(name);
      await new Promise((resolve) => setTimeout(resolve, 1));
    };
    const all = [
      scheduler.run('background', step('train-1')),
      scheduler.run('background', step('train-2')),
      scheduler.run('background', step('train-3')),
      scheduler.run('interactive', step('complete')),
    ];
    await Promise.all(all);
    assert.deepStrictEqual(order, ['train-1', 'complete', 'train-2', 'train-3']);
  });

  it('an aborted waiter never runs and does not block the queue', async () => {
    const scheduler = new ModelScheduler();
    const order: string[] = [];
    let release!: () => void;
    const first = scheduler.run('background', () => new Promise<void>((r) => (release = r)));
    const controller = new AbortController();
    const aborted = scheduler.run(
      'interactive',
      async () => order.push('aborted'),
      controller.signal,
    );
    const second = scheduler.run('background', async () => order.push('second'));
    controller.abort();
    await assert.rejects(aborted, { name: 'AbortError' });
    release();
    await Promise.all([first, second]);
    assert.deepStrictEqual(order, ['second']);
    assert.strictEqual(scheduler.waiting, 0);
  });
});
