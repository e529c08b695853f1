import * as assert from 'assert';
import { fork, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { appendOracleJudgments } from '../../support/oracleJudgments';
import { parseTrainingEvent, type TrainingEvent } from '../../../src/protocol/training';

const HOST = path.join(__dirname, '../../../src/host/main.ts');
const MODEL = path.join(__dirname, '../../fixtures/model/tiny-llama');

describe('training jobs in a real model-host process', function () {
  this.timeout(120000);
  let child: ChildProcess | undefined;
  afterEach(() => child?.kill());

  it('streams validated events, cancels at a step boundary, and resumes from the checkpoint', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'host-train-'));
    await appendOracleJudgments(path.join(dir, 'prefs.jsonl'), 48, 'm');
    child = fork(HOST, [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    const events: TrainingEvent[] = [];
    const waiters: Array<() => void> = [];
    let started = false;
    let exited = false;
    child.on('exit', () => {
      exited = true;
      waiters.splice(0).forEach((w) => w());
    });
    child.on('message', (raw: { type?: string; message?: string }) => {
      if (raw?.type === 'log' && /model host started/.test(raw.message ?? '')) {
        started = true;
        waiters.splice(0).forEach((w) => w());
      }
      if (typeof raw?.type === 'string' && raw.type.startsWith('train/')) {
        events.push(parseTrainingEvent(raw));
        waiters.splice(0).forEach((w) => w());
      }
    });
    const waitFor = async (pred: (e: TrainingEvent) => boolean) => {
      for (;;) {
        const found = events.find(pred);
        if (found) return found;
        const failed = events.find((e) => e.type === 'train/done' && e.status === 'failed');
        if (failed) throw new Error(`job failed: ${JSON.stringify(failed)}`);
        if (exited) throw new Error(`model host exited; events: ${JSON.stringify(events)}`);
        await new Promise<void>((r) => waiters.push(r));
      }
    };
    // Messages sent before the host's loop listens would be lost: wait for its first log.
    while (!started) {
      if (exited) throw new Error('model host exited before it started');
      await new Promise<void>((r) => waiters.push(r));
    }
    const config = {
      modelDir: MODEL,
      dataFile: path.join(dir, 'prefs.jsonl'),
      epochs: 4,
      batchSize: 4,
      checkpointEvery: 2,
      loraRank: 2,
      maxPromptTokens: 12,
      maxCompletionTokens: 6,
      learningRate: 0.01,
    };
    const runDir = path.join(dir, 'run');
    child.send({ type: 'train/start', jobId: 'a', kind: 'rm', runDir, resume: false, config });
    const checkpoint = await waitFor((e) => e.type === 'train/checkpoint' && e.jobId === 'a');
    child.send({ type: 'train/cancel', jobId: 'a' });
    const cancelled = await waitFor((e) => e.type === 'train/done' && e.jobId === 'a');
    assert.strictEqual(cancelled.type === 'train/done' && cancelled.status, 'cancelled');
    const stepsBefore = events.filter((e) => e.type === 'train/progress' && e.jobId === 'a').length;
    assert.ok(
      stepsBefore >= 2 && stepsBefore < 40,
      `ran ${stepsBefore} steps before the cancel took effect`,
    );

    child.send({ type: 'train/start', jobId: 'b', kind: 'rm', runDir, resume: true, config });
    const done = await waitFor((e) => e.type === 'train/done' && e.jobId === 'b');
    assert.ok(done.type === 'train/done' && done.status !== 'failed', JSON.stringify(done));
    const resumedLog = events.find(
      (e) =>
        e.type === 'train/log' &&
        e.jobId === 'b' &&
        /resumed from .*step-\d+ at step \d+/.test(e.message),
    );
    assert.ok(resumedLog, 'no "resumed from" log record');
    const firstProgress = events.find((e) => e.type === 'train/progress' && e.jobId === 'b');
    assert.ok(
      firstProgress?.type === 'train/progress' &&
        checkpoint.type === 'train/checkpoint' &&
        firstProgress.step > checkpoint.step,
    );
    assert.ok(
      done.type === 'train/done' &&
        fs.existsSync(path.join(done.outputPath!, 'reward_head.safetensors')),
    );
    assert.ok(events.some((e) => e.type === 'train/metrics' && 'eval/accuracy' in e.metrics));
  });
});
