/**
 * What a checkpoint records about the run that wrote it, so that a resume continues that run
 * and not another one: the trainer's config and a digest of the data it trains on. A resume
 * whose config differs in a key that changes what is trained (the data, the model, the encoding,
 * the adapter's shape, the seed, the optimizer's settings, the split, ...) is refused, naming
 * each such key with the checkpoint's value and the new one: its first steps were trained one
 * way and the rest would be trained another, and the output's run.json would claim the new
 * config for all of them. Only the keys a trainer lists in `mayChange` may differ (more epochs
 * or iterations to extend a run, how often to checkpoint, ...).
 */
import * as path from 'path';
import { sha256, type LoadedCheckpoint } from './checkpoint';

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
  /** What the data items are, in messages ("training pairs", "prompts"). */
  dataNoun: string;
  /**
   * Keys whose default changed before checkpoints recorded their config, with the value runs
   * before then trained with. A checkpoint that records no config is taken to be from such a
   * run: resuming it with another value would train the rest of the run another way, so it is
   * refused, naming the keys and values that continue it.
   */
  legacyDefaults?: Partial<Record<keyof T & string, unknown>>;
}

/** The data a run trains on, as a checkpoint records it. */
export interface DataDigest {
  items: number;
  sha256: string;
}

/** What each checkpoint's manifest state records for `checkResume`. */
export interface ResumeRecord {
  config: Record<string, unknown>;
  data: DataDigest;
}

/** The digest of `data` (JSON-serialisable), which holds `items` items. */
export function dataDigest(data: unknown, items: number): DataDigest {
  return { items, sha256: sha256(Buffer.from(JSON.stringify(data), 'utf8')) };
}

function recordedConfig<T extends object>(config: T, rules: ResumeRules<T>) {
  const out: Record<string, unknown> = { ...(config as Record<string, unknown>) };
  for (const key of rules.pathKeys) {
    const value = out[key];
    if (typeof value === 'string' && value !== '') out[key] = path.resolve(value);
  }
  return out;
}

/** The manifest state fields that let a later resume check its config and data. */
export function resumeRecord<T extends object>(
  config: T,
  rules: ResumeRules<T>,
  data: DataDigest,
): ResumeRecord {
  return { config: recordedConfig(config, rules), data };
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
  ) {
    super(message);
  }
}

/** What a refusal offers besides resuming, in no caller's terms (a CLI flag, an editor command). */
const FRESH_RUN = 'or start a fresh run in another run folder';

/**
 * Refuses to resume from `ck` when `config` differs from the checkpoint's in a key other than
 * `rules.mayChange`, or `data` from the checkpoint's data. A checkpoint written before
 * checkpoints recorded these is resumed with a warning that nothing could be checked, unless
 * `config` differs from `rules.legacyDefaults`.
 */
export function checkResume<T extends object>(
  ck: LoadedCheckpoint,
  config: T,
  rules: ResumeRules<T>,
  data: DataDigest,
  warn: (message: string) => void,
): void {
  const manifest = path.join(ck.dir, 'manifest.json');
  const { config: saved, data: savedData } = ck.manifest.state as Partial<ResumeRecord>;
  if (saved === undefined && savedData === undefined) {
    const current = config as Record<string, unknown>;
    const switched = Object.entries(rules.legacyDefaults ?? {}).filter(
      ([key, value]) => JSON.stringify(current[key]) !== JSON.stringify(value),
    );
    if (switched.length > 0) {
      const list = (values: (key: string, value: unknown) => string) =>
        switched.map(([key, value]) => values(key, value)).join(', ');
      throw new ResumeRefusedError(
        `${rules.trainer}: cannot resume from ${ck.dir}: it was written before checkpoints ` +
          `recorded their config, by a version that trained with ` +
          `${list((key, value) => `${key} ${show(value)}`)}; this run has ` +
          `${list((key) => `${key} ${show(current[key])}`)}, which would train the rest of the ` +
          'run another way (and run.json would claim it for all of it). Resume with ' +
          `${list((key, value) => `${key} ${show(value)}`)}, ${FRESH_RUN}`,
        Object.fromEntries(switched),
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
  const changed: string[] = [];
  let restore: Record<string, unknown> | undefined = {};
  for (const key of new Set([...Object.keys(saved), ...Object.keys(current)])) {
    if ((rules.mayChange as readonly string[]).includes(key)) continue;
    if (JSON.stringify(saved[key]) !== JSON.stringify(current[key])) {
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
  if (changed.length === 0) return;
  throw new ResumeRefusedError(
    `${rules.trainer}: cannot resume from ${ck.dir}: this run differs from the checkpoint's in ` +
      `what is trained: ${changed.join('; ')}. Resume with the checkpoint's values (only ` +
      `${rules.mayChange.join(', ')} may change on resume), ${FRESH_RUN}`,
    restore,
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
