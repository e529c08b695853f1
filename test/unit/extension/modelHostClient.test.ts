import * as assert from 'assert';
import * as path from 'path';
import { ModelHostClient } from '../../../src/extension/modelHostClient';
import { recordingLogger } from '../../support/recordingLogger';

const hostScript = path.join(__dirname, '..', 'host', 'fixtures', 'testHost.ts');

const params = (prefix: string) => ({
  prefix,
  suffix: '',
  count: 2,
  maxNewTokens: 8,
  maxLines: 1,
  temperature: 0.7,
  topK: 0,
  topP: 1,
  seed: 1,
});

describe('model host client (real child process)', function () {
  this.timeout(30_000);
  let client: ModelHostClient;
  let log: ReturnType<typeof recordingLogger>;

  beforeEach(() => {
    log = recordingLogger();
    client = new ModelHostClient({
      modulePath: hostScript,
      execArgv: ['--import', 'tsx'],
      log,
      maxCrashes: 2,
      crashWindowMs: 60_000,
    });
  });
  afterEach(() => client.dispose());

  it('forks the host, loads a model and gets validated candidates', async () => {
    const loaded = await client.request('load', { modelDir: '/models/a' });
    assert.strictEqual(loaded.model, 'fake:/models/a');
    const result = await client.request('complete', params('x = '));
    assert.deepStrictEqual(
      result.candidates.map((c) => c.text),
      ['x = #0', 'x = #1'],
    );
    assert.ok(log.lines.some((l) => /\[model-host:generation\] loaded fake:\/models\/a/.test(l)));
  });

  it('reports a load error with the host message', async () => {
    await assert.rejects(client.request('load', { modelDir: '/models/missing' }), {
      message: 'no config.json in /models/missing',
    });
  });

  it('cancels a request: rejects at once with AbortError and the host stays usable', async () => {
    await client.request('load', { modelDir: '/models/a' });
    const controller = new AbortController();
    const hanging = client.request('complete', params('HANG'), controller.signal);
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(hanging, { name: 'AbortError' });
    assert.strictEqual(client.inFlight, 0);
    const pong = await client.request('ping', {});
    assert.strictEqual(pong.model, 'fake:/models/a');
  });

  it('restarts a crashed host, restores the model and says so in the log', async () => {
    await client.request('load', { modelDir: '/models/a' });
    const firstPid = client.pid;
    await assert.rejects(client.request('complete', params('CRASH')), {
      name: 'ModelHostCrashedError',
      message: /exited with code 3 while serving complete/,
    });
    // The next request goes to a new process that has the same model loaded again.
    const result = await client.request('complete', params('y = '));
    assert.deepStrictEqual(
      result.candidates.map((c) => c.text),
      ['y = #0', 'y = #1'],
    );
    assert.notStrictEqual(client.pid, firstPid);
    assert.strictEqual(client.starts, 2);
    assert.ok(
      log.lines.some((l) => /warn model host exited unexpectedly \(code 3\); restarting/.test(l)),
    );
  });

  it('stops restarting after repeated crashes and tells why', async () => {
    await client.request('load', { modelDir: '/models/a' });
    await assert.rejects(client.request('complete', params('CRASH')));
    await client.request('ping', {});
    await assert.rejects(client.request('complete', params('CRASH')));
    await assert.rejects(
      client.request('ping', {}),
      /crashed 2 times within 60 s .* not restarting/,
    );
    client.resetCrashCount();
    const r = await client.request('ping', {});
    assert.strictEqual(r.model, 'fake:/models/a');
  });
});
