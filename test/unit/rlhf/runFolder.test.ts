import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
// The module object itself, whose functions a test may replace (the namespace above has getters).
import fsModule from 'fs';
import * as os from 'os';
import * as path from 'path';
import { appendOracleJudgments } from '../../support/oracleJudgments';
import { runCli } from '../../../src/cli/main';
import { createRunFolder } from '../../../src/extension/trainPipeline';
import { runTrainingJob, type TrainingEvent } from '../../../src/host/trainingHandlers';
import { EDITOR_ADVICE, createTrainingRunners } from '../../../src/host/trainingRunners';
import { writeCheckpoint } from '../../../src/rlhf/checkpoint';
import {
  LOCK_FILE,
  lockRunFolder,
  prepareRunFolder,
  type RunFolderLock,
} from '../../../src/rlhf/runFolder';

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const MODEL = path.join(__dirname, '../../fixtures/model/tiny-llama');

/** The pid of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '0']);
  assert.strictEqual(child.status, 0);
  return child.pid!;
}

function cliIo() {
  const out: string[] = [];
  return { out, io: { out: (t: string) => out.push(t), err: (t: string) => out.push(t) } };
}

describe('run folder checks before a job starts', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'run-folder-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('creates the checkpoint folder and leaves no test file behind', () => {
    const runDir = path.join(dir, 'a', 'run');
    prepareRunFolder(runDir, 'reward-model');
    assert.deepStrictEqual(fs.readdirSync(runDir), ['checkpoints']);
    assert.deepStrictEqual(fs.readdirSync(path.join(runDir, 'checkpoints', 'reward-model')), []);
    prepareRunFolder(path.join(dir, 'gate'));
    assert.deepStrictEqual(fs.readdirSync(path.join(dir, 'gate')), []);
  });

  it('refuses an empty path, and files where its folders go, naming them', () => {
    assert.throws(() => prepareRunFolder(''), /^Error: the run folder is "": name the folder/);
    assert.throws(() => prepareRunFolder('  ', 'policy'), /the run folder is " {2}"/);
    const file = path.join(dir, 'afile');
    fs.writeFileSync(file, 'precious');
    assert.throws(
      () => prepareRunFolder(file, 'policy'),
      new RegExp(`^Error: ${escape(file)} is a file, not a folder: .*choose another run folder$`),
    );
    assert.throws(
      () => prepareRunFolder(path.join(file, 'run')),
      new RegExp(`^Error: cannot create the run folder ${escape(path.join(file, 'run'))}: ENOTDIR`),
    );
    for (const blocker of ['checkpoints', path.join('checkpoints', 'policy'), 'policy']) {
      const runDir = path.join(dir, `run-${blocker.replace(/\W/g, '-')}`);
      fs.mkdirSync(path.dirname(path.join(runDir, blocker)), { recursive: true });
      fs.writeFileSync(path.join(runDir, blocker), 'precious');
      assert.throws(
        () => prepareRunFolder(runDir, 'policy'),
        new RegExp(
          `^Error: ${escape(path.join(runDir, blocker))} is a file, not a folder: the run ` +
            'writes in a folder there; move the file away or choose another run folder$',
        ),
      );
      assert.strictEqual(fs.readFileSync(path.join(runDir, blocker), 'utf8'), 'precious');
    }
    assert.strictEqual(fs.readFileSync(file, 'utf8'), 'precious');
  });

  it('train refuses them before it loads the model; --run-dir "" is a usage error', async () => {
    const file = path.join(dir, 'afile');
    fs.writeFileSync(file, 'precious');
    const blocked = path.join(dir, 'run');
    fs.mkdirSync(blocked);
    fs.writeFileSync(path.join(blocked, 'checkpoints'), 'precious');
    // An empty store: a run that got past the folder check would load the model and say that
    // it has no training pairs. (Input paths are checked before the folder, see inputPaths.)
    const store = path.join(dir, 'empty.jsonl');
    fs.writeFileSync(store, '');
    const common = ['--modelDir', MODEL, '--dataFile', store];
    for (const [runDir, error] of [
      [file, `${escape(file)} is a file, not a folder`],
      [blocked, `${escape(path.join(blocked, 'checkpoints'))} is a file, not a folder`],
    ]) {
      for (const kind of ['rm', 'dpo']) {
        const out: string[] = [];
        const io = { out: (t: string) => out.push(t), err: (t: string) => out.push(t) };
        assert.strictEqual(await runCli(['train', kind, '--run-dir', runDir, ...common], io), 1);
        assert.match(out.join('\n'), new RegExp(`\\[error\\] ${error}`));
      }
    }
    const out: string[] = [];
    const io = { out: (t: string) => out.push(t), err: (t: string) => out.push(t) };
    assert.strictEqual(await runCli(['train', 'rm', '--run-dir', '', ...common], io), 2);
    assert.match(out.join('\n'), /--run-dir is empty; name a folder for the run/);
  });
});

describe('run folder lock', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'run-lock-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const noWarning = (message: string) => assert.fail(`unexpected warning: ${message}`);

  it('refuses a second holder, naming the folder and the pid, until the first releases', () => {
    const lock = lockRunFolder(dir, 'wait for it', noWarning);
    const held = JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8'));
    assert.strictEqual(held.pid, process.pid);
    assert.ok(Date.now() - Date.parse(held.started) < 60_000, held.started);
    assert.throws(
      () => lockRunFolder(dir, 'wait for it', noWarning),
      new RegExp(
        `^Error: the run folder ${escape(dir)} is in use by another training run ` +
          `\\(pid ${process.pid} on ${escape(os.hostname())}, since ${escape(held.started)}\\); ` +
          `wait for it \\(if no run uses the folder, delete ${escape(path.join(dir, LOCK_FILE))}\\)$`,
      ),
    );
    lock.release();
    lock.release();
    assert.deepStrictEqual(fs.readdirSync(dir), []);
    lockRunFolder(dir, 'wait for it', noWarning).release();
  });

  it("takes over a dead holder's lock with a warning, and never removes another's lock", () => {
    const file = path.join(dir, LOCK_FILE);
    const pid = deadPid();
    const stale = { pid, host: os.hostname(), started: '2026-01-01T00:00:00.000Z', nonce: 'x' };
    fs.writeFileSync(file, JSON.stringify(stale));
    const warnings: string[] = [];
    const lock = lockRunFolder(dir, 'wait', (m) => warnings.push(m));
    assert.deepStrictEqual(warnings, [
      `${file}: took over the lock of pid ${pid} on ${os.hostname()}, since ` +
        '2026-01-01T00:00:00.000Z, which is no longer running',
    ]);
    assert.strictEqual(JSON.parse(fs.readFileSync(file, 'utf8')).pid, process.pid);
    // Someone else's lock in its place (deleted by hand and retaken): release leaves it.
    fs.writeFileSync(file, JSON.stringify({ ...stale, pid: process.pid, nonce: 'other' }));
    lock.release();
    assert.ok(fs.existsSync(file));
    // Another host's lock cannot be judged here: held.
    fs.writeFileSync(file, JSON.stringify({ ...stale, host: 'elsewhere.example' }));
    assert.throws(
      () => lockRunFolder(dir, 'wait', noWarning),
      /in use by .* on elsewhere\.example/,
    );
    // Unreadable content: a starter may be writing it; once old, a killed starter left it.
    fs.writeFileSync(file, '');
    assert.throws(() => lockRunFolder(dir, 'wait', noWarning), /is being locked by another run/);
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(file, old, old);
    warnings.length = 0;
    lockRunFolder(dir, 'wait', (m) => warnings.push(m)).release();
    assert.match(warnings.join(), /took over the lock of unreadable content ""/);
    assert.deepStrictEqual(fs.readdirSync(dir), []);
  });

  it('refuses a lock that is a folder or a pipe, naming it; a pid of 0 or below is no holder', () => {
    const file = path.join(dir, LOCK_FILE);
    fs.mkdirSync(file);
    const refusal = (kind: string) =>
      new RegExp(
        `^Error: the run folder's lock ${escape(file)} is ${kind}; allowed: a lock file ` +
          'written by a run\\. Remove it if no run is using this folder\\.$',
      );
    assert.throws(() => lockRunFolder(dir, 'wait', noWarning), refusal('a folder'));
    assert.ok(fs.statSync(file).isDirectory());
    fs.rmdirSync(file);
    // A named pipe: opening it to read would block; it is refused without opening.
    assert.strictEqual(spawnSync('mkfifo', [file]).status, 0);
    assert.throws(() => lockRunFolder(dir, 'wait', noWarning), refusal('not a regular file'));
    fs.rmSync(file);
    // pid 0 and -1 name process groups, which always answer a signal: content, not a holder.
    for (const pid of [0, -1]) {
      const info = { pid, host: os.hostname(), started: '2026-01-01T00:00:00.000Z', nonce: 'n' };
      fs.writeFileSync(file, JSON.stringify(info));
      const old = new Date(Date.now() - 60_000);
      fs.utimesSync(file, old, old);
      const warnings: string[] = [];
      lockRunFolder(dir, 'wait', (m) => warnings.push(m)).release();
      assert.match(warnings.join(), /took over the lock of unreadable content/);
    }
  });

  it('removes its lock file and names the folder when writing the lock fails', () => {
    const file = path.join(dir, LOCK_FILE);
    const writeSync = fsModule.writeSync;
    const fail = (written?: number) =>
      Object.assign(fsModule, {
        writeSync: () => {
          if (written !== undefined) return written;
          const error: NodeJS.ErrnoException = new Error('ENOSPC: no space left on device, write');
          error.code = 'ENOSPC';
          throw error;
        },
      });
    try {
      fail();
      assert.throws(
        () => lockRunFolder(dir, 'wait', noWarning),
        new RegExp(
          `^Error: cannot lock the run folder ${escape(dir)}: ENOSPC: no space left on device`,
        ),
      );
      assert.deepStrictEqual(fs.readdirSync(dir), []);
      // A write cut short without an error (a full disk) leaves a torn lock: removed too.
      fail(3);
      assert.throws(
        () => lockRunFolder(dir, 'wait', noWarning),
        new RegExp(
          `^Error: cannot lock the run folder .*: wrote only 3 of \\d+ bytes of ${escape(file)}$`,
        ),
      );
      assert.deepStrictEqual(fs.readdirSync(dir), []);
    } finally {
      Object.assign(fsModule, { writeSync });
    }
    // With room again, the next run is not told the folder is being locked.
    lockRunFolder(dir, 'wait', noWarning).release();
    assert.ok(!fs.existsSync(file));
  });

  /** Writes a lock of a process that has exited; returns its pid. */
  function writeStaleLock(): number {
    const pid = deadPid();
    const stale = { pid, host: os.hostname(), started: '2026-01-01T00:00:00.000Z', nonce: 'x' };
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify(stale));
    return pid;
  }

  /**
   * Starts run B in a folder with a stale lock, and returns B's lock. B reads the stale lock and
   * judges its holder dead, but only after run A took it over (run inside B's liveness check).
   * Right after B's next change to the file system, `meanwhile` runs (a third run C starting, or
   * A ending).
   */
  function startDuringTakeOver(meanwhile: (a: RunFolderLock) => void): RunFolderLock {
    const pid = writeStaleLock();
    const kill = process.kill;
    const changes = ['openSync', 'writeFileSync', 'renameSync', 'linkSync', 'rmSync'] as const;
    const saved = changes.map((name) => fsModule[name]);
    let a: RunFolderLock | undefined;
    let aStarted = false;
    let armed = false;
    changes.forEach((name, i) => {
      const original = saved[i] as (...args: unknown[]) => unknown;
      Object.assign(fsModule, {
        [name]: (...args: unknown[]) => {
          const result = original(...args);
          const reads = name === 'openSync' && (args[1] === undefined || args[1] === 'r');
          if (!reads && armed && a) {
            armed = false;
            meanwhile(a);
          }
          return result;
        },
      });
    });
    process.kill = (target: number, signal?: string | number) => {
      if (target === pid && !aStarted) {
        aStarted = true;
        a = lockRunFolder(dir, 'wait', () => undefined);
        armed = true;
      }
      return kill.call(process, target, signal);
    };
    try {
      return lockRunFolder(dir, 'wait', noWarning);
    } finally {
      process.kill = kill;
      changes.forEach((name, i) => Object.assign(fsModule, { [name]: saved[i] }));
    }
  }

  it("a run that judged a lock stale after another took it over leaves that one's lock", () => {
    const file = path.join(dir, LOCK_FILE);
    let aContent = '';
    const startB = () =>
      startDuringTakeOver(() => {
        aContent = fs.readFileSync(file, 'utf8');
        // Run C starts while B is taking over: A's lock must be in place, so C is refused.
        assert.throws(() => lockRunFolder(dir, 'wait', noWarning), /is in use by another/);
      });
    assert.throws(startB, /is in use by another training run/);
    assert.strictEqual(fs.readFileSync(file, 'utf8'), aContent, "A's lock, untouched");
    assert.deepStrictEqual(fs.readdirSync(dir), [LOCK_FILE]);
  });

  it('a run that judged a lock stale never brings back the lock of a run that has ended', () => {
    startDuringTakeOver((a) => a.release()).release();
    assert.deepStrictEqual(fs.readdirSync(dir), [], 'no lock left behind');
    lockRunFolder(dir, 'wait', noWarning).release();
  });

  it('refuses while another run takes over the same stale lock, naming its marker', () => {
    const file = path.join(dir, LOCK_FILE);
    const pid = writeStaleLock();
    const stale = fs.readFileSync(file, 'utf8');
    const stat = fs.statSync(file, { bigint: true });
    const marker = `${file}.takeover-${stat.ino}-${stat.mtimeNs}`;
    fs.writeFileSync(marker, '');
    assert.throws(
      () => lockRunFolder(dir, 'wait', noWarning),
      new RegExp(
        `^Error: the run folder ${escape(dir)} is being locked by another run that is taking ` +
          `over the lock of pid ${pid} .*no longer running \\(${escape(marker)}\\); wait ` +
          `\\(if no run is starting, delete ${escape(marker)}\\)$`,
      ),
    );
    assert.strictEqual(fs.readFileSync(file, 'utf8'), stale);
    fs.rmSync(marker);
    const warnings: string[] = [];
    lockRunFolder(dir, 'wait', (m) => warnings.push(m)).release();
    assert.strictEqual(warnings.length, 1);
    assert.deepStrictEqual(fs.readdirSync(dir), []);
  });

  /** The take-over marker's name for the file at `file` now (see takeOverMarker). */
  function markerOf(file: string): string {
    const stat = fs.statSync(file, { bigint: true });
    return `${file}.takeover-${stat.ino}-${stat.mtimeNs}`;
  }

  /** Writes a lock or marker file owned by `pid` on this host. */
  function writeOwned(file: string, pid: number, nonce = 'x'): string {
    const content = JSON.stringify({
      pid,
      host: os.hostname(),
      started: '2026-01-01T00:00:00.000Z',
      nonce,
    });
    fs.writeFileSync(file, content);
    return content;
  }

  it('takes over a marker whose owner was killed while taking over, and leaves none', () => {
    const file = path.join(dir, LOCK_FILE);
    const lockPid = writeStaleLock();
    const marker = markerOf(file);
    const markerPid = deadPid();
    writeOwned(marker, markerPid);
    const warnings: string[] = [];
    lockRunFolder(dir, 'wait', (m) => warnings.push(m)).release();
    assert.deepStrictEqual(warnings, [
      `${marker}: took over the take-over marker of pid ${markerPid} on ${os.hostname()}, ` +
        'since 2026-01-01T00:00:00.000Z, which is no longer running',
      `${file}: took over the lock of pid ${lockPid} on ${os.hostname()}, since ` +
        '2026-01-01T00:00:00.000Z, which is no longer running',
    ]);
    assert.deepStrictEqual(fs.readdirSync(dir), []);
    // An empty marker, as earlier versions left them: a torn write once past the grace time.
    writeStaleLock();
    const empty = markerOf(file);
    fs.writeFileSync(empty, '');
    assert.throws(() => lockRunFolder(dir, 'wait', noWarning), /is being locked by another run/);
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(empty, old, old);
    warnings.length = 0;
    lockRunFolder(dir, 'wait', (m) => warnings.push(m)).release();
    assert.match(warnings[0], /took over the take-over marker of unreadable content ""/);
    assert.deepStrictEqual(fs.readdirSync(dir), []);
  });

  it('takes over dead markers of dead markers, down to a limit that names the marker', () => {
    const file = path.join(dir, LOCK_FILE);
    writeStaleLock();
    // Each owner killed while taking over the dead marker before it.
    const chain = [markerOf(file)];
    writeOwned(chain[0], deadPid());
    chain.push(markerOf(chain[0]));
    writeOwned(chain[1], deadPid());
    const warnings: string[] = [];
    lockRunFolder(dir, 'wait', (m) => warnings.push(m)).release();
    assert.strictEqual(warnings.length, 3, warnings.join('\n'));
    assert.deepStrictEqual(fs.readdirSync(dir), []);
    writeStaleLock();
    const deep = [markerOf(file)];
    for (let level = 0; level < 3; level++) {
      writeOwned(deep[level], deadPid());
      if (level < 2) deep.push(markerOf(deep[level]));
    }
    assert.throws(
      () => lockRunFolder(dir, 'wait', () => undefined),
      new RegExp(`is being locked by .*\\(if no run is starting, delete ${escape(deep[2])}\\)$`),
    );
    assert.ok(fs.existsSync(file), 'the stale lock stays until the marker is deleted');
  });

  it('still refuses while a live run holds the marker', () => {
    const file = path.join(dir, LOCK_FILE);
    writeStaleLock();
    const marker = markerOf(file);
    writeOwned(marker, process.pid);
    assert.throws(
      () => lockRunFolder(dir, 'wait', noWarning),
      new RegExp(`taking over the lock of .*\\(${escape(marker)}\\)`),
    );
    assert.ok(fs.existsSync(marker) && fs.existsSync(file));
  });

  it('a run that judged a marker dead after another replaced it leaves that marker', () => {
    const file = path.join(dir, LOCK_FILE);
    writeStaleLock();
    const lock = fs.readFileSync(file, 'utf8');
    const marker = markerOf(file);
    const markerPid = deadPid();
    writeOwned(marker, markerPid);
    // Run A took over the dead marker and holds its own while this run judges the dead one.
    let live = '';
    const kill = process.kill;
    process.kill = (target: number, signal?: string | number) => {
      if (target === markerPid && live === '') {
        fs.rmSync(marker);
        live = writeOwned(marker, process.pid, 'run A');
      }
      return kill.call(process, target, signal);
    };
    try {
      assert.throws(
        () => lockRunFolder(dir, 'wait', () => undefined),
        new RegExp(`taking over the lock of .*\\(${escape(marker)}\\)`),
      );
    } finally {
      process.kill = kill;
    }
    assert.notStrictEqual(live, '', 'the marker was judged');
    assert.strictEqual(fs.readFileSync(marker, 'utf8'), live, "A's marker, untouched");
    assert.strictEqual(fs.readFileSync(file, 'utf8'), lock, 'the lock A is taking over, untouched');
    assert.deepStrictEqual(fs.readdirSync(dir).sort(), [LOCK_FILE, path.basename(marker)]);
  });

  it('removes markers of locks that are gone once it holds the lock, and nothing else', () => {
    const leftovers = ['.lock.takeover-12-34', '.lock.takeover-12-34.takeover-56-78'];
    const others = ['.lock.takeover-x', 'run.lock.takeover-1-2', '.lock.takeover-1-2.tmp'];
    for (const name of [...leftovers, ...others]) fs.writeFileSync(path.join(dir, name), '');
    fs.mkdirSync(path.join(dir, '.lock.takeover-9-9'));
    const warnings: string[] = [];
    lockRunFolder(dir, 'wait', (m) => warnings.push(m)).release();
    assert.deepStrictEqual(warnings, [
      `${dir}: removed 2 take-over markers left by runs that ended while taking over a lock ` +
        `(${leftovers.join(', ')})`,
    ]);
    assert.deepStrictEqual(fs.readdirSync(dir).sort(), [...others, '.lock.takeover-9-9'].sort());
  });

  it('lets one of two runs started together in a folder train; the other touches nothing', async () => {
    const data = path.join(dir, 'prefs.jsonl');
    await appendOracleJudgments(data, 24, 'm');
    const runDir = path.join(dir, 'run');
    const args = [
      ...['train', 'rm', '--run-dir', runDir, '--modelDir', MODEL, '--dataFile', data],
      ...['--epochs', '1', '--batchSize', '4', '--checkpointEvery', '1', '--loraRank', '2'],
      ...['--maxPromptTokens', '12', '--maxCompletionTokens', '6'],
    ];
    const [a, b] = [cliIo(), cliIo()];
    const codes = await Promise.all([runCli(args, a.io), runCli(args, b.io)]);
    assert.deepStrictEqual(codes, [0, 1], `${a.out.join('\n')}\n---\n${b.out.join('\n')}`);
    assert.match(
      b.out.join('\n'),
      new RegExp(
        `\\[error\\] the run folder ${escape(runDir)} is in use by another training run ` +
          `\\(pid ${process.pid} .*\\); wait for it to end, or choose another --run-dir`,
      ),
    );
    assert.ok(fs.existsSync(path.join(runDir, 'reward-model', 'reward_head.safetensors')));
    assert.ok(!fs.existsSync(path.join(runDir, LOCK_FILE)), 'released at the end');
    // Released when a job fails, too.
    const failed = cliIo();
    const missing = args.map((arg) => (arg === data ? path.join(dir, 'none.jsonl') : arg));
    assert.strictEqual(await runCli([...missing, '--run-dir', path.join(dir, 'r2')], failed.io), 1);
    assert.ok(!fs.existsSync(path.join(dir, 'r2', LOCK_FILE)), failed.out.join('\n'));
  });

  it('releases the lock of a cancelled job', async () => {
    const data = path.join(dir, 'prefs.jsonl');
    await appendOracleJudgments(data, 24, 'm');
    const runDir = path.join(dir, 'run');
    const controller = new AbortController();
    let lockedWhileRunning = false;
    const done = await runTrainingJob(
      {
        type: 'train/start',
        jobId: 'j',
        kind: 'rm',
        runDir,
        resume: false,
        config: { modelDir: MODEL, dataFile: data, loraRank: 2, maxPromptTokens: 12 },
      },
      createTrainingRunners().rm,
      () => {},
      controller.signal,
      async (work) => {
        lockedWhileRunning = fs.existsSync(path.join(runDir, LOCK_FILE));
        controller.abort();
        return work();
      },
    );
    assert.strictEqual(done.status, 'cancelled');
    assert.ok(lockedWhileRunning);
    assert.ok(!fs.existsSync(path.join(runDir, LOCK_FILE)));
  });

  it("words the editor's refusals without the CLI's flags", async () => {
    const runDir = path.join(dir, 'rm');
    const command = {
      type: 'train/start' as const,
      jobId: 'run-x-rm',
      kind: 'rm' as const,
      runDir,
      resume: false,
      config: { modelDir: MODEL, dataFile: path.join(dir, 'prefs.jsonl') },
    };
    // Only there to be found: each run below is refused before it reads the store.
    fs.writeFileSync(command.config.dataFile, '');
    const errors: string[] = [];
    const run = async () => {
      const events: TrainingEvent[] = [];
      const done = await runTrainingJob(
        command,
        createTrainingRunners({ advice: EDITOR_ADVICE }).rm,
        (e) => events.push(e),
        new AbortController().signal,
        (work) => work(),
      );
      assert.strictEqual(done.status, 'failed');
      errors.push(done.error!);
    };
    fs.mkdirSync(runDir);
    const lock = lockRunFolder(runDir, 'x', noWarning);
    await run();
    lock.release();
    const checkpoints = path.join(runDir, 'checkpoints', 'reward-model');
    writeCheckpoint(checkpoints, 2, { 'a.bin': 'x' }, {});
    await run();
    fs.rmSync(path.join(checkpoints, 'latest'));
    await run();
    assert.match(errors[0], /is in use by another training run .*wait for that run to end/);
    assert.match(errors[1], /already holds 1 step folder .*run "Train on my judgments" again/);
    assert.match(errors[2], /no "latest" pointer.*run "Train on my judgments" again/);
    for (const error of errors) assert.doesNotMatch(error, /--|resume/, error);
  });
});

describe("the editor's run folders", () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'run-ids-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('are unique for runs started in the same millisecond', () => {
    const now = () => new Date('2026-12-04T18:15:00.123Z');
    const suffixes = ['3fa9', '3fa9', '3fa9', '0b1c'];
    const first = createRunFolder(dir, now, () => suffixes.shift()!);
    assert.deepStrictEqual(first, {
      runId: 'run-20261204T181500.123-3fa9',
      runDir: path.join(dir, 'run-20261204T181500.123-3fa9'),
    });
    // Same time, same suffix twice more: the taken id is retried, not shared.
    const second = createRunFolder(dir, now, () => suffixes.shift()!);
    assert.strictEqual(second.runId, 'run-20261204T181500.123-0b1c');
    assert.deepStrictEqual(fs.readdirSync(dir).sort(), [second.runId, first.runId]);
    const ids = new Set(Array.from({ length: 20 }, () => createRunFolder(dir, now).runId));
    assert.strictEqual(ids.size, 20);
    assert.throws(
      () => createRunFolder(dir, now, () => '3fa9'),
      new RegExp(`could not create a new run folder in ${escape(dir)}: 8 run ids were taken`),
    );
  });
});
