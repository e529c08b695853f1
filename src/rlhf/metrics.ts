/**
 * Training metrics: names follow TRL so that charts and habits carry over, one fixed-format line
 * per step for people, and one JSON object per step appended to `metrics.jsonl` for tools.
 */
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic, type LoadedCheckpoint } from './checkpoint';

/** PPO metric names (TRL PPOTrainer). */
export const PPO_METRICS = [
  'objective/kl',
  'objective/entropy',
  'objective/non_score_reward',
  'objective/rlhf_reward',
  'objective/scores',
  'policy/approxkl_avg',
  'policy/clipfrac_avg',
  'loss/policy_avg',
  'loss/value_avg',
  'val/clipfrac_avg',
  'policy/entropy_avg',
  'val/ratio',
  'val/num_eos_tokens',
  'val/kl_coef',
  'lr',
  'episode',
] as const;

/** Reward-model metric names (TRL RewardTrainer logs `accuracy` and `margin` at eval). */
export const RM_METRICS = [
  'loss/train',
  'eval/loss',
  'eval/accuracy',
  'eval/margin',
  'eval/ties',
  'eval/equal_scores',
  'lr',
  'epoch',
] as const;

/** DPO metric names (TRL DPOTrainer). */
export const DPO_METRICS = [
  'loss',
  'rewards/chosen',
  'rewards/rejected',
  'rewards/accuracies',
  'rewards/margins',
  'logps/chosen',
  'logps/rejected',
  'lr',
  'epoch',
] as const;

export type MetricRow = Record<string, number>;

/** Running means of per-minibatch statistics, reduced once per step. */
export class MetricAccumulator {
  private sums = new Map<string, number>();
  private counts = new Map<string, number>();

  add(name: string, value: number): void {
    this.sums.set(name, (this.sums.get(name) ?? 0) + value);
    this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
  }

  means(): MetricRow {
    const out: MetricRow = {};
    for (const [name, sum] of this.sums) out[name] = sum / this.counts.get(name)!;
    return out;
  }
}

function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5)) return v.toExponential(3);
  return v.toFixed(4);
}

/** "step 12 | objective/kl 0.0123 | ..." with the names in the given order, then the rest. */
export function formatMetricLine(step: number, row: MetricRow, order: readonly string[]): string {
  const names = [
    ...order.filter((n) => n in row),
    ...Object.keys(row).filter((n) => !order.includes(n)),
  ];
  return [`step ${step}`, ...names.map((n) => `${n} ${formatValue(row[n])}`)].join(' | ');
}

/**
 * The checkpoint state key under which a trainer's checkpoint records how many rows its metrics
 * file held when it was written (see `MetricsWriter.forRun`).
 */
export const METRICS_ROWS_KEY = 'metricsRows';

/** Appends one JSON line per step; NaN/Infinity become null (JSON cannot carry them). */
export class MetricsWriter {
  private written = 0;

  constructor(readonly filePath: string) {
    fs.mkdirSync(path.dirname(filePath), { recursive: true });
  }

  /**
   * The writer of a run's metrics file, for a run that starts from checkpoint `ck` (whose step
   * counter is `stepKey`), or from the beginning when `ck` is undefined. The rows an earlier
   * attempt wrote after that point are removed first: the resumed run trains those steps again
   * and writes their rows again, and a run killed mid-write (kill -9, a crash) left them in the
   * file, so each would be there twice (with a torn last line glued to the first new row). The
   * rows the checkpoint covers are kept: as many as it records under {@link METRICS_ROWS_KEY}, or,
   * in checkpoints written before they recorded it, the rows of steps up to the checkpoint's (a
   * row the older run wrote at that step after the checkpoint, its final evaluation, can then
   * stay twice). The file is rewritten atomically, so a crash during it loses no kept row. A file
   * changed by hand since the checkpoint (rows deleted, cut short) cannot be put back: rows past
   * the checkpoint's step among the counted ones are dropped, and `warn` says what is missing.
   */
  static forRun(
    filePath: string,
    ck: LoadedCheckpoint | undefined,
    stepKey: string,
    warn: (message: string) => void = () => {},
  ) {
    const writer = new MetricsWriter(filePath);
    let text: string;
    try {
      text = fs.readFileSync(filePath, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      text = '';
    }
    // Whole lines only: what follows the last newline is a row torn by a crash, or nothing.
    const lines = text.split('\n').slice(0, -1);
    let kept: string[] = [];
    const atOrBefore = (last: number) => (line: string) => {
      try {
        const step = (JSON.parse(line) as { step?: unknown }).step;
        return typeof step === 'number' && step <= last;
      } catch {
        return false; // a torn row that a later row was appended to
      }
    };
    if (ck && ck.manifest.state[METRICS_ROWS_KEY] !== undefined) {
      const counted = ck.counter(METRICS_ROWS_KEY);
      const last = ck.counter(stepKey);
      kept = lines.slice(0, counted).filter(atOrBefore(last));
      if (kept.length < counted) {
        warn(
          `${filePath}: holds ${kept.length} of the ${counted} rows of steps up to ${last} that ` +
            `checkpoint ${ck.dir} covers (the file was changed since); the resumed run appends ` +
            'after them, so the missing rows stay missing',
        );
      }
    } else if (ck) {
      kept = lines.filter(atOrBefore(ck.counter(stepKey)));
    }
    const keptText = kept.map((line) => `${line}\n`).join('');
    if (keptText !== text) writeFileAtomic(filePath, keptText);
    writer.written = kept.length;
    return writer;
  }

  /** The rows the file holds: a checkpoint records it under {@link METRICS_ROWS_KEY}. */
  get rows(): number {
    return this.written;
  }

  append(step: number, row: MetricRow): void {
    const clean: Record<string, number | null> = { step };
    for (const [k, v] of Object.entries(row)) clean[k] = Number.isFinite(v) ? v : null;
    fs.appendFileSync(this.filePath, JSON.stringify({ ...clean, time: Date.now() }) + '\n');
    this.written++;
  }

  /** Reads the file back; a torn last line (crash mid-write) is skipped, others must parse. */
  static read(filePath: string): Array<Record<string, number | null>> {
    if (!fs.existsSync(filePath)) return [];
    const lines = fs.readFileSync(filePath, 'utf8').split('\n');
    const rows: Array<Record<string, number | null>> = [];
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        rows.push(JSON.parse(line));
      } catch (error) {
        if (i === lines.length - 1) return;
        throw new Error(`${filePath}:${i + 1}: not valid JSON (${(error as Error).message})`);
      }
    });
    return rows;
  }
}
