import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runTrainingJob, type TrainingEvent } from '../../../src/host/trainingHandlers';
import { createTrainingRunners } from '../../../src/host/trainingRunners';
import { checkpointName, removeUnfinishedCheckpoints } from '../../../src/rlhf/checkpoint';
import { REWARD_MODEL_DIR } from '../../../src/rlhf/rewardModel';
import { appendOracleJudgments } from '../../support/oracleJudgments';
import { TINY_LLAMA_DIR } from '../../support/tinyTraining';

/** The pid of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '0']);
  assert.strictEqual(child.status, 0);
  return child.pid!;
}

/**
 * What writeCheckpoint leaves when its process is killed before the rename: the step's folder
 * under its temporary name, with some of its files and no manifest.
 */
function unfinishedCheckpoint(checkpointsDir: string, step: number): string {
  const name = `${checkpointName(step)}.${deadPid()}.tmp`;
  fs.mkdirSync(path.join(checkpointsDir, name), { recursive: true });
  fs.writeFileSync(path.join(checkpointsDir, name, 'adapter_model.safetensors'), 'torn');
  return name;
}

describe('unfinished checkpoints of a killed run', function () {
  this.timeout(120000);
  let dir: string;
  let data: string;
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unfinished-ck-'));
    data = path.join(dir, 'prefs.jsonl');
    await appendOracleJudgments(data, 16, 'm');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function trainRm(runDir: string, resume: boolean, epochs: number) {
    const logs: string[] = [];
    const done = await runTrainingJob(
      {
        type: 'train/start',
        jobId: 'j',
        kind: 'rm',
        runDir,
        resume,
        config: {
          modelDir: TINY_LLAMA_DIR,
          dataFile: data,
          epochs,
          batchSize: 4,
          loraRank: 2,
          maxPromptTokens: 8,
          maxCompletionTokens: 4,
          checkpointEvery: 1,
        },
      },
      createTrainingRunners().rm,
      (event: TrainingEvent) => {
        if (event.type === 'train/log') logs.push(`${event.level}: ${event.message}`);
      },
      new AbortController().signal,
      (work) => work(),
    );
    return { done, logs };
  }

  it('are removed on resume, with a line naming them; nothing else is', async () => {
    const runDir = path.join(dir, 'run');
    const first = await trainRm(runDir, false, 1);
    assert.strictEqual(first.done.status, 'completed', first.done.error);
    const checkpoints = path.join(runDir, 'checkpoints', REWARD_MODEL_DIR);
    const leftover = unfinishedCheckpoint(checkpoints, 99);
    // Not the checkpoint's temporary name, or not a folder: kept.
    const kept = ['step-12.34.tmp', 'step-0000098.tmp', 'notes.tmp'];
    for (const name of kept) fs.mkdirSync(path.join(checkpoints, name));
    fs.writeFileSync(path.join(checkpoints, 'step-0000097.1.tmp'), 'a file');
    const outside = path.join(dir, 'outside');
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'precious'), 'x');
    fs.symlinkSync(outside, path.join(checkpoints, 'step-0000096.2.tmp'));

    // The pointer's temporary file, left by a kill between its write and its rename.
    const pointerTemp = `.latest.${deadPid()}.${Date.now()}.tmp`;
    fs.writeFileSync(path.join(checkpoints, pointerTemp), 'step-0000099\n');

    const resumed = await trainRm(runDir, true, 2);
    assert.strictEqual(resumed.done.status, 'completed', resumed.done.error);
    assert.ok(!fs.existsSync(path.join(checkpoints, leftover)), 'the unfinished checkpoint');
    assert.ok(!fs.existsSync(path.join(checkpoints, pointerTemp)), 'the pointer temp file');
    assert.ok(
      resumed.logs.includes(
        `warn: ${checkpoints}: removed 1 temporary "latest" pointer file (${pointerTemp}), ` +
          'left by a run killed before renaming it into place',
      ),
      resumed.logs.join('\n'),
    );
    assert.ok(
      resumed.logs.includes(
        `warn: ${checkpoints}: removed 1 unfinished checkpoint folder (${leftover}), left by a ` +
          'run killed while writing it',
      ),
      resumed.logs.join('\n'),
    );
    for (const name of [...kept, 'step-0000097.1.tmp', 'step-0000096.2.tmp']) {
      assert.ok(fs.existsSync(path.join(checkpoints, name)), name);
    }
    assert.strictEqual(fs.readFileSync(path.join(outside, 'precious'), 'utf8'), 'x');
  });

  it("remove the pointer's temporary files of dead pids and this one, and nothing else", () => {
    const checkpoints = path.join(dir, 'checkpoints');
    fs.mkdirSync(checkpoints);
    const dead = deadPid();
    const removed = [`.latest.${dead}.1733000000000.tmp`, `.latest.${process.pid}.17.tmp`];
    // A live process's (it may be writing), other names, and not a file: kept.
    const kept = [
      `.latest.${process.ppid}.17.tmp`,
      `.latest.${dead}.tmp`,
      `.latest.${dead}.17.tmp.bak`,
      `latest.${dead}.17.tmp`,
      `.report.json.${dead}.17.tmp`,
      'latest',
    ];
    for (const name of [...removed, ...kept]) fs.writeFileSync(path.join(checkpoints, name), 'x');
    const folder = `.latest.${dead}.18.tmp`;
    fs.mkdirSync(path.join(checkpoints, folder));
    const logs: string[] = [];
    removeUnfinishedCheckpoints(checkpoints, (message) => logs.push(message));
    assert.deepStrictEqual(fs.readdirSync(checkpoints).sort(), [...kept, folder].sort());
    assert.deepStrictEqual(logs, [
      `${checkpoints}: removed 2 temporary "latest" pointer files (${[...removed].sort().join(', ')}), ` +
        'left by a run killed before renaming them into place',
    ]);
    removeUnfinishedCheckpoints(checkpoints, (message) => assert.fail(message));
  });

  it('are removed by a fresh run in a folder whose first checkpoint was cut short', async () => {
    const runDir = path.join(dir, 'run');
    const checkpoints = path.join(runDir, 'checkpoints', REWARD_MODEL_DIR);
    const leftovers = [unfinishedCheckpoint(checkpoints, 1), unfinishedCheckpoint(checkpoints, 2)];
    const fresh = await trainRm(runDir, false, 1);
    assert.strictEqual(fresh.done.status, 'completed', fresh.done.error);
    assert.ok(
      fresh.logs.some((l) =>
        l.includes(`removed 2 unfinished checkpoint folders (${leftovers.join(', ')})`),
      ),
      fresh.logs.join('\n'),
    );
    assert.deepStrictEqual(
      fs.readdirSync(checkpoints).filter((n) => n.endsWith('.tmp')),
      [],
    );
  });

  it('stay when the run is refused (a fresh run beside checkpoints it did not write)', async () => {
    const runDir = path.join(dir, 'run');
    assert.strictEqual((await trainRm(runDir, false, 1)).done.status, 'completed');
    const checkpoints = path.join(runDir, 'checkpoints', REWARD_MODEL_DIR);
    const leftover = unfinishedCheckpoint(checkpoints, 99);
    const refused = await trainRm(runDir, false, 1);
    assert.strictEqual(refused.done.status, 'failed');
    assert.match(refused.done.error!, /already holds/);
    assert.ok(fs.existsSync(path.join(checkpoints, leftover)));
  });
});
