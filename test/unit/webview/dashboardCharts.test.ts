import * as assert from 'assert';
import { JSDOM } from 'jsdom';
import { htmlShell } from '../../../src/extension/htmlShell';
import { TrainingDashboardFeed } from '../../../src/extension/trainingDashboardFeed';
import type { TrainingEvent } from '../../../src/protocol/training';
import {
  parseHostToTrainingDashboard,
  type HostToTrainingDashboard,
} from '../../../src/protocol/trainingDashboard';
import { MessageValidationError } from '../../../src/protocol/webviewMessages';
import {
  CHARTS,
  MAX_POINTS,
  MetricsHistory,
  TrainingView,
} from '../../../webview/dashboard/charts';

const ATTACK = '<img src=x onerror="window.__p=2"><script>window.__p=1</script>';

function dashboard() {
  const html = htmlShell({
    cspSource: 'https://webview.test',
    nonce: 'AAAAAAAAAAAAAAAAAAAAAA==',
    title: 'Code RLHF',
    scriptUri: 'https://webview.test/dashboard.js',
    styleUris: ['https://webview.test/webview.css', 'https://webview.test/dashboard.css'],
    // The training part of the markup DashboardPanel writes.
    body: '<p id="run-status"></p><div id="charts"></div><table id="run-config"></table>',
  });
  // runScripts "dangerously": data that became markup would run and set window.__p.
  const dom = new JSDOM(html, { runScripts: 'dangerously' });
  const doc = dom.window.document;
  const view = new TrainingView(doc);
  // Messages take the webview's path: JSON (postMessage) and validation on arrival.
  const send = (message: HostToTrainingDashboard) =>
    view.apply(parseHostToTrainingDashboard(JSON.parse(JSON.stringify(message))));
  return { dom, doc, view, send };
}

const metrics = (step: number, values: Record<string, number>): TrainingEvent => ({
  type: 'train/metrics',
  jobId: 'j',
  step,
  metrics: values,
});

describe('dashboard training charts', () => {
  it('draws reward, KL, losses, entropy and accuracy from the metrics stream, with the config', () => {
    const { doc, send } = dashboard();
    const feed = new TrainingDashboardFeed(send);
    feed.runStarted('run-1', 'ppo', '/runs/run-1');
    feed.stageStarted('run-1', 'rm', {
      type: 'train/start',
      jobId: 'run-1-rm',
      kind: 'rm',
      runDir: '/runs/run-1/rm',
      resume: false,
      config: { modelDir: '/m', dataFile: '/d.jsonl', learningRate: 0.001, useMargins: false },
    });
    for (let step = 1; step <= 4; step++) {
      feed.event(
        'run-1',
        'rm',
        metrics(step, { 'loss/train': 1 / step, 'eval/accuracy': 0.5 + step / 10 }),
      );
    }
    for (let step = 0; step < 5; step++) {
      feed.event(
        'run-1',
        'ppo',
        metrics(step, {
          'objective/kl': step * 0.1,
          'objective/entropy': 2 - step * 0.1,
          'objective/scores': step === 2 ? Number.NaN : step * 0.2,
          'loss/value_avg': 0.5,
          'loss/policy_avg': -0.01 * step,
        }),
      );
    }
    feed.event('run-1', 'ppo', {
      type: 'train/progress',
      jobId: 'j',
      phase: 'rollout',
      step: 5,
      totalSteps: 20,
    });

    const chart = (id: string) => doc.querySelector(`figure[data-chart="${id}"]`)!;
    assert.deepStrictEqual(
      [...doc.querySelectorAll('figure.chart figcaption')].map((c) => c.textContent),
      CHARTS.map((c) => c.title),
    );
    // KL: one line through 5 points, the scale from the data.
    const kl = chart('kl').querySelectorAll('polyline');
    assert.strictEqual(kl.length, 1);
    assert.strictEqual(kl[0].getAttribute('points')!.split(' ').length, 5);
    assert.deepStrictEqual(
      [...chart('kl').querySelectorAll('text')].map((t) => t.textContent),
      ['0.4', '0', 'step 0', '4'],
    );
    // Reward: the NaN at step 2 breaks the line into two segments instead of being drawn.
    const reward = chart('reward').querySelectorAll('svg .series-0');
    assert.deepStrictEqual(
      [...reward].map(
        (e) =>
          e.tagName.toLowerCase() + ':' + (e.getAttribute('points') ?? 'dot').split(' ').length,
      ),
      ['polyline:2', 'polyline:2'],
    );
    // Losses from both stages, entropy falling: first point higher on screen than the last.
    assert.strictEqual(chart('loss').querySelectorAll('polyline').length, 3);
    const entropy = chart('entropy').querySelector('polyline')!.getAttribute('points')!.split(' ');
    assert.ok(Number(entropy[0].split(',')[1]) < Number(entropy[4].split(',')[1]));
    assert.match(chart('accuracy').querySelector('li')!.textContent!, /rm eval\/accuracy: 0\.9/);
    assert.ok(chart('accuracy').querySelector('.swatch.series-0'));
    // Colors come from theme classes, not inline styles.
    assert.strictEqual(doc.querySelectorAll('[style]').length, 0);

    assert.strictEqual(doc.getElementById('run-status')!.textContent, 'ppo: rollout 5/20');
    const rows = [...doc.querySelectorAll('#run-config tr')].map((r) =>
      [...r.querySelectorAll('td')].map((td) => td.textContent).join(' '),
    );
    assert.deepStrictEqual(rows, [
      'rm modelDir /m',
      'rm dataFile /d.jsonl',
      'rm learningRate 0.001',
      'rm useMargins false',
    ]);
  });

  it('starts empty, clears on a new run and ignores messages of an older run', () => {
    const { doc, view, send } = dashboard();
    view.render();
    assert.strictEqual(doc.querySelectorAll('.chart-empty').length, CHARTS.length);
    assert.strictEqual(
      doc.getElementById('run-status')!.textContent,
      'no training run in this session',
    );
    send({ type: 'trainingRun', runId: 'a', algorithm: 'dpo', runDir: '/r/a' });
    send({ type: 'trainingMetrics', runId: 'a', stage: 'dpo', step: 1, metrics: { loss: 0.7 } });
    assert.strictEqual(doc.querySelectorAll('figure[data-chart="loss"] circle').length, 1);
    send({ type: 'trainingRun', runId: 'b', algorithm: 'ppo', runDir: '/r/b' });
    send({ type: 'trainingMetrics', runId: 'a', stage: 'dpo', step: 2, metrics: { loss: 0.6 } });
    assert.strictEqual(doc.querySelectorAll('.chart-empty').length, CHARTS.length);
    send({
      type: 'trainingEnded',
      runId: 'b',
      status: 'cancelled',
      text: 'reward model cancelled',
    });
    assert.strictEqual(
      doc.getElementById('run-status')!.textContent,
      'cancelled: reward model cancelled',
    );
  });

  it('shows hostile text as text, never as markup', () => {
    const { dom, doc, send } = dashboard();
    send({ type: 'trainingRun', runId: 'x', algorithm: 'ppo', runDir: ATTACK });
    send({ type: 'trainingStage', runId: 'x', stage: 'rm', config: { dataFile: ATTACK } });
    send({ type: 'trainingEnded', runId: 'x', status: 'failed', text: ATTACK });
    assert.strictEqual((dom.window as unknown as { __p?: number }).__p, undefined);
    assert.strictEqual(doc.querySelectorAll('img, script:not([nonce])').length, 0);
    assert.ok(doc.getElementById('run-status')!.textContent!.includes(ATTACK));
    assert.ok(doc.querySelector('#run-config td:last-child')!.textContent === ATTACK);
  });

  it('keeps a bounded number of points per series', () => {
    const history = new MetricsHistory();
    history.reset('r');
    for (let step = 0; step < 3 * MAX_POINTS; step++)
      history.add('ppo', step, { 'objective/kl': step });
    const points = history.series('ppo', 'objective/kl');
    assert.ok(points.length <= MAX_POINTS, `${points.length} points`);
    assert.strictEqual(points[0][0], 0);
    assert.strictEqual(points[points.length - 1][0], 3 * MAX_POINTS - 1);
    assert.ok(points.every((p, i) => i === 0 || p[0] > points[i - 1][0]));
  });
});

describe('dashboard training message validation', () => {
  const bad: Array<[unknown, RegExp]> = [
    [null, /must be an object/],
    [{ type: 'eval', runId: 'a' }, /unknown type "eval"; allowed: "state", "trainingRun"/],
    [
      { type: 'trainingRun', runId: '', algorithm: 'ppo', runDir: '/r' },
      /"runId" must be a non-empty string/,
    ],
    [
      { type: 'trainingRun', runId: 'a', algorithm: 'sft', runDir: '/r' },
      /"algorithm" must be one of "ppo", "dpo", got "sft"/,
    ],
    [
      { type: 'trainingMetrics', runId: 'a', stage: 'rm', step: 1.5, metrics: {} },
      /"step" must be a non-negative integer, got 1.5/,
    ],
    [
      { type: 'trainingMetrics', runId: 'a', stage: 'rm', step: 1, metrics: { 'loss/train': '1' } },
      /"metrics.loss\/train" must be a number or null, got "1"/,
    ],
    [
      { type: 'trainingMetrics', runId: 'a', stage: 'rm', step: 1, metrics: { '<b>': 1 } },
      /"metrics key" must be an identifier/,
    ],
    [
      { type: 'trainingMetrics', runId: 'a', stage: 'sft', step: 1, metrics: {} },
      /"stage" must be one of "rm", "ppo", "dpo"/,
    ],
    [
      { type: 'trainingStage', runId: 'a', stage: 'rm', config: { seed: { x: 1 } } },
      /"config.seed" must be a string, a finite number or a boolean/,
    ],
    [
      { type: 'trainingProgress', runId: 'a', stage: 'rm', phase: 'x', step: -1, totalSteps: 2 },
      /"step" must be a non-negative integer, got -1/,
    ],
    [{ type: 'trainingEnded', runId: 'a', status: 'done', text: 'x' }, /"status" must be one of/],
  ];
  for (const [message, error] of bad) {
    it(`rejects ${JSON.stringify(message)}`, () => {
      assert.throws(
        () => parseHostToTrainingDashboard(message),
        (e: Error) => e instanceof MessageValidationError && error.test(e.message),
      );
    });
  }

  it('keeps a diverged metric as null', () => {
    const parsed = parseHostToTrainingDashboard({
      type: 'trainingMetrics',
      runId: 'a',
      stage: 'ppo',
      step: 3,
      metrics: { 'objective/kl': null, 'objective/scores': 0.5 },
    });
    assert.deepStrictEqual(parsed.type === 'trainingMetrics' && parsed.metrics, {
      'objective/kl': null,
      'objective/scores': 0.5,
    });
  });
});
