/**
 * Live training charts of the dashboard: line charts in inline SVG built with DOM APIs (no chart
 * library, no markup parsing), colored by CSS classes that use the VS Code theme variables
 * (media/dashboard.css). Values come from the validated metrics stream.
 */
import type { DashboardStage, HostToTrainingDashboard } from '../../src/protocol/trainingDashboard';

export interface ChartSpec {
  id: string;
  title: string;
  /** Metric series: the stage that emits it and its (TRL) name. */
  series: Array<{ stage: DashboardStage; metric: string }>;
}

export const CHARTS: readonly ChartSpec[] = [
  {
    id: 'reward',
    title: 'Reward',
    series: [
      { stage: 'ppo', metric: 'objective/scores' },
      { stage: 'ppo', metric: 'objective/rlhf_reward' },
      { stage: 'ppo', metric: 'eval/held_out_reward' },
      { stage: 'dpo', metric: 'rewards/margins' },
    ],
  },
  {
    id: 'kl',
    title: 'KL',
    series: [
      { stage: 'ppo', metric: 'objective/kl' },
      { stage: 'ppo', metric: 'policy/approxkl_avg' },
    ],
  },
  {
    id: 'loss',
    title: 'Losses',
    series: [
      { stage: 'rm', metric: 'loss/train' },
      { stage: 'rm', metric: 'eval/loss' },
      { stage: 'ppo', metric: 'loss/policy_avg' },
      { stage: 'ppo', metric: 'loss/value_avg' },
      { stage: 'dpo', metric: 'loss' },
    ],
  },
  {
    id: 'entropy',
    title: 'Entropy',
    series: [{ stage: 'ppo', metric: 'objective/entropy' }],
  },
  {
    id: 'accuracy',
    title: 'Reward-model accuracy',
    series: [
      { stage: 'rm', metric: 'eval/accuracy' },
      { stage: 'dpo', metric: 'rewards/accuracies' },
      { stage: 'dpo', metric: 'eval/rewards/accuracies' },
    ],
  },
];

/** Points kept per series; older ones are thinned out so a long run stays cheap to draw. */
export const MAX_POINTS = 500;

/** Metrics of the current run, per stage and metric name, as [step, value|NaN] points. */
export class MetricsHistory {
  private readonly points = new Map<string, Array<[number, number]>>();
  runId: string | undefined;

  reset(runId: string): void {
    this.runId = runId;
    this.points.clear();
  }

  add(stage: DashboardStage, step: number, metrics: Record<string, number | null>): void {
    for (const [name, value] of Object.entries(metrics)) {
      const key = `${stage} ${name}`;
      let list = this.points.get(key);
      if (!list) this.points.set(key, (list = []));
      list.push([step, value ?? Number.NaN]);
      // Keep every other point of the older half: bounded memory, the shape stays visible.
      if (list.length > MAX_POINTS) {
        const half = Math.floor(list.length / 2);
        const thinned = list.slice(0, half).filter((_, i) => i % 2 === 0);
        list.splice(0, half, ...thinned);
      }
    }
  }

  series(stage: DashboardStage, metric: string): ReadonlyArray<[number, number]> {
    return this.points.get(`${stage} ${metric}`) ?? [];
  }
}

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 320;
const HEIGHT = 140;
const PAD = { left: 48, right: 8, top: 8, bottom: 20 };

function svg<K extends keyof SVGElementTagNameMap>(
  doc: Document,
  tag: K,
  attributes: Record<string, string | number>,
): SVGElementTagNameMap[K] {
  const element = doc.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
}

/** Short number for an axis label. */
export function formatValue(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs >= 1e4 || abs < 1e-3)) return value.toExponential(1);
  return String(Number(value.toPrecision(3)));
}

/**
 * One chart: a figure with a title, an SVG of one polyline per series (broken at missing or
 * non-finite values) and a legend. Returns the figure, or one saying "no data yet".
 */
export function renderChart(doc: Document, spec: ChartSpec, history: MetricsHistory): HTMLElement {
  const figure = doc.createElement('figure');
  figure.className = 'chart';
  figure.dataset.chart = spec.id;
  const caption = doc.createElement('figcaption');
  caption.textContent = spec.title;
  figure.append(caption);

  const present = spec.series
    .map((s, index) => ({ ...s, index, points: history.series(s.stage, s.metric) }))
    .filter((s) => s.points.length > 0);
  const finite = present.flatMap((s) => s.points.filter(([, v]) => Number.isFinite(v)));
  if (finite.length === 0) {
    const empty = doc.createElement('p');
    empty.className = 'chart-empty';
    empty.textContent = present.length ? 'no finite values yet' : 'no data yet';
    figure.append(empty);
    return figure;
  }
  const steps = present.flatMap((s) => s.points.map(([step]) => step));
  const x0 = Math.min(...steps);
  const x1 = Math.max(...steps);
  let y0 = Math.min(...finite.map(([, v]) => v));
  let y1 = Math.max(...finite.map(([, v]) => v));
  if (y0 === y1) {
    const pad = Math.abs(y0) * 0.1 || 1;
    y0 -= pad;
    y1 += pad;
  }
  const innerW = WIDTH - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  const sx = (step: number) =>
    PAD.left + (x1 === x0 ? innerW / 2 : ((step - x0) / (x1 - x0)) * innerW);
  const sy = (v: number) => PAD.top + (1 - (v - y0) / (y1 - y0)) * innerH;

  const root = svg(doc, 'svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    width: WIDTH,
    height: HEIGHT,
    role: 'img',
  });
  root.setAttribute('aria-label', spec.title);
  root.append(
    svg(doc, 'rect', {
      class: 'chart-frame',
      x: PAD.left,
      y: PAD.top,
      width: innerW,
      height: innerH,
    }),
  );
  const label = (x: number, y: number, anchor: string, value: string) => {
    const t = svg(doc, 'text', { class: 'chart-axis', x, y, 'text-anchor': anchor });
    t.textContent = value;
    root.append(t);
  };
  label(PAD.left - 4, PAD.top + 8, 'end', formatValue(y1));
  label(PAD.left - 4, HEIGHT - PAD.bottom, 'end', formatValue(y0));
  label(PAD.left, HEIGHT - 4, 'start', `step ${x0}`);
  label(WIDTH - PAD.right, HEIGHT - 4, 'end', `${x1}`);

  for (const series of present) {
    // Split at non-finite values so a diverged step shows as a gap, not a line to nowhere.
    let segment: string[] = [];
    const flush = () => {
      if (segment.length === 1) {
        const [cx, cy] = segment[0].split(',');
        root.append(svg(doc, 'circle', { class: `series series-${series.index}`, cx, cy, r: 2 }));
      } else if (segment.length > 1) {
        root.append(
          svg(doc, 'polyline', {
            class: `series series-${series.index}`,
            points: segment.join(' '),
          }),
        );
      }
      segment = [];
    };
    for (const [step, value] of series.points) {
      if (Number.isFinite(value)) segment.push(`${sx(step).toFixed(1)},${sy(value).toFixed(1)}`);
      else flush();
    }
    flush();
  }
  figure.append(root);

  const legend = doc.createElement('ul');
  legend.className = 'chart-legend';
  for (const series of present) {
    const item = doc.createElement('li');
    const swatch = doc.createElement('span');
    swatch.className = `swatch series-${series.index}`;
    const last = series.points[series.points.length - 1][1];
    item.append(
      swatch,
      doc.createTextNode(`${series.stage} ${series.metric}: ${formatValue(last)}`),
    );
    legend.append(item);
  }
  figure.append(legend);
  return figure;
}

/** The training section's state, rebuilt from the messages of the current run. */
export class TrainingView {
  readonly history = new MetricsHistory();
  private readonly configs = new Map<DashboardStage, Record<string, string | number | boolean>>();
  private status = '';

  constructor(private readonly doc: Document) {}

  apply(message: HostToTrainingDashboard): void {
    if (message.type === 'trainingRun') {
      this.history.reset(message.runId);
      this.configs.clear();
      this.status = `run ${message.runId} (reward model, then ${message.algorithm.toUpperCase()}) in ${message.runDir}`;
    } else if (message.runId !== this.history.runId) {
      // A message of an older run (e.g. replayed late) must not mix into this run's charts.
      return;
    } else if (message.type === 'trainingStage') {
      this.configs.set(message.stage, message.config);
    } else if (message.type === 'trainingMetrics') {
      this.history.add(message.stage, message.step, message.metrics);
    } else if (message.type === 'trainingProgress') {
      this.status = `${message.stage}: ${message.phase} ${message.step}/${message.totalSteps}`;
    } else {
      this.status = `${message.status}: ${message.text}`;
    }
    this.render();
  }

  render(): void {
    const doc = this.doc;
    const status = doc.getElementById('run-status');
    if (status) status.textContent = this.status || 'no training run in this session';
    const charts = doc.getElementById('charts');
    charts?.replaceChildren(...CHARTS.map((spec) => renderChart(doc, spec, this.history)));
    const config = doc.getElementById('run-config');
    if (config) {
      const rows: HTMLElement[] = [];
      for (const [stage, values] of this.configs) {
        for (const [name, value] of Object.entries(values)) {
          const row = doc.createElement('tr');
          for (const cell of [stage, name, String(value)]) {
            const td = doc.createElement('td');
            td.textContent = cell;
            row.append(td);
          }
          rows.push(row);
        }
      }
      config.replaceChildren(...rows);
    }
  }
}
