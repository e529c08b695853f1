/**
 * Resuming "Train on my judgments" after the editor lost a run, and the per-run trainer settings
 * (`codeRlhf.trainingSettings`), against a real model host on the tiny fixture model.
 */
import * as assert from 'assert';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { openStore } from '../../../src/data/store';
import {
  chooseEditorRun,
  claimRun,
  findResumableRun,
  readRunRecord,
  runEditorTraining,
  snapshotProblem,
  startEditorRun,
  type EditorRun,
} from '../../../src/extension/editorRun';
import { recordingLogger } from '../../support/recordingLogger';
import { ModelHostClient } from '../../../src/extension/modelHostClient';
import { KL_BUDGET, describeResult } from '../../../src/extension/trainPipeline';
import {
  readTrainingSettings,
  type TrainingSettings,
} from '../../../src/extension/trainingSettings';
import type {
  TrainStartCommand,
  TrainingEvent,
  TrainingKind,
} from '../../../src/protocol/training';
import { appendOracleJudgments } from '../../support/oracleJudgments';

const HOST = path.join(__dirname, '../../../src/host/main.ts');
const MODEL = path.join(__dirname, '../../fixtures/model/tiny-llama');

const small = { loraRank: 2, maxPromptTokens: 12, maxCompletionTokens: 6, checkpointEvery: 0 };

/** Small trainers; PPO checkpoints every iteration so that a lost run has one to resume from. */
const SETTINGS: TrainingSettings = {
  rm: { ...small, epochs: 1, batchSize: 4, learningRate: 0.01 },
  ppo: {
    ...small,
    iterations: 3,
    promptsPerBatch: 2,
    samplesPerPrompt: 2,
    maxNewTokens: 4,
    minibatchSize: 4,
    ppoEpochs: 1,
    checkpointEvery: 1,
  },
};

const hashFile = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** Every file under `dir` (relative path -> sha256). */
function hashTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (at: string) => {
    for (const entry of fs.readdirSync(at, { withFileTypes: true })) {
      const full = path.join(at, entry.name);
      if (entry.isDirectory()) walk(full);
      else out[path.relative(dir, full)] = hashFile(full);
    }
  };
  walk(dir);
  return out;
}

describe('codeRlhf.trainingSettings', () => {
  const problem = (value: unknown) => {
    const read = readTrainingSettings(value);
    assert.ok('problem' in read, `accepted ${JSON.stringify(value)}`);
    return read.problem;
  };

  it('accepts trainer overrides checked by the trainers own config parser', () => {
    assert.deepStrictEqual(readTrainingSettings(undefined), { settings: {} });
    assert.deepStrictEqual(readTrainingSettings({}), { settings: {} });
    assert.deepStrictEqual(readTrainingSettings(SETTINGS), { settings: SETTINGS });
    assert.deepStrictEqual(readTrainingSettings({ dpo: { beta: 0.2, epochs: 4 } }), {
      settings: { dpo: { beta: 0.2, epochs: 4 } },
    });
  });

  it('refuses a bad value naming the setting key, the value and what is allowed', () => {
    assert.strictEqual(
      problem({ ppo: { iterations: 0 } }),
      'codeRlhf.trainingSettings.ppo: "iterations" is 0; allowed: >= 1 and <= 100000',
    );
    assert.strictEqual(
      problem({ dpo: { beta: 0 } }),
      'codeRlhf.trainingSettings.dpo: "beta" is 0; allowed: > 0 and <= 100',
    );
    assert.strictEqual(
      problem({ rm: { useMargins: 'yes' } }),
      'codeRlhf.trainingSettings.rm: "useMargins" is "yes"; allowed: true or false',
    );
    assert.match(
      problem({ rm: { epoch: 2 } }),
      /^codeRlhf\.trainingSettings\.rm: unknown key "epoch"; allowed: .*\bepochs\b/,
    );
    assert.strictEqual(
      problem({ gate: {} }),
      'codeRlhf.trainingSettings: unknown key "gate"; allowed: rm, ppo, dpo',
    );
    assert.strictEqual(
      problem({ ppo: 3 }),
      'codeRlhf.trainingSettings.ppo is 3; allowed: an object of config keys',
    );
    assert.match(problem([]), /^codeRlhf\.trainingSettings is \[\]; allowed: an object/);
    assert.match(
      problem({ ppo: { rewardModelDir: '/x' } }),
      /^codeRlhf\.trainingSettings\.ppo: "rewardModelDir" cannot be set here; PPO is scored/,
    );
    assert.strictEqual(
      problem({ ppo: { targetKl: 3 } }),
      'codeRlhf.trainingSettings.ppo: "targetKl" cannot be set here; PPO\'s KL target is the ' +
        `promotion gate's KL budget (${KL_BUDGET} nats)`,
    );
    assert.match(
      problem({ rm: { dataFile: '/x.jsonl' } }),
      /"dataFile" cannot be set here; the run trains on its own snapshot/,
    );
  });

  it("checks keys as the table's own, so Object's methods are unknown keys", () => {
    for (const top of ['toString', 'constructor', '__proto__']) {
      assert.strictEqual(
        problem(JSON.parse(`{"${top}": {"a": 1}}`)),
        `codeRlhf.trainingSettings: unknown key "${top}"; allowed: rm, ppo, dpo`,
      );
    }
    for (const key of ['constructor', 'toString', '__proto__']) {
      const message = problem(JSON.parse(`{"rm": {"${key}": 5}}`));
      assert.match(
        message,
        new RegExp(`^codeRlhf\\.trainingSettings\\.rm: unknown key "${key}"; allowed: batchSize, `),
      );
      assert.doesNotMatch(message, /native code|object Object/);
    }
    // targetKl is PPO's: for the reward model it is not a key at all, and the list of what is
    // allowed leaves out the keys the run sets itself.
    const rm = problem({ rm: { targetKl: 3 } });
    assert.match(
      rm,
      /^codeRlhf\.trainingSettings\.rm: unknown key "targetKl"; allowed: .*\bepochs\b/,
    );
    assert.doesNotMatch(rm.slice(rm.indexOf('allowed')), /modelDir|dataFile|targetKl/);
  });

  it('checks loraTargets as the trainers do, before a stage trains', () => {
    assert.strictEqual(
      problem({ ppo: { loraTargets: 'q_proj,foo' } }),
      'codeRlhf.trainingSettings.ppo: "loraTargets" has "foo"; allowed: q_proj, k_proj, ' +
        'v_proj, o_proj, gate_proj, up_proj, down_proj',
    );
    assert.strictEqual(
      problem({ dpo: { loraTargets: '' } }),
      'codeRlhf.trainingSettings.dpo: "loraTargets" is empty; name at least one projection',
    );
    assert.deepStrictEqual(readTrainingSettings({ rm: { loraTargets: 'q_proj, o_proj' } }), {
      settings: { rm: { loraTargets: 'q_proj, o_proj' } },
    });
  });
});

describe('Train on my judgments: resuming a lost run', function () {
  this.timeout(300_000);
  let client: ModelHostClient;
  let log: ReturnType<typeof recordingLogger>;
  let dir: string;
  let store: string;
  let trainingDir: string;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'editor-run-'));
    store = path.join(dir, 'prefs.jsonl');
    trainingDir = path.join(dir, 'training');
    await appendOracleJudgments(store, 32, 'm');
    log = recordingLogger();
    client = new ModelHostClient({ modulePath: HOST, execArgv: ['--import', 'tsx'], log });
  });
  afterEach(() => {
    client.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const start = () =>
    startEditorRun({ trainingDir, algorithm: 'ppo', modelDir: MODEL, store, settings: SETTINGS });

  it('continues a run whose model host crashed mid-PPO: no retrained reward model, same adapter as an uninterrupted run', async () => {
    // The uninterrupted run, for reference.
    const reference = await start();
    const whole = await runEditorTraining({
      client,
      log,
      run: reference,
      resumed: false,
      settings: SETTINGS,
      signal: new AbortController().signal,
    });
    assert.strictEqual(whole.status, 'completed', JSON.stringify(whole));
    assert.strictEqual(readRunRecord(reference.runDir)!.status, 'completed');
    assert.strictEqual(findResumableRun(trainingDir, MODEL), undefined);

    // The same run, whose model host dies after PPO's first checkpoint.
    const lost = await start();
    const { pid } = await client.request('ping', {});
    let killed = false;
    const crashed = await runEditorTraining({
      client,
      log,
      run: lost,
      resumed: false,
      settings: SETTINGS,
      signal: new AbortController().signal,
      onEvent: (kind, event) => {
        if (kind === 'ppo' && event.type === 'train/checkpoint' && !killed) {
          killed = true;
          process.kill(pid, 'SIGKILL');
        }
      },
    });
    assert.ok(killed, 'PPO wrote no checkpoint');
    assert.strictEqual(crashed.status, 'failed');
    assert.match(
      crashed.error!,
      /the job was lost\. Run "Code RLHF: Train on my judgments" again to resume this run from its last checkpoint in /,
    );
    const afterCrash = readRunRecord(lost.runDir)!;
    assert.strictEqual(afterCrash.status, 'interrupted');
    assert.deepStrictEqual(Object.keys(afterCrash.finished), ['rm']);
    const rewardModel = afterCrash.finished.rm!.outputPath;
    const rewardModelFiles = hashTree(rewardModel);

    // Judgments made since the run started are not its data: the resume must still work.
    // (The first 32 are stored already: 8 new ones.)
    await appendOracleJudgments(store, 40, 'm');
    assert.strictEqual(await (await openStore(store)).count(), 40);

    const offered = findResumableRun(trainingDir, MODEL);
    assert.ok(offered, 'the lost run is not offered');
    assert.strictEqual(offered.runId, lost.runId);
    assert.match(offered.progress, /^reward model done, PPO at iteration [12] of 3$/);
    assert.strictEqual(findResumableRun(trainingDir, '/another/model'), undefined);

    // A resume with a setting the checkpoint did not train with is refused by the trainer, and
    // the run stays offered.
    const changed = { ...SETTINGS, ppo: { ...SETTINGS.ppo, learningRate: 0.01 } };
    const refused = await runEditorTraining({
      client,
      log,
      run: await claimRun(offered),
      resumed: true,
      settings: changed,
      signal: new AbortController().signal,
    });
    assert.strictEqual(refused.status, 'failed');
    assert.match(
      refused.resumeRefused!,
      /^PPO: cannot resume from .*: this run differs from the checkpoint's in what is trained: learningRate \(checkpoint 0\.0003, now 0\.01\)/,
    );
    // The advice is the editor's, given once: the values to put back into its setting, or its
    // "Start fresh" choice; not CLI flags, nor the trainer's own advice besides.
    assert.match(
      refused.resumeRefused!,
      /now 0\.01\)\. To resume it, put these values back into codeRlhf\.trainingSettings: \{"ppo":\{"learningRate":0\.0003\}\}; or choose "Start fresh", which starts a new run in a new folder \(this one is left as it is\)\.$/,
    );
    assert.strictEqual(refused.resumeRefused!.match(/fresh/gi)?.length, 1);
    assert.doesNotMatch(refused.resumeRefused!, /--|another run folder/);
    assert.deepStrictEqual(refused.resumeRestore, { learningRate: 0.0003 });
    assert.strictEqual(readRunRecord(lost.runDir)!.status, 'interrupted');
    // The record keeps the settings the run started with, which the advice is about.
    assert.deepStrictEqual(readRunRecord(lost.runDir)!.settings, SETTINGS);
    assert.strictEqual(findResumableRun(trainingDir, MODEL)?.runId, lost.runId);

    const started: Array<[TrainingKind, TrainStartCommand]> = [];
    const events: Array<[TrainingKind, TrainingEvent]> = [];
    const resumed = await runEditorTraining({
      client,
      log,
      run: await claimRun(findResumableRun(trainingDir, MODEL)!),
      resumed: true,
      settings: SETTINGS,
      signal: new AbortController().signal,
      onStage: (kind, command) => started.push([kind, command]),
      onEvent: (kind, event) => events.push([kind, event]),
    });
    assert.strictEqual(resumed.status, 'completed', JSON.stringify(resumed));
    // The reward model is not trained again: PPO continues from its checkpoint, scored by it.
    assert.deepStrictEqual(
      started.map(([kind, command]) => [kind, command.resume]),
      [
        ['ppo', true],
        ['gate', false],
      ],
    );
    assert.deepStrictEqual(
      resumed.reused?.map(({ kind, done }) => [kind, done.status, done.summary]),
      [['rm', 'completed', afterCrash.finished.rm!.summary]],
    );
    assert.strictEqual(started[0][1].config.rewardModelDir, rewardModel);
    assert.strictEqual(started[0][1].config.dataFile, lost.dataFile);
    assert.deepStrictEqual(hashTree(rewardModel), rewardModelFiles);
    assert.ok(
      events.some(
        ([kind, e]) =>
          kind === 'ppo' &&
          e.type === 'train/log' &&
          /PPO: resumed from .* at iteration [12]/.test(e.message),
      ),
      'PPO did not resume from its checkpoint',
    );
    assert.match(
      describeResult(resumed),
      /^reward model completed \(validation accuracy [\d.]+%\), reused from the interrupted run; PPO completed/,
    );
    // The trainers write what an uninterrupted run writes: the same adapter, byte for byte.
    const adapter = (result: typeof whole) => result.promotion!.adapterPath;
    assert.notStrictEqual(adapter(resumed), adapter(whole));
    for (const file of ['adapter_model.safetensors', 'held-out-prompts.json']) {
      assert.strictEqual(
        hashFile(path.join(adapter(resumed), file)),
        hashFile(path.join(adapter(whole), file)),
        `${file} differs from the uninterrupted run's`,
      );
    }
    const done = readRunRecord(lost.runDir)!;
    assert.strictEqual(done.status, 'completed');
    assert.deepStrictEqual(Object.keys(done.finished).sort(), ['ppo', 'rm']);
    assert.strictEqual(findResumableRun(trainingDir, MODEL), undefined);
  });

  it('a resume the editor settings cannot mend says so once, and is not offered again', async () => {
    // Interrupted by the window closing after PPO's first checkpoint.
    const run = await start();
    const controller = new AbortController();
    const closed = await runEditorTraining({
      client,
      log,
      run,
      resumed: false,
      settings: SETTINGS,
      signal: controller.signal,
      closing: () => true,
      onEvent: (kind, event) => {
        if (kind === 'ppo' && event.type === 'train/checkpoint') controller.abort();
      },
    });
    assert.strictEqual(closed.status, 'cancelled', JSON.stringify(closed));
    assert.strictEqual(readRunRecord(run.runDir)!.status, 'interrupted');
    const resume = (overrides?: Record<string, Record<string, unknown>>) =>
      runEditorTraining({
        client,
        log,
        run: { ...run, record: readRunRecord(run.runDir)! },
        resumed: true,
        settings: SETTINGS,
        signal: new AbortController().signal,
        ...(overrides ? { overrides } : {}),
      });
    const refusedWith = async (result: Awaited<ReturnType<typeof resume>>, why: RegExp) => {
      assert.strictEqual(result.status, 'failed', JSON.stringify(result));
      assert.match(result.resumeRefused!, why);
      assert.match(
        result.resumeRefused!,
        /This run cannot be resumed \(.*\): choose "Start fresh", which starts a new run in a new folder \(this one is left as it is\)\.$/,
      );
      assert.strictEqual(result.resumeRefused!.match(/fresh/gi)?.length, 1);
      assert.doesNotMatch(result.resumeRefused!, /codeRlhf\.trainingSettings/);
      const record = readRunRecord(run.runDir)!;
      assert.strictEqual(record.status, 'failed');
      assert.deepStrictEqual(record.settings, SETTINGS);
      assert.strictEqual(findResumableRun(trainingDir, MODEL), undefined);
    };
    // A key the run sets itself (targetKl is the gate's KL budget).
    await refusedWith(
      await resume({ ppo: { targetKl: 3 } }),
      /targetKl \(checkpoint 6, now 3\)\. This run cannot be resumed \(targetKl is set by the run itself\)/,
    );
    // Its judgments snapshot changed: nothing to put back.
    const lines = fs.readFileSync(run.dataFile, 'utf8').trimEnd().split('\n');
    fs.writeFileSync(run.dataFile, `${lines.slice(1).join('\n')}\n`);
    await refusedWith(
      await resume(),
      /the data file changed since the checkpoint\)\. This run cannot be resumed \(what changed is not a setting\)/,
    );
  });

  it('offers a run interrupted by the window closing, not one the user cancelled', async () => {
    const interrupt = async (run: EditorRun, closing: boolean) => {
      const controller = new AbortController();
      return runEditorTraining({
        client,
        log,
        run,
        resumed: false,
        settings: { ...SETTINGS, rm: { ...SETTINGS.rm, epochs: 20, batchSize: 2 } },
        signal: controller.signal,
        closing: () => closing,
        onEvent: (_kind, event) => {
          if (event.type === 'train/progress') controller.abort();
        },
      });
    };
    const cancelled = await start();
    assert.strictEqual((await interrupt(cancelled, false)).status, 'cancelled');
    assert.strictEqual(readRunRecord(cancelled.runDir)!.status, 'cancelled');
    assert.strictEqual(findResumableRun(trainingDir, MODEL), undefined);

    const closed = await start();
    assert.strictEqual((await interrupt(closed, true)).status, 'cancelled');
    assert.strictEqual(readRunRecord(closed.runDir)!.status, 'interrupted');
    const offered = findResumableRun(trainingDir, MODEL);
    assert.strictEqual(offered?.runId, closed.runId);
    assert.match(offered.progress, /^reward model (not checkpointed yet|at step \d+)$/);
    // Each run trains on its own snapshot of the store.
    assert.strictEqual(
      fs.readFileSync(closed.dataFile, 'utf8'),
      fs.readFileSync(cancelled.dataFile, 'utf8'),
    );
    assert.strictEqual(closed.record.judgments, 32);
  });

  it('offers a run whose window died while it ran, but not one another live window runs', async () => {
    const run = await start();
    // This process runs it: another window must not offer to resume it.
    assert.strictEqual(findResumableRun(trainingDir, MODEL), undefined);
    const record = readRunRecord(run.runDir)!;
    // A pid that no process has (above the kernel's maximum).
    const gone = { ...record, owner: { ...record.owner, pid: 2 ** 22 + 1 } };
    fs.writeFileSync(path.join(run.runDir, 'editor-run.json'), JSON.stringify(gone));
    assert.strictEqual(findResumableRun(trainingDir, MODEL)?.runId, run.runId);
  });

  it('offers only the newest run of the model: not an older lost one behind a live or unreadable one', async () => {
    const pause = () => new Promise((resolve) => setTimeout(resolve, 5));
    const loseRun = (run: EditorRun) => {
      const record = readRunRecord(run.runDir)!;
      const gone = { ...record, owner: { ...record.owner, pid: 2 ** 22 + 1 } };
      fs.writeFileSync(path.join(run.runDir, 'editor-run.json'), JSON.stringify(gone));
    };
    const older = await start();
    loseRun(older);
    await pause();
    // Newer, and run by this (live) process.
    const newer = await start();
    assert.strictEqual(findResumableRun(trainingDir, MODEL), undefined);
    // Newer, and its record damaged: it may be of this model.
    fs.writeFileSync(path.join(newer.runDir, 'editor-run.json'), '{"version": 1, "runId"');
    const warnings: string[] = [];
    assert.strictEqual(
      findResumableRun(trainingDir, MODEL, (m) => warnings.push(m)),
      undefined,
    );
    assert.match(
      warnings.join('\n'),
      /^no run offered for resuming: .*editor-run\.json: not JSON \(.*\); older runs are not/,
    );
    // A newer run of another model does not hide this model's lost run.
    fs.rmSync(newer.runDir, { recursive: true });
    await pause();
    await startEditorRun({
      trainingDir,
      algorithm: 'ppo',
      modelDir: '/another/model',
      store,
      settings: {},
    });
    assert.strictEqual(findResumableRun(trainingDir, MODEL)?.runId, older.runId);
  });

  it('does not offer a run whose record is damaged, naming the file and key, and starts a new one', async () => {
    const cases: Array<[string, (r: Record<string, unknown>) => void, RegExp]> = [
      ['finished null', (r) => (r.finished = null), /"finished" is null; allowed: an object/],
      ['finished missing', (r) => delete r.finished, /"finished" is missing; allowed: an object/],
      ['algorithm 7', (r) => (r.algorithm = 7), /"algorithm" is 7; allowed: "ppo", "dpo"/],
      [
        'algorithm sft',
        (r) => (r.algorithm = 'sft'),
        /"algorithm" is "sft"; allowed: "ppo", "dpo"/,
      ],
      // process.kill(0 or -1, 0) succeeds: such an owner would look alive for ever.
      ['pid 0', (r) => (r.owner = { pid: 0, host: os.hostname() }), /"owner.pid" is 0; allowed/],
      ['pid -1', (r) => (r.owner = { pid: -1, host: os.hostname() }), /"owner.pid" is -1;/],
      ['pid 1.5', (r) => (r.owner = { pid: 1.5, host: os.hostname() }), /"owner.pid" is 1.5;/],
      ['status', (r) => (r.status = 'paused'), /"status" is "paused"; allowed: "running", /],
      ['judgments', (r) => (r.judgments = -3), /"judgments" is -3; allowed: an integer >= 1/],
      ['finished.rm', (r) => (r.finished = { rm: 'x' }), /"finished\.rm" is "x"; allowed: an obj/],
      [
        'settings',
        (r) => (r.settings = { sft: {} }),
        /"settings" is not valid as .*unknown key "sft"/,
      ],
    ];
    for (const [name, edit, expected] of cases) {
      fs.rmSync(trainingDir, { recursive: true, force: true });
      const run = await start();
      const file = path.join(run.runDir, 'editor-run.json');
      const record = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
      record.status = 'interrupted';
      edit(record);
      fs.writeFileSync(file, JSON.stringify(record));
      const warnings: string[] = [];
      const lost = findResumableRun(trainingDir, MODEL, (m) => warnings.push(m));
      assert.strictEqual(lost, undefined, `${name}: offered`);
      assert.strictEqual(warnings.length, 1, name);
      assert.ok(warnings[0]!.includes(`${file}: `), `${name}: ${warnings[0]}`);
      assert.match(warnings[0]!, expected, name);
      const chosen = await chooseEditorRun({
        lost,
        ask: () => Promise.reject(new Error('nothing to ask about')),
        signal: new AbortController().signal,
        start,
      });
      assert.strictEqual(chosen?.resumed, false, name);
      assert.notStrictEqual(chosen.run.runId, run.runId);
    }
  });

  it('refuses to resume on a snapshot changed since the run started, and offers it no more', async () => {
    const lose = (run: EditorRun, edit: (r: Record<string, unknown>) => void = () => undefined) => {
      const file = path.join(run.runDir, 'editor-run.json');
      const record = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
      record.status = 'interrupted';
      edit(record);
      fs.writeFileSync(file, JSON.stringify(record));
    };
    const lines = (run: EditorRun) => fs.readFileSync(run.dataFile, 'utf8').split('\n');
    const run = await start();
    assert.deepStrictEqual(readRunRecord(run.runDir)!.snapshot, {
      sha256: hashFile(run.dataFile),
      lines: 32,
    });
    lose(run);
    // Truncated to 10 judgments: the reward model that finished trained on 32.
    fs.writeFileSync(run.dataFile, `${lines(run).slice(0, 10).join('\n')}\n`);
    const lost = findResumableRun(trainingDir, MODEL)!;
    assert.strictEqual(lost.runId, run.runId);
    const problem = snapshotProblem(lost)!;
    assert.ok(problem.startsWith(`its judgments snapshot ${run.dataFile} changed since`), problem);
    assert.match(problem, /\(32 lines, sha256 [0-9a-f]{64}; now 10 lines, sha256 [0-9a-f]{64}\)/);
    await assert.rejects(claimRun(lost), (error: Error) => {
      assert.ok(error.message.includes(run.dataFile), error.message);
      assert.match(error.message, /cannot be resumed: .*; start a fresh run$/);
      return true;
    });
    const refused = readRunRecord(run.runDir)!;
    assert.strictEqual(refused.status, 'failed');
    assert.ok(refused.error!.includes(run.dataFile), refused.error);
    assert.strictEqual(findResumableRun(trainingDir, MODEL), undefined);

    // Same number of lines, one judgment edited: only the digest tells.
    fs.rmSync(trainingDir, { recursive: true });
    const edited = await start();
    lose(edited);
    const all = lines(edited);
    // The judgment flipped: the other candidate is the best one.
    all[3] = all[3]!.replace(/"best":"c(\d)"/, (_, c: string) => `"best":"c${1 - Number(c)}"`);
    assert.notStrictEqual(all.join('\n'), fs.readFileSync(edited.dataFile, 'utf8'));
    fs.writeFileSync(edited.dataFile, all.join('\n'));
    assert.match(
      snapshotProblem(findResumableRun(trainingDir, MODEL)!)!,
      /\(32 lines, .*; now 32 lines/,
    );

    // A record from before the digest was kept: checked by its count of judgments.
    fs.rmSync(trainingDir, { recursive: true });
    const old = await start();
    lose(old, (r) => delete r.snapshot);
    assert.strictEqual(snapshotProblem(findResumableRun(trainingDir, MODEL)!), undefined);
    fs.writeFileSync(old.dataFile, `${lines(old).slice(0, 10).join('\n')}\n`);
    assert.match(
      snapshotProblem(findResumableRun(trainingDir, MODEL)!)!,
      /changed since the run started \(32 judgments; now 10 lines/,
    );
    fs.rmSync(old.dataFile);
    assert.strictEqual(
      snapshotProblem(findResumableRun(trainingDir, MODEL)!),
      `its judgments snapshot ${old.dataFile} is gone`,
    );
  });

  it('does not claim a run another live window took over while the question was open', async () => {
    const run = await start();
    const record = readRunRecord(run.runDir)!;
    const lost = { ...record, status: 'interrupted' as const };
    fs.writeFileSync(path.join(run.runDir, 'editor-run.json'), JSON.stringify(lost));
    const offered = findResumableRun(trainingDir, MODEL)!;
    assert.strictEqual(offered.runId, run.runId);
    // Another window (a live process here: this one's parent) claims it first.
    const taken = { ...record, status: 'running', owner: { ...record.owner, pid: process.ppid } };
    fs.writeFileSync(path.join(run.runDir, 'editor-run.json'), JSON.stringify(taken));
    await assert.rejects(claimRun(offered), /was resumed meanwhile by another window \(pid \d+\)/);
    assert.strictEqual(readRunRecord(run.runDir)!.owner.pid, process.ppid);
    // Or it ended there.
    fs.writeFileSync(
      path.join(run.runDir, 'editor-run.json'),
      JSON.stringify({ ...record, status: 'completed' }),
    );
    await assert.rejects(claimRun(offered), /ended completed meanwhile; it is not resumed here/);
    // Lost again: claimed here.
    fs.writeFileSync(path.join(run.runDir, 'editor-run.json'), JSON.stringify(lost));
    const claimed = await claimRun(offered);
    assert.strictEqual(claimed.record.owner.pid, process.pid);
    assert.strictEqual(readRunRecord(run.runDir)!.status, 'running');
  });

  it('claims or starts nothing when the run was cancelled while the resume question was open', async () => {
    const run = await start();
    const record = readRunRecord(run.runDir)!;
    const lost = { ...record, status: 'interrupted' as const, owner: { ...record.owner, pid: 1 } };
    fs.writeFileSync(path.join(run.runDir, 'editor-run.json'), JSON.stringify(lost));
    const offered = findResumableRun(trainingDir, MODEL)!;
    assert.strictEqual(offered.runId, run.runId);
    const folders = () => fs.readdirSync(trainingDir).sort();
    const before = folders();
    for (const answer of ['resume', 'fresh'] as const) {
      const controller = new AbortController();
      const chosen = await chooseEditorRun({
        lost: offered,
        // "Cancel it" from a second command while the question is open, then an answer.
        ask: async () => (controller.abort(), answer),
        signal: controller.signal,
        start,
      });
      assert.strictEqual(chosen, undefined, answer);
      assert.deepStrictEqual(readRunRecord(run.runDir), lost);
      assert.deepStrictEqual(folders(), before);
    }
    const chosen = await chooseEditorRun({
      lost: offered,
      ask: async () => 'resume',
      signal: new AbortController().signal,
      start,
    });
    assert.strictEqual(chosen?.resumed, true);
    assert.strictEqual(readRunRecord(run.runDir)!.owner.pid, process.pid);
  });

  it('starts no run on a store without judgments', async () => {
    await assert.rejects(
      startEditorRun({
        trainingDir,
        algorithm: 'dpo',
        modelDir: MODEL,
        store: path.join(dir, 'empty.jsonl'),
        settings: {},
      }),
      /empty\.jsonl holds no judgments yet; judge some comparisons first/,
    );
    assert.deepStrictEqual(fs.readdirSync(trainingDir), []);
  });
});
