import * as assert from 'assert';
import { AdamW, packTensors, unpackTensors } from '../../../src/rlhf/adamw';

describe('rlhf AdamW', () => {
  it('first step moves each parameter by lr against the gradient sign (bias-corrected)', () => {
    const p = new Float32Array([1, -1, 0.5]);
    const opt = new AdamW(new Map([['w', p]]), { learningRate: 0.1, maxGradNorm: 0 });
    opt.update(new Map([['w', [2, -3, 0]]]));
    assert.ok(Math.abs(p[0] - 0.9) < 1e-6 && Math.abs(p[1] + 0.9) < 1e-6 && p[2] === 0.5);
  });

  it('minimises a quadratic, and state round-trips so a resumed run continues identically', () => {
    const run = (steps: number, resumeAt?: number) => {
      let p: Float32Array = new Float32Array([3, -2]);
      let opt = new AdamW(new Map([['w', p]]), { learningRate: 0.05, weightDecay: 0.01 });
      for (let s = 0; s < steps; s++) {
        if (s === resumeAt) {
          const saved = unpackTensors(packTensors({ w: p }), 'ckpt');
          const state = opt.state();
          p = saved.w;
          opt = new AdamW(new Map([['w', p]]), { learningRate: 0.05, weightDecay: 0.01 });
          opt.restore(state);
        }
        opt.update(new Map([['w', [2 * p[0], 2 * p[1]]]]));
      }
      return p;
    };
    const straight = run(200);
    assert.ok(Math.abs(straight[0]) < 0.05 && Math.abs(straight[1]) < 0.05, `${straight}`);
    assert.deepStrictEqual([...run(200, 77)], [...straight]);
  });

  it('clips the global gradient norm and refuses a NaN gradient', () => {
    const p = new Float32Array([0, 0]);
    const opt = new AdamW(new Map([['w', p]]), { maxGradNorm: 1 });
    assert.strictEqual(opt.update(new Map([['w', [3, 4]]])), 5);
    assert.throws(() => opt.update(new Map([['w', [Number.NaN, 0]]])), /gradient norm is NaN/);
    assert.throws(() => opt.update(new Map([['v', [1, 1]]])), /no gradient for parameter "w"/);
  });
});
