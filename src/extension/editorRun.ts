/**
 * The runs "Train on my judgments" starts, as they are kept on disk so that a run the editor
 * lost (a window reload, the editor closed, the model host crashed) can be resumed where it
 * stopped. Each run folder holds
 *
 * - `judgments.jsonl`: a snapshot of the preference store taken when the run started. Every stage
 *   trains on it, not on the live store: the trainers refuse to resume on other data (each
 *   checkpoint keeps a digest of its data, src/rlhf/resume.ts), so judgments made since the run
 *   started must not reach it; they also make the stages of one run train on the same judgments.
 * - `editor-run.json`: what the run is (algorithm, model, settings), which stages finished and
 *   with what output, and how it ended, rewritten atomically after each stage. A run still marked
 *   "running" whose editor process is gone was lost with it.
 *
 * No `vscode` here: unit tests drive it with a real model host.
 */
import { createHash } from 'crypto';
import { promises as fsp } from 'fs';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeFileAtomic } from '../data/atomicWrite';
import { isAlive } from '../data/fileLock';
import { PPO_DEFAULTS, editorCanRestore } from '../rlhf/config';
import { openStore } from '../data/store';
import type { TrainDoneEvent, TrainingKind } from '../protocol/training';
import { readTrainingSettings, type TrainerKind, type TrainingSettings } from './trainingSettings';
import {
  JOB_LOST,
  STAGE_NAMES,
  createRunFolder,
  runTrainPipeline,
  type PipelineOptions,
  type PipelineResult,
  type TuneAlgorithm,
} from './trainPipeline';

export const RUN_RECORD_FILE = 'editor-run.json';
export const JUDGMENTS_SNAPSHOT = 'judgments.jsonl';

/**
 * How a run ended. "running": a window runs it, or ran it and was lost before it could say how
 * it ended; "interrupted": the model host was lost, or the window closed, mid-run; both can be
 * resumed. A run the user cancelled is not offered again: Cancel means "stop this run" (its
 * checkpoints stay for the CLI's `--resume`).
 */
export type EditorRunStatus =
  'running' | 'interrupted' | 'completed' | 'early-stopped' | 'cancelled' | 'failed';

/** A stage that finished (and is not run again on resume). */
export interface FinishedStage {
  status: 'completed' | 'early-stopped';
  outputPath: string;
  summary?: Record<string, number>;
}

export interface EditorRunRecord {
  version: 1;
  runId: string;
  algorithm: TuneAlgorithm;
  /** Absolute model folder the run trains. */
  modelDir: string;
  /** Sampled fingerprint of the model's weights when the run started (see adapterHistory). */
  modelFingerprint?: string;
  /** The preference store the snapshot was taken from. */
  store: string;
  /** Records in the snapshot. */
  judgments: number;
  /**
   * The snapshot as written when the run started, so that a resume refuses one truncated or
   * edited since: the stages that finished trained on the judgments as they were, and the trainer's
   * own data check (src/rlhf/resume.ts) covers only the stage it resumes. Records written before
   * it existed have none; their snapshot is checked against `judgments` only (see snapshotProblem).
   */
  snapshot?: SnapshotDigest;
  /** `codeRlhf.trainingSettings` when the run started (validated). */
  settings: TrainingSettings;
  startedAt: string;
  status: EditorRunStatus;
  /** The editor process that runs (or last ran) it, to tell a live run from a lost one. */
  owner: { pid: number; host: string };
  finished: Partial<Record<TrainerKind, FinishedStage>>;
  error?: string;
}

/** A judgments snapshot's sha256 (hex, of the file's bytes) and its number of lines. */
export interface SnapshotDigest {
  sha256: string;
  lines: number;
}

export function digestSnapshot(bytes: Buffer | string): SnapshotDigest {
  const text = typeof bytes === 'string' ? bytes : bytes.toString('utf8');
  return {
    sha256: createHash('sha256').update(bytes).digest('hex'),
    lines: text.split('\n').filter((line) => line.trim() !== '').length,
  };
}

export interface EditorRun {
  runId: string;
  runDir: string;
  /** The judgments snapshot every stage trains on. */
  dataFile: string;
  record: EditorRunRecord;
}

const thisProcess = () => ({ pid: process.pid, host: os.hostname() });

/**
 * Whether the editor process `owner` names still runs. Another host's process cannot be
 * checked, so it counts as running (its run is never offered here). Limitation: a pid reused by
 * another process since looks alive too.
 */
export function ownerAlive(owner: EditorRunRecord['owner']): boolean {
  return owner.host !== os.hostname() || isAlive(owner.pid);
}

export async function saveRunRecord(runDir: string, record: EditorRunRecord): Promise<void> {
  await writeFileAtomic(path.join(runDir, RUN_RECORD_FILE), JSON.stringify(record, null, 2));
}

const STATUSES: readonly EditorRunStatus[] = [
  'running',
  'interrupted',
  'completed',
  'early-stopped',
  'cancelled',
  'failed',
];
const ALGORITHMS: readonly TuneAlgorithm[] = ['ppo', 'dpo'];

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Checks every field of a parsed record, so that a damaged or hand-edited one is refused here,
 * naming the file and key, instead of throwing a bare TypeError where a field is used (which
 * would stop "Train on my judgments" from starting at all) or resuming an unknown algorithm.
 */
function checkRecord(file: string, value: unknown): EditorRunRecord {
  const bad = (key: string, got: unknown, allowed: string) =>
    new Error(`${file}: "${key}" is ${JSON.stringify(got) ?? 'missing'}; allowed: ${allowed}`);
  if (!isObject(value)) {
    throw new Error(`${file}: not a run record (${JSON.stringify(value)}); allowed: an object`);
  }
  const r = value;
  if (r.version !== 1) throw bad('version', r.version, '1 (a run record of this version)');
  const text = (key: string, optional = false) => {
    if (optional && r[key] === undefined) return;
    if (typeof r[key] !== 'string' || r[key] === '') throw bad(key, r[key], 'a non-empty string');
  };
  text('runId');
  text('modelDir');
  text('modelFingerprint', true);
  text('store');
  text('error', true);
  if (!ALGORITHMS.includes(r.algorithm as TuneAlgorithm)) {
    throw bad('algorithm', r.algorithm, ALGORITHMS.map((a) => `"${a}"`).join(', '));
  }
  if (!STATUSES.includes(r.status as EditorRunStatus)) {
    throw bad('status', r.status, STATUSES.map((a) => `"${a}"`).join(', '));
  }
  if (!Number.isSafeInteger(r.judgments) || (r.judgments as number) < 1) {
    throw bad('judgments', r.judgments, 'an integer >= 1');
  }
  if (typeof r.startedAt !== 'string' || Number.isNaN(Date.parse(r.startedAt))) {
    throw bad('startedAt', r.startedAt, 'an ISO date string');
  }
  const owner = r.owner;
  if (!isObject(owner) || typeof owner.host !== 'string') {
    throw bad('owner', owner, 'an object with "pid" and "host"');
  }
  // process.kill(0 or -1, 0) signals a process group and succeeds, so such a pid would look
  // alive for ever and the run would never be offered.
  if (!Number.isSafeInteger(owner.pid) || (owner.pid as number) < 1) {
    throw bad('owner.pid', owner.pid, 'an integer >= 1');
  }
  const snapshot = r.snapshot;
  if (
    snapshot !== undefined &&
    (!isObject(snapshot) ||
      typeof snapshot.sha256 !== 'string' ||
      !/^[0-9a-f]{64}$/.test(snapshot.sha256) ||
      !Number.isSafeInteger(snapshot.lines) ||
      (snapshot.lines as number) < 1)
  ) {
    throw bad('snapshot', snapshot, 'an object with "sha256" (64 hex digits) and "lines" >= 1');
  }
  if (!isObject(r.settings)) throw bad('settings', r.settings, 'an object');
  const settings = readTrainingSettings(r.settings);
  if ('problem' in settings) {
    throw new Error(`${file}: "settings" is not valid as ${settings.problem}`);
  }
  if (!isObject(r.finished)) throw bad('finished', r.finished, 'an object');
  for (const [kind, stage] of Object.entries(r.finished)) {
    const key = `finished.${kind}`;
    if (kind !== 'rm' && kind !== r.algorithm) {
      throw bad(key, stage, `no such key; allowed: "rm", "${r.algorithm as string}"`);
    }
    if (!isObject(stage)) throw bad(key, stage, 'an object');
    if (stage.status !== 'completed' && stage.status !== 'early-stopped') {
      throw bad(`${key}.status`, stage.status, '"completed", "early-stopped"');
    }
    if (typeof stage.outputPath !== 'string' || stage.outputPath === '') {
      throw bad(`${key}.outputPath`, stage.outputPath, 'a non-empty string');
    }
    if (
      stage.summary !== undefined &&
      (!isObject(stage.summary) || Object.values(stage.summary).some((v) => typeof v !== 'number'))
    ) {
      throw bad(`${key}.summary`, stage.summary, 'an object of numbers');
    }
  }
  return r as unknown as EditorRunRecord;
}

/**
 * The run record of `runDir`, undefined when it has none (a run of an older version). Throws,
 * naming the file and key, when it is not JSON or a field is missing or of the wrong kind.
 */
export function readRunRecord(runDir: string): EditorRunRecord | undefined {
  const file = path.join(runDir, RUN_RECORD_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file}: not JSON (${(error as Error).message})`);
  }
  return checkRecord(file, value);
}

/**
 * Starts a new run under `trainingDir`: its folder, the snapshot of `store` and its record
 * ("running", owned by this process). A store that cannot be read, or holds no judgments,
 * leaves no folder behind.
 */
export async function startEditorRun(options: {
  trainingDir: string;
  algorithm: TuneAlgorithm;
  modelDir: string;
  modelFingerprint?: string;
  store: string;
  settings: TrainingSettings;
}): Promise<EditorRun> {
  const { runId, runDir } = createRunFolder(options.trainingDir);
  try {
    const records = await (await openStore(options.store)).readAll();
    if (records.length === 0) {
      throw new Error(`${options.store} holds no judgments yet; judge some comparisons first`);
    }
    const dataFile = path.join(runDir, JUDGMENTS_SNAPSHOT);
    const text = records.map((r) => `${JSON.stringify(r)}\n`).join('');
    await writeFileAtomic(dataFile, text);
    const record: EditorRunRecord = {
      version: 1,
      runId,
      algorithm: options.algorithm,
      modelDir: options.modelDir,
      ...(options.modelFingerprint ? { modelFingerprint: options.modelFingerprint } : {}),
      store: options.store,
      judgments: records.length,
      snapshot: digestSnapshot(text),
      settings: options.settings,
      startedAt: new Date().toISOString(),
      status: 'running',
      owner: thisProcess(),
      finished: {},
    };
    await saveRunRecord(runDir, record);
    return { runId, runDir, dataFile, record };
  } catch (error) {
    await fsp.rm(runDir, { recursive: true, force: true });
    throw error;
  }
}

/** A run that can be resumed, and what it did so far. */
export interface ResumableRun extends EditorRun {
  /** "reward model done, PPO at iteration 3 of 20" */
  progress: string;
}

/**
 * The most recent run of `modelDir` under `trainingDir`, if it was lost before it ended
 * ("running" with its process gone, or "interrupted"). Undefined when that run ended otherwise
 * (completed, cancelled, failed), a live editor process runs it, or there is none: only the
 * latest run is offered, since an older one's judgments and adapter would be behind a newer
 * run's. A newer run whose record cannot be read may be of this model, so it stops the search.
 */
export function findResumableRun(
  trainingDir: string,
  modelDir: string,
  warn: (message: string) => void = () => undefined,
): ResumableRun | undefined {
  let names: string[];
  try {
    names = fs.readdirSync(trainingDir).filter((n) => n.startsWith('run-'));
  } catch {
    return undefined;
  }
  // Run ids start with the time to the millisecond, so names sort by start.
  for (const runId of names.sort().reverse()) {
    const runDir = path.join(trainingDir, runId);
    let record: EditorRunRecord | undefined;
    try {
      record = readRunRecord(runDir);
    } catch (error) {
      warn(
        `no run offered for resuming: ${(error as Error).message}; older runs are not offered ` +
          'past the latest one, and a new run starts',
      );
      return undefined;
    }
    if (!record || record.modelDir !== modelDir) continue;
    if (record.status === 'running' && ownerAlive(record.owner)) return undefined;
    if (record.status !== 'running' && record.status !== 'interrupted') return undefined;
    const run = { runId, runDir, dataFile: path.join(runDir, JUDGMENTS_SNAPSHOT), record };
    return { ...run, progress: describeProgress(run) };
  }
  return undefined;
}

/** What a stage's latest checkpoint says about how far it got, from its manifest. */
function checkpointProgress(stageDir: string): { step: number; iteration?: number } | undefined {
  const root = path.join(stageDir, 'checkpoints');
  let trainers: string[];
  try {
    trainers = fs.readdirSync(root);
  } catch {
    return undefined;
  }
  for (const trainer of trainers) {
    try {
      const name = fs.readFileSync(path.join(root, trainer, 'latest'), 'utf8').trim();
      const manifest = JSON.parse(
        fs.readFileSync(path.join(root, trainer, name, 'manifest.json'), 'utf8'),
      ) as { step?: unknown; state?: { iteration?: unknown } };
      if (typeof manifest.step !== 'number') continue;
      const iteration = manifest.state?.iteration;
      return { step: manifest.step, ...(typeof iteration === 'number' ? { iteration } : {}) };
    } catch {
      // No pointer yet, or a checkpoint being written: the trainer reports a damaged one itself.
    }
  }
  return undefined;
}

/** The stages of a run, in order (`gate` last). */
export function runStages(algorithm: TuneAlgorithm): TrainingKind[] {
  return ['rm', algorithm, 'gate'];
}

/** "reward model done, PPO at iteration 3 of 20", for the offer to resume. */
export function describeProgress(run: EditorRun): string {
  const { record } = run;
  const parts: string[] = [];
  for (const kind of runStages(record.algorithm)) {
    const name = STAGE_NAMES[kind];
    if (kind !== 'gate' && record.finished[kind as TrainerKind]) {
      parts.push(`${name} done`);
      continue;
    }
    const at = kind === 'gate' ? undefined : checkpointProgress(path.join(run.runDir, kind));
    if (!at) {
      parts.push(parts.length === 0 ? `${name} not checkpointed yet` : `${name} next`);
    } else if (kind === 'ppo' && at.iteration !== undefined) {
      const total = record.settings.ppo?.iterations ?? PPO_DEFAULTS.iterations;
      parts.push(`${name} at iteration ${at.iteration} of ${total}`);
    } else {
      parts.push(`${name} at step ${at.step}`);
    }
    break;
  }
  return parts.join(', ');
}

/** A stage's end as the run record keeps it, when it finished with an output. */
export function finishedStage(done: TrainDoneEvent): FinishedStage | undefined {
  if ((done.status !== 'completed' && done.status !== 'early-stopped') || !done.outputPath) {
    return undefined;
  }
  return {
    status: done.status,
    outputPath: done.outputPath,
    ...(done.summary ? { summary: done.summary } : {}),
  };
}

/**
 * Why `run`'s judgments snapshot cannot be resumed on, or undefined when it is the one the run
 * started with: gone, or other bytes than the digest its record keeps. Limitation: a record
 * written before the digest was kept is checked by its count of judgments only, so an edit that
 * keeps the count is missed for it (the trainer's own data check then covers only the stage it
 * resumes, not a reward model that finished).
 */
export function snapshotProblem(run: EditorRun): string | undefined {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(run.dataFile);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return `its judgments snapshot ${run.dataFile} is gone`;
    }
    return `its judgments snapshot ${run.dataFile} cannot be read (${(error as Error).message})`;
  }
  const now = digestSnapshot(bytes);
  const then = run.record.snapshot;
  if (
    then
      ? now.sha256 !== then.sha256 || now.lines !== then.lines
      : now.lines !== run.record.judgments
  ) {
    const was = then
      ? `${then.lines} lines, sha256 ${then.sha256}`
      : `${run.record.judgments} judgments`;
    return (
      `its judgments snapshot ${run.dataFile} changed since the run started (${was}; ` +
      `now ${now.lines} lines, sha256 ${now.sha256}), and the stages that finished trained ` +
      'on it as it was'
    );
  }
  return undefined;
}

/**
 * Records that `run` cannot be resumed (it then is not offered again), with `problem` as its
 * error. Its folder stays as it is.
 */
export async function refuseResume(run: EditorRun, problem: string): Promise<void> {
  const now = readRunRecord(run.runDir) ?? run.record;
  await saveRunRecord(run.runDir, {
    ...now,
    status: 'failed',
    error: `${run.runId} cannot be resumed: ${problem}`,
  });
}

/**
 * Takes over a lost run for this process: its record says "running" here again. The record is
 * read again first, since the question whether to resume may have stayed open while another
 * window took the run over (or ended it). Limitation: two windows claiming within the same few
 * milliseconds both succeed (no exclusive marker); their jobs then meet at the run folder's lock.
 */
export async function claimRun(run: EditorRun): Promise<EditorRun> {
  const now = readRunRecord(run.runDir);
  if (!now) throw new Error(`${run.runDir} has no ${RUN_RECORD_FILE} any more; start a fresh run`);
  const self = thisProcess();
  const ours = now.owner.pid === self.pid && now.owner.host === self.host;
  if (now.status === 'running' && !ours && ownerAlive(now.owner)) {
    throw new Error(
      `${run.runId} was resumed meanwhile by another window (pid ${now.owner.pid}); ` +
        'it is not resumed here',
    );
  }
  if (now.status !== 'running' && now.status !== 'interrupted') {
    throw new Error(`${run.runId} ended ${now.status} meanwhile; it is not resumed here`);
  }
  const problem = snapshotProblem({ ...run, record: now });
  if (problem) {
    await refuseResume(run, problem);
    throw new Error(`${run.runId} cannot be resumed: ${problem}; start a fresh run`);
  }
  const record: EditorRunRecord = { ...now, status: 'running', owner: self };
  delete record.error;
  await saveRunRecord(run.runDir, record);
  return { ...run, record };
}

/**
 * The run "Train on my judgments" goes on with: `lost` resumed (claimed) when `ask` says
 * "resume", else a new run from `start`. Undefined when the question was dismissed, or when
 * `signal` was aborted while it was open (the user cancelled, or the window is closing): then
 * nothing is claimed or created.
 */
export async function chooseEditorRun(options: {
  lost: ResumableRun | undefined;
  ask: (lost: ResumableRun) => Promise<'resume' | 'fresh' | undefined>;
  signal: AbortSignal;
  start: () => Promise<EditorRun>;
}): Promise<{ run: EditorRun; resumed: boolean } | undefined> {
  const { lost } = options;
  const answer = lost ? await options.ask(lost) : 'fresh';
  if (!answer || options.signal.aborted) return undefined;
  if (lost && answer === 'resume') return { run: await claimRun(lost), resumed: true };
  return { run: await options.start(), resumed: false };
}

export interface EditorTrainingOptions extends Omit<
  PipelineOptions,
  'algorithm' | 'modelDir' | 'dataFile' | 'runDir' | 'runId'
> {
  run: EditorRun;
  /** True when `run` was lost earlier and is resumed (see claimRun). */
  resumed: boolean;
  /** The validated `codeRlhf.trainingSettings` (see readTrainingSettings). */
  settings: TrainingSettings;
  /**
   * Whether an abort of `signal` means the window is closing (the run was interrupted and can be
   * resumed) rather than the user's Cancel (the run ends cancelled).
   */
  closing?: () => boolean;
}

/** How the run record says a pipeline ended. */
function recordedStatus(
  result: PipelineResult,
  closing: boolean,
): Pick<EditorRunRecord, 'status' | 'error'> {
  const error = result.resumeRefused ?? result.error;
  const withError = error ? { error } : {};
  // A refused resume leaves the run as it was when the checkpoint's settings can be put back;
  // otherwise (other data, a key the run sets itself) it can only start fresh, and is not
  // offered again.
  if (result.resumeRefused) {
    return {
      status: editorCanRestore(result.resumeRestore) ? 'interrupted' : 'failed',
      ...withError,
    };
  }
  if (result.status === 'cancelled' && closing) return { status: 'interrupted' };
  if (result.status === 'failed' && error?.includes(JOB_LOST)) {
    return { status: 'interrupted', ...withError };
  }
  return { status: result.status, ...withError };
}

/**
 * Runs (or resumes) the editor run `run` through the pipeline, on its judgments snapshot, and
 * keeps its record: each finished stage as it ends, and how the run ended. A resumed run skips
 * the stages that finished and continues the stage that was lost from its checkpoints.
 */
export async function runEditorTraining(options: EditorTrainingOptions): Promise<PipelineResult> {
  const { run, settings } = options;
  // The settings the run started with stay in its record until a resumed stage gets past the
  // trainer's resume check (its first progress), so that a refused resume does not replace them.
  let record: EditorRunRecord = run.record;
  let settingsKept = !options.resumed;
  const finished: PipelineOptions['finished'] = {};
  for (const [kind, stage] of Object.entries(record.finished)) {
    if (stage) finished[kind as TrainerKind] = stage;
  }
  const overrides: PipelineOptions['overrides'] = {};
  for (const kind of ['rm', 'ppo', 'dpo', 'gate'] as const) {
    const merged = { ...(kind === 'gate' ? {} : settings[kind]), ...options.overrides?.[kind] };
    if (Object.keys(merged).length > 0) overrides[kind] = merged;
  }
  let saving = Promise.resolve();
  /** Writes `next` after any write still under way, so that the last record written wins. */
  const save = (next: EditorRunRecord) => {
    record = next;
    saving = saving.then(async () => {
      try {
        await saveRunRecord(run.runDir, next);
      } catch (error) {
        options.log.error(
          `could not update ${path.join(run.runDir, RUN_RECORD_FILE)}: ${(error as Error).message}`,
        );
      }
    });
    return saving;
  };
  let result: PipelineResult;
  try {
    result = await runTrainPipeline({
      ...options,
      algorithm: record.algorithm,
      modelDir: record.modelDir,
      dataFile: run.dataFile,
      runDir: run.runDir,
      runId: run.runId,
      finished,
      resume: options.resumed,
      overrides,
      onEvent: (kind, event) => {
        if (!settingsKept && event.type === 'train/progress') {
          settingsKept = true;
          void save({ ...record, settings });
        }
        options.onEvent?.(kind, event);
      },
      onStageDone: async (kind, done) => {
        const stage = kind === 'gate' ? undefined : finishedStage(done);
        if (stage) await save({ ...record, finished: { ...record.finished, [kind]: stage } });
        await options.onStageDone?.(kind, done);
      },
    });
  } catch (error) {
    // The model host could not be reached at all: nothing about the run itself went wrong.
    await save({ ...record, status: 'interrupted', error: (error as Error).message });
    throw error;
  }
  await save({ ...record, ...recordedStatus(result, options.closing?.() ?? false) });
  return result;
}
