/**
 * What a checkpoint records about the run that wrote it, so that a resume continues that run
 * and not another one: the trainer's config, a digest of the data it trains on, and digests of
 * the contents of the folders its config names (the model's weights, PPO's reward model): the
 * same path may hold other weights by the time of the resume (retrained, updated in place). A
 * resume whose config differs in a key that changes what is trained (the data, the model, the encoding,
 * the adapter's shape, the seed, the optimizer's settings, the split, ...) is refused, naming
 * each such key with the checkpoint's value and the new one: its first steps were trained one
 * way and the rest would be trained another, and the output's run.json would claim the new
 * config for all of them. Only the keys a trainer lists in `mayChange` may differ (more epochs
 * or iterations to extend a run, how often to checkpoint, ...).
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { modelFingerprint } from '../data/modelFingerprint';
import { sha256, type LoadedCheckpoint } from './checkpoint';

/**
 * How the contents of a folder a config key names are digested: `modelWeights`, a model folder
 * whose weights may be gigabytes, by its sampled fingerprint (src/data/modelFingerprint.ts);
 * `files`, a folder of small files, by every byte of each file in it; or a function of the
 * folder, for a folder with files that change without changing what the run depends on (a
 * reward model's run.json records its wall time; `rewardModelDigest`).
 */
export type FolderContents = 'modelWeights' | 'files' | ((dir: string) => string | null);

export interface ResumeRules<T> {
  /** The trainer's name in messages ("reward model", "DPO", "PPO"). */
  trainer: string;
  /** Keys that may differ from the checkpoint's on resume; every other key must be equal. */
  mayChange: readonly (keyof T & string)[];
  /**
   * Keys that name files or folders: recorded and compared as absolute paths, so the same
   * folder named relative to the working folder, or absolutely, is the same.
   */
  pathKeys: readonly (keyof T & string)[];
  /**
   * Keys holding comma-separated lists (LoRA targets): recorded and compared as their trimmed,
   * non-empty entries in order, so "q_proj, v_proj" and "q_proj,v_proj" are the same list.
   */
  listKeys?: readonly (keyof T & string)[];
  /** What the data items are, in messages ("training pairs", "prompts"). */
  dataNoun: string;
  /**
   * Keys whose default changed before checkpoints recorded their config, with the value runs
   * before then trained with. A checkpoint that records no config is taken to be from such a
   * run: resuming it with another value would train the rest of the run another way, so it is
   * refused, naming the keys and values that continue it.
   */
  legacyDefaults?: Partial<Record<keyof T & string, unknown>>;
  /**
   * Keys naming folders whose contents the run depends on beyond their path, and how each is
   * digested: a resume on other contents behind the same path is refused.
   */
  contentKeys?: Partial<Record<keyof T & string, FolderContents>>;
}

/** The data a run trains on, as a checkpoint records it. */
export interface DataDigest {
  items: number;
  sha256: string;
}

/**
 * The digest of the contents of each folder of `ResumeRules.contentKeys`, by key; null when the
 * folder could not be read (absent, or holding no weights).
 */
export type ContentDigests = Record<string, string | null>;

/** What each checkpoint's manifest state records for `checkResume`. */
export interface ResumeRecord {
  config: Record<string, unknown>;
  data: DataDigest;
  /** Absent in checkpoints written before checkpoints recorded it. */
  contents: ContentDigests;
}

/** The digest of `data` (JSON-serialisable), which holds `items` items. */
export function dataDigest(data: unknown, items: number): DataDigest {
  return { items, sha256: sha256(Buffer.from(JSON.stringify(data), 'utf8')) };
}

/**
 * Every byte of each file directly in `dir` (with its name and size, in name order), then
 * `extra`: the files named in `only`, or else every file but hidden ones (the temporary files of
 * atomic writes). Null when `dir` or one of the files cannot be read.
 */
export function filesDigest(dir: string, only?: readonly string[], extra = ''): string | null {
  try {
    const hash = createHash('sha256');
    const names = (
      only ??
      fs
        .readdirSync(dir, { withFileTypes: true })
        .filter((entry) => entry.isFile() && !entry.name.startsWith('.'))
        .map((entry) => entry.name)
    )
      .slice()
      .sort();
    for (const name of names) {
      const bytes = fs.readFileSync(path.join(dir, name));
      hash.update(`\u0000${name}\u0000${bytes.length}\u0000`);
      hash.update(bytes);
    }
    hash.update(extra);
    return hash.digest('hex');
  } catch {
    return null;
  }
}

/**
 * The digests of the folders of `rules.contentKeys` that `config` names, taken once when a run
 * starts (a folder changed mid-run is then caught by the next resume, not recorded as the run's).
 * A key set to "" names no folder and has no digest.
 */
export function contentDigests<T extends object>(config: T, rules: ResumeRules<T>): ContentDigests {
  const out: ContentDigests = {};
  const entries = Object.entries(rules.contentKeys ?? {}) as [string, FolderContents][];
  for (const [key, kind] of entries) {
    const dir = (config as Record<string, unknown>)[key];
    if (typeof dir !== 'string' || dir === '') continue;
    out[key] =
      kind === 'modelWeights'
        ? (modelFingerprint(dir) ?? null)
        : kind === 'files'
          ? filesDigest(dir)
          : kind(dir);
  }
  return out;
}

function recordedConfig<T extends object>(config: T, rules: ResumeRules<T>) {
  const out: Record<string, unknown> = { ...(config as Record<string, unknown>) };
  for (const key of rules.pathKeys) {
    const value = out[key];
    if (typeof value === 'string' && value !== '') out[key] = path.resolve(value);
  }
  return canonicalLists(out, rules);
}

/** `config` with the values of `rules.listKeys` as canonical lists (see ResumeRules.listKeys). */
function canonicalLists<T extends object>(
  config: Record<string, unknown>,
  rules: ResumeRules<T>,
): Record<string, unknown> {
  const out = { ...config };
  for (const key of rules.listKeys ?? []) {
    const value = out[key];
    if (typeof value === 'string') {
      out[key] = value
        .split(',')
        .map((entry) => entry.trim())
        .filter((entry) => entry !== '')
        .join(',');
    }
  }
  return out;
}

/** The manifest state fields that let a later resume check its config, data and folders. */
export function resumeRecord<T extends object>(
  config: T,
  rules: ResumeRules<T>,
  data: DataDigest,
  contents: ContentDigests,
): ResumeRecord {
  return { config: recordedConfig(config, rules), data, contents };
}

const show = (value: unknown) => (value === undefined ? '(absent)' : JSON.stringify(value));

/**
 * A refused resume. Its message names config keys only, as every caller (the CLI, the editor,
 * the demo) names them; a caller may add its own way of setting them (see the job runners'
 * advice). `restore` holds the checkpoint's value of each key that differs, when setting those
 * keys is all it takes to resume; undefined when it is not (the data changed, or a key the
 * checkpoint does not record).
 */
export class ResumeRefusedError extends Error {
  override name = 'ResumeRefusedError';
  constructor(
    message: string,
    readonly restore: Readonly<Record<string, unknown>> | undefined,
    /**
     * What differs, without the message's advice (resume with the checkpoint's values, or start
     * afresh): for a caller that gives that advice in its own terms instead.
     */
    readonly reason: string = message,
  ) {
    super(message);
  }
}

/** What a refusal offers besides resuming, in no caller's terms (a CLI flag, an editor command). */
const FRESH_RUN = 'or start a fresh run in another run folder';

/**
 * Refuses to resume from `ck` when `config` differs from the checkpoint's in a key other than
 * `rules.mayChange`, `data` from the checkpoint's data, or `contents` (`contentDigests` of
 * `config`) from the checkpoint's for a folder at the same path. A checkpoint written before
 * checkpoints recorded these is resumed with a warning that nothing could be checked, unless
 * `config` differs from `rules.legacyDefaults`; one written before they recorded folder contents
 * is checked for the rest, with a warning that those could not be.
 */
export function checkResume<T extends object>(
  ck: LoadedCheckpoint,
  config: T,
  rules: ResumeRules<T>,
  data: DataDigest,
  contents: ContentDigests,
  warn: (message: string) => void,
): void {
  const manifest = path.join(ck.dir, 'manifest.json');
  const {
    config: saved,
    data: savedData,
    contents: savedContents,
  } = ck.manifest.state as Partial<ResumeRecord>;
  if (saved === undefined && savedData === undefined) {
    const current = config as Record<string, unknown>;
    const switched = Object.entries(rules.legacyDefaults ?? {}).filter(
      ([key, value]) => JSON.stringify(current[key]) !== JSON.stringify(value),
    );
    if (switched.length > 0) {
      const list = (values: (key: string, value: unknown) => string) =>
        switched.map(([key, value]) => values(key, value)).join(', ');
      const reason =
        `${rules.trainer}: cannot resume from ${ck.dir}: it was written before checkpoints ` +
        `recorded their config, by a version that trained with ` +
        `${list((key, value) => `${key} ${show(value)}`)}; this run has ` +
        `${list((key) => `${key} ${show(current[key])}`)}, which would train the rest of the ` +
        'run another way (and run.json would claim it for all of it)';
      throw new ResumeRefusedError(
        `${reason}. Resume with ${list((key, value) => `${key} ${show(value)}`)}, ${FRESH_RUN}`,
        Object.fromEntries(switched),
        reason,
      );
    }
    warn(
      `${rules.trainer}: ${ck.dir} was written before checkpoints recorded their config and ` +
        'data, so this run could not be checked against it: resuming it with this config, ' +
        "which must be the checkpoint's (only " +
        `${rules.mayChange.join(', ')} may change)`,
    );
    return;
  }
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(saved)) {
    throw new Error(`${manifest}: "state.config" is ${show(saved)}; allowed: a JSON object`);
  }
  if (
    !isObject(savedData) ||
    !Number.isSafeInteger(savedData.items) ||
    typeof savedData.sha256 !== 'string'
  ) {
    throw new Error(
      `${manifest}: "state.data" is ${show(savedData)}; allowed: {"items": an integer, ` +
        '"sha256": a string}',
    );
  }
  const current = recordedConfig(config, rules);
  // Checkpoints recorded lists as written before listKeys existed.
  const savedLists = canonicalLists(saved, rules);
  const changed: string[] = [];
  let restore: Record<string, unknown> | undefined = {};
  for (const key of new Set([...Object.keys(saved), ...Object.keys(current)])) {
    if ((rules.mayChange as readonly string[]).includes(key)) continue;
    if (JSON.stringify(savedLists[key]) !== JSON.stringify(current[key])) {
      changed.push(`${key} (checkpoint ${show(saved[key])}, now ${show(current[key])})`);
      if (saved[key] === undefined) restore = undefined;
      else if (restore) restore[key] = saved[key];
    }
  }
  if (savedData.sha256 !== data.sha256) {
    restore = undefined;
    changed.push(
      `the ${rules.dataNoun} (checkpoint ${savedData.items}, sha256 ` +
        `${savedData.sha256.slice(0, 12)}...; now ${data.items}, sha256 ` +
        `${data.sha256.slice(0, 12)}...: the data file changed since the checkpoint)`,
    );
  }
  if (
    savedContents !== undefined &&
    (!isObject(savedContents) ||
      Object.values(savedContents).some((v) => v !== null && typeof v !== 'string'))
  ) {
    throw new Error(
      `${manifest}: "state.contents" is ${show(savedContents)}; allowed: a JSON object of ` +
        'strings and nulls',
    );
  }
  const unchecked: string[] = [];
  const digest = (value: string | null | undefined) =>
    typeof value === 'string' ? `${value.slice(0, 12)}...` : '(unreadable)';
  for (const key of Object.keys(rules.contentKeys ?? {})) {
    // A folder at another path is named above with the key's change.
    if (JSON.stringify(saved[key]) !== JSON.stringify(current[key])) continue;
    const before = savedContents?.[key];
    const now = contents[key];
    if (before === undefined) {
      if (now !== undefined) unchecked.push(key);
      continue;
    }
    if (before === now) continue;
    restore = undefined;
    changed.push(
      `the contents of ${key} (${show(current[key])}: checkpoint ${digest(before)}, now ` +
        `${digest(now)}: its files changed since the checkpoint, at the same path)`,
    );
  }
  if (changed.length === 0) {
    if (unchecked.length > 0) {
      warn(
        `${rules.trainer}: ${ck.dir} was written before checkpoints recorded the contents of ` +
          `the folders they name, so whether ${unchecked.join(', ')} changed since could not be ` +
          'checked: resuming it with them as they are now',
      );
    }
    return;
  }
  const reason =
    `${rules.trainer}: cannot resume from ${ck.dir}: this run differs from the checkpoint's in ` +
    `what is trained: ${changed.join('; ')}`;
  throw new ResumeRefusedError(
    `${reason}. Resume with the checkpoint's values (only ${rules.mayChange.join(', ')} may ` +
      `change on resume), ${FRESH_RUN}`,
    restore,
    reason,
  );
}

/**
 * `value` (an object of numbers read from a checkpoint's JSON) with null fields as NaN: JSON
 * writes NaN (an accuracy with no strict pairs, a reward with no held-out prompts) as null.
 */
export function numbersFromJson<T extends object>(value: T): T {
  return Object.fromEntries(
    Object.entries(value).map(([key, v]) => [key, v === null ? Number.NaN : v]),
  ) as T;
}
