import * as assert from 'assert';
import { EngineSession, Graph, gradients, hostTensor, op } from '../../../src/engine';
import { pairLoss } from '../../../src/rlhf/bradleyTerry';
import {
  bradleyTerryLoss,
  dpoLossGraph,
  indexedBradleyTerryLoss,
  lastTokenOneHot,
  ppoLossGraph,
  scalarHead,
  selectPositions,
} from '../../../src/rlhf/lossGraphs';
import { clippedPolicyLoss, clippedValueLoss, dpoLoss } from '../../../src/rlhf/ppoMath';

const f64 = (shape: number[], values: number[]) =>
  hostTensor('float64', shape, Float64Array.from(values));
const i64 = (shape: number[], values: number[]) =>
  hostTensor('int64', shape, BigInt64Array.from(values.map(BigInt)));
const close = (a: number, b: number, tol = 1e-9) =>
  assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

describe('rlhf loss graphs', () => {
  it('reads the reward at the last real token from the mask (right and left padding), never a token id', async () => {
    const g = new Graph('rm-head');
    const hidden = g.input('hidden', 'float64', ['B', 'T', 2]);
    const mask = g.input('mask', 'int64', ['B', 'T']);
    const w = g.input('w', 'float64', [2]);
    const b = g.input('b', 'float64', [1]);
    const r = scalarHead(selectPositions(hidden, lastTokenOneHot(mask, 'float64')), w, b);
    g.output('r', r);
    const s = await EngineSession.create(g.build());
    // row 0: right padded, last real t=1; row 1: left padded, last real t=2; row 2: all real.
    const h = [1, 0, 2, 0, 9, 9, /**/ 9, 9, 3, 0, 4, 0, /**/ 5, 0, 6, 0, 7, 0];
    const out = await s.run({
      hidden: f64([3, 3, 2], h),
      mask: i64([3, 3], [1, 1, 0, 0, 1, 1, 1, 1, 1]),
      w: f64([2], [1, 0]),
      b: f64([1], [0.5]),
    });
    assert.deepStrictEqual([...(out.r.data as Float64Array)], [2.5, 4.5, 7.5]);
    s.release();
  });

  it('BT loss with ties and margins matches the reference, and its gradient is right', async () => {
    const g = new Graph('bt');
    const rewards = g.input('rewards', 'float64', ['2*P']);
    const target = g.input('target', 'float64', ['P']);
    const margin = g.input('margin', 'float64', ['P']);
    const { loss } = bradleyTerryLoss(rewards, target, margin);
    const [dR] = gradients(loss, [rewards]);
    g.output('loss', loss);
    g.output('dR', dR);
    const s = await EngineSession.create(g.build());
    const rs = [1.0, 0.2, 3.0, 0.0, 0.5, 1.0];
    const ts = [1, 0.5, 1];
    const ms = [0, 0, 0.5];
    const run = async (values: number[]) =>
      s.run({ rewards: f64([6], values), target: f64([3], ts), margin: f64([3], ms) });
    const out = await run(rs);
    const expected =
      [0, 1, 2]
        .map((i) => pairLoss({ chosen: rs[i], rejected: rs[i + 3], target: ts[i], margin: ms[i] }))
        .reduce((a, b) => a + b) / 3;
    close((out.loss.data as Float64Array)[0], expected, 1e-12);
    for (let i = 0; i < 6; i++) {
      const plus = rs.slice();
      plus[i] += 1e-6;
      const minus = rs.slice();
      minus[i] -= 1e-6;
      const fd =
        ((await run(plus)).loss.data[0] as number) - ((await run(minus)).loss.data[0] as number);
      close((out.dR.data as Float64Array)[i], fd / 2e-6, 1e-7);
    }
    s.release();
  });

  it('indexed BT scores each sequence once and gathers its pairs', async () => {
    const g = new Graph('bt-indexed');
    const rewards = g.input('rewards', 'float64', ['B']);
    const chosen = g.input('chosen', 'int64', ['P']);
    const rejected = g.input('rejected', 'int64', ['P']);
    const target = g.input('target', 'float64', ['P']);
    const margin = g.input('margin', 'float64', ['P']);
    const { loss } = indexedBradleyTerryLoss(rewards, chosen, rejected, target, margin);
    const [dR] = gradients(loss, [rewards]);
    g.output('loss', loss);
    g.output('dR', dR);
    const s = await EngineSession.create(g.build());
    // ranking A > B = C over rows [A, B, C]: pairs (A,B), (A,C) and the tie (B,C)
    const r = [2, 0.5, -1];
    const out = await s.run({
      rewards: f64([3], r),
      chosen: i64([3], [0, 0, 1]),
      rejected: i64([3], [1, 2, 2]),
      target: f64([3], [1, 1, 0.5]),
      margin: f64([3], [0, 0, 0]),
    });
    const expected =
      (pairLoss({ chosen: 2, rejected: 0.5, target: 1 }) +
        pairLoss({ chosen: 2, rejected: -1, target: 1 }) +
        pairLoss({ chosen: 0.5, rejected: -1, target: 0.5 })) /
      3;
    close((out.loss.data as Float64Array)[0], expected, 1e-12);
    // row A appears in two pairs: its gradient sums both (it is negative: raising A lowers the loss)
    assert.ok((out.dR.data as Float64Array)[0] < 0);
    close(
      [...(out.dR.data as Float64Array)].reduce((a, b) => a + b),
      0,
      1e-12,
    );
    s.release();
  });

  it('PPO losses match the reference; with old == new every ratio is 1 and approx KL is 0', async () => {
    const g = new Graph('ppo');
    const names = [
      'logprobs',
      'oldLogprobs',
      'advantages',
      'mask',
      'values',
      'oldValues',
      'returns',
    ] as const;
    const t = Object.fromEntries(
      names.map((n) => [n, g.input(n, 'float64', ['B', 'R'])]),
    ) as Record<(typeof names)[number], ReturnType<Graph['input']>>;
    const terms = ppoLossGraph(t, 0.2, 0.2, 0.1);
    for (const [k, v] of Object.entries(terms)) g.output(k, v);
    const [dLogp, dV] = gradients(terms.loss, [t.logprobs, t.values]);
    g.output('dLogp', dLogp);
    g.output('dV', dV);
    const s = await EngineSession.create(g.build());
    const data = {
      logprobs: [
        [-1, -0.4, -2],
        [-0.3, -3, -1],
      ],
      oldLogprobs: [
        [-1.1, -0.9, -2],
        [-0.3, -2.5, -9],
      ],
      advantages: [
        [0.5, 1.5, -1],
        [-0.7, 2, 3],
      ],
      mask: [
        [1, 1, 1],
        [1, 1, 0],
      ],
      values: [
        [0.1, 0.9, -0.2],
        [0.3, 0.0, 5],
      ],
      oldValues: [
        [0.0, 0.5, 0.1],
        [0.3, 0.4, 0],
      ],
      returns: [
        [1, 1, 1],
        [0, -1, 7],
      ],
    };
    const feeds = (d: typeof data) =>
      Object.fromEntries(Object.entries(d).map(([k, v]) => [k, f64([2, 3], v.flat())]));
    const out = await s.run(feeds(data));
    const pol = clippedPolicyLoss(data.logprobs, data.oldLogprobs, data.advantages, data.mask, 0.2);
    const val = clippedValueLoss(data.values, data.oldValues, data.returns, data.mask, 0.2);
    const scalar = (k: string) => (out[k].data as Float64Array)[0];
    close(scalar('policyLoss'), pol.loss);
    close(scalar('valueLoss'), val.loss);
    close(scalar('loss'), pol.loss + 0.1 * val.loss);
    close(scalar('clipfrac'), pol.clipfrac);
    close(scalar('approxKl'), pol.approxKl);
    close(scalar('ratioMean'), pol.ratioMean);
    close(scalar('valueClipfrac'), val.clipfrac);
    // masked position (1, 2) gets no gradient
    assert.strictEqual((out.dLogp.data as Float64Array)[5], 0);
    assert.strictEqual((out.dV.data as Float64Array)[5], 0);
    const same = await s.run(feeds({ ...data, oldLogprobs: data.logprobs }));
    assert.strictEqual((same.ratioMean.data as Float64Array)[0], 1);
    assert.strictEqual((same.approxKl.data as Float64Array)[0], 0);
    assert.strictEqual((same.clipfrac.data as Float64Array)[0], 0);
    s.release();
  });

  it('DPO loss matches the reference', async () => {
    const g = new Graph('dpo');
    const pol = g.input('pol', 'float64', ['2*P']);
    const ref = g.input('ref', 'float64', ['2*P']);
    const target = g.input('target', 'float64', ['P']);
    g.output('loss', dpoLossGraph(pol, ref, target, 0.1).loss);
    const s = await EngineSession.create(g.build());
    const p = [-4, -10, -7, -9];
    const r = [-5, -9, -6, -9];
    const out = await s.run({ pol: f64([4], p), ref: f64([4], r), target: f64([2], [1, 0.5]) });
    const expected =
      (dpoLoss(
        { policyChosen: p[0], policyRejected: p[2], refChosen: r[0], refRejected: r[2], target: 1 },
        0.1,
      ).loss +
        dpoLoss(
          {
            policyChosen: p[1],
            policyRejected: p[3],
            refChosen: r[1],
            refRejected: r[3],
            target: 0.5,
          },
          0.1,
        ).loss) /
      2;
    close((out.loss.data as Float64Array)[0], expected, 1e-12);
    s.release();
    void op;
  });
});
