import * as assert from 'assert';
import { nn, op } from '../../../src/engine';
import { CheckCase, CheckResult, gradCheck, integersBelow, spread, uniformIn } from './gradcheck';

const TOLERANCE = 1e-5;
const positive = uniformIn(0.5, 2);

const cases: CheckCase[] = [
  // Binary broadcasting ops: [B, 1, 4] against [3, 4] exercises leading and size-1 broadcasts.
  ...(['add', 'sub', 'mul', 'div'] as const).map((name): CheckCase => ({
    name: `${name} (broadcast)`,
    inputs: [
      { name: 'a', shape: ['B', 1, 4], value: [2, 1, 4] },
      { name: 'b', shape: [3, 4], value: [3, 4], data: name === 'div' ? positive : undefined },
    ],
    build: (_g, { a, b }) => op[name](a, b),
  })),
  {
    name: 'matMul (batched)',
    inputs: [
      { name: 'a', shape: ['B', 3, 4], value: [2, 3, 4] },
      { name: 'b', shape: ['B', 4, 2], value: [2, 4, 2] },
    ],
    build: (_g, { a, b }) => op.matMul(a, b),
  },
  {
    name: 'matMul (batch broadcast)',
    inputs: [
      { name: 'a', shape: [2, 1, 3, 4], value: [2, 1, 3, 4] },
      { name: 'b', shape: [3, 4, 2], value: [3, 4, 2] },
    ],
    build: (_g, { a, b }) => op.matMul(a, b),
  },
  {
    name: 'matMul (shared weight)',
    inputs: [
      { name: 'a', shape: ['B', 'T', 4], value: [2, 3, 4] },
      { name: 'b', shape: [4, 5], value: [4, 5] },
    ],
    build: (_g, { a, b }) => op.matMul(a, b),
  },
  {
    name: 'neg',
    inputs: [{ name: 'x', shape: [3, 4], value: [3, 4] }],
    build: (_g, { x }) => op.neg(x),
  },
  {
    name: 'exp',
    inputs: [{ name: 'x', shape: [3, 4], value: [3, 4] }],
    build: (_g, { x }) => op.exp(x),
  },
  {
    name: 'log',
    inputs: [{ name: 'x', shape: [3, 4], value: [3, 4], data: positive }],
    build: (_g, { x }) => op.log(x),
  },
  {
    name: 'sqrt',
    inputs: [{ name: 'x', shape: [3, 4], value: [3, 4], data: positive }],
    build: (_g, { x }) => op.sqrt(x),
  },
  {
    name: 'reciprocal',
    inputs: [{ name: 'x', shape: [3, 4], value: [3, 4], data: positive }],
    build: (_g, { x }) => op.reciprocal(x),
  },
  {
    name: 'pow (constant exponent)',
    inputs: [{ name: 'x', shape: [3, 4], value: [3, 4], data: positive }],
    build: (_g, { x }) => op.pow(x, 2.5),
  },
  {
    name: 'pow (tensor exponent)',
    inputs: [
      { name: 'x', shape: [3, 4], value: [3, 4], data: positive },
      { name: 'p', shape: [4], value: [4] },
    ],
    build: (_g, { x, p }) => op.pow(x, p),
  },
  {
    name: 'tanh',
    inputs: [{ name: 'x', shape: [3, 4], value: [3, 4] }],
    build: (_g, { x }) => op.tanh(x),
  },
  {
    name: 'sigmoid',
    inputs: [{ name: 'x', shape: [3, 4], value: [3, 4] }],
    build: (_g, { x }) => op.sigmoid(x),
  },
  {
    name: 'silu',
    inputs: [{ name: 'x', shape: [3, 4], value: [3, 4] }],
    build: (_g, { x }) => op.silu(x),
  },
  {
    name: 'gelu (tanh)',
    inputs: [{ name: 'x', shape: [3, 4], value: [3, 4] }],
    build: (_g, { x }) => op.gelu(x, 'tanh'),
  },
  {
    name: 'sin, cos',
    inputs: [{ name: 'x', shape: [3, 4], value: [3, 4] }],
    build: (_g, { x }) => op.add(op.sin(x), op.cos(op.mul(x, 2))),
  },
  {
    name: 'softmax',
    inputs: [{ name: 'x', shape: ['B', 5], value: [3, 5] }],
    build: (_g, { x }) => op.softmax(x, -1),
  },
  {
    name: 'softmax (axis 0)',
    inputs: [{ name: 'x', shape: [4, 3], value: [4, 3] }],
    build: (_g, { x }) => op.softmax(x, 0),
  },
  {
    name: 'logSoftmax',
    inputs: [{ name: 'x', shape: ['B', 5], value: [3, 5] }],
    build: (_g, { x }) => op.logSoftmax(x, -1),
  },
  {
    name: 'reduceSum',
    inputs: [{ name: 'x', shape: ['B', 3, 4], value: [2, 3, 4] }],
    build: (_g, { x }) => op.reduceSum(x, [0, 2]),
  },
  {
    name: 'reduceMean (symbolic count)',
    inputs: [{ name: 'x', shape: ['B', 'T', 4], value: [2, 3, 4] }],
    build: (_g, { x }) => op.reduceMean(x, [0, 1], true),
  },
  {
    name: 'reduceMax',
    inputs: [{ name: 'x', shape: [3, 5], value: [3, 5], data: spread(-3, 3) }],
    build: (_g, { x }) => op.reduceMax(x, [1]),
  },
  {
    name: 'reshape',
    inputs: [{ name: 'x', shape: ['B', 'T', 6], value: [2, 3, 6] }],
    build: (_g, { x }) => op.exp(op.reshape(x, ['B', 'T', 2, 3])),
  },
  {
    name: 'transpose',
    inputs: [{ name: 'x', shape: [2, 3, 4], value: [2, 3, 4] }],
    build: (_g, { x }) => op.mul(op.transpose(x, [2, 0, 1]), op.transpose(x, [2, 0, 1])),
  },
  {
    name: 'concat (symbolic axis)',
    inputs: [
      { name: 'a', shape: [2, 'P', 3], value: [2, 2, 3] },
      { name: 'b', shape: [2, 'T', 3], value: [2, 3, 3] },
    ],
    build: (_g, { a, b }) => op.tanh(op.concat([a, b], 1)),
  },
  {
    name: 'slice (static)',
    inputs: [{ name: 'x', shape: [3, 8], value: [3, 8] }],
    build: (_g, { x }) => op.slice(x, 1, 2, -1),
  },
  {
    name: 'slice (symbolic axis)',
    inputs: [{ name: 'x', shape: ['T', 3], value: [5, 3] }],
    build: (_g, { x }) => op.slice(x, 0, 1, -1),
  },
  {
    name: 'split',
    inputs: [{ name: 'x', shape: [3, 6], value: [3, 6] }],
    build: (_g, { x }) => {
      const [a, , c] = op.split(x, 1, [2, 1, 3]);
      return op.mul(a, op.slice(c, 1, 0, 2));
    },
  },
  {
    name: 'gather (repeated indices)',
    inputs: [
      { name: 'table', shape: [5, 3], value: [5, 3] },
      {
        name: 'ids',
        dtype: 'int64',
        shape: ['B', 'T'],
        value: [2, 4],
        data: () => [0, 2, 2, 4, 1, 2, 0, 0],
      },
    ],
    build: (_g, { table, ids }) => op.gather(table, ids),
  },
  {
    name: 'gatherElements',
    inputs: [
      { name: 'x', shape: [3, 5], value: [3, 5] },
      { name: 'i', dtype: 'int64', shape: [3, 2], value: [3, 2], data: () => [0, 4, 2, 2, 1, 3] },
    ],
    build: (_g, { x, i }) => op.gatherElements(x, i, 1),
  },
  {
    name: 'where',
    inputs: [
      {
        name: 'c',
        dtype: 'bool',
        shape: [3, 4],
        value: [3, 4],
        data: (rng, n) => Array.from({ length: n }, () => rng.int(2)),
      },
      { name: 'a', shape: [3, 4], value: [3, 4] },
      { name: 'b', shape: [4], value: [4] },
    ],
    build: (_g, { c, a, b }) => op.where(c, a, b),
  },
  {
    name: 'clip',
    inputs: [{ name: 'x', shape: [4, 5], value: [4, 5], data: spread(-2, 2) }],
    build: (_g, { x }) => op.clip(x, -0.95, 1.03),
  },
  {
    name: 'minimum, maximum',
    inputs: [
      { name: 'a', shape: [12], value: [12], data: spread(-2, 2) },
      { name: 'b', shape: [12], value: [12], data: spread(-2.05, 1.95) },
    ],
    build: (_g, { a, b }) => op.add(op.minimum(a, b), op.mul(op.maximum(a, b), 3)),
  },
  {
    name: 'expand',
    inputs: [{ name: 'x', shape: [3, 1], value: [3, 1] }],
    build: (_g, { x }) => op.expand(x, [2, 3, 4]),
  },
  {
    name: 'unsqueeze, squeeze',
    inputs: [{ name: 'x', shape: ['B', 3], value: [2, 3] }],
    build: (_g, { x }) => op.squeeze(op.exp(op.unsqueeze(x, [1])), [1]),
  },
  {
    name: 'cumSum',
    inputs: [{ name: 'x', shape: [3, 4], value: [3, 4] }],
    build: (_g, { x }) =>
      op.add(op.cumSum(x, 1), op.cumSum(x, 0, { reverse: true, exclusive: true })),
  },
  {
    name: 'abs',
    inputs: [{ name: 'x', shape: [12], value: [12], data: spread(-2, 2) }],
    build: (_g, { x }) => op.abs(x),
  },
  {
    name: 'multi-use accumulation',
    inputs: [{ name: 'x', shape: [3, 4], value: [3, 4] }],
    build: (_g, { x }) => op.add(op.mul(x, x), op.mul(op.exp(x), op.tanh(x))),
  },
  // Composites.
  {
    name: 'rmsNorm',
    inputs: [
      { name: 'x', shape: ['B', 'T', 6], value: [2, 3, 6] },
      { name: 'w', shape: [6], value: [6] },
    ],
    build: (_g, { x, w }) => nn.rmsNorm(x, w, 1e-6),
  },
  {
    name: 'layerNorm',
    inputs: [
      { name: 'x', shape: ['B', 6], value: [3, 6] },
      { name: 'w', shape: [6], value: [6] },
      { name: 'b', shape: [6], value: [6] },
    ],
    build: (_g, { x, w, b }) => nn.layerNorm(x, w, b, 1e-5),
  },
  {
    name: 'linear + LoRA',
    inputs: [
      { name: 'x', shape: ['B', 'T', 4], value: [2, 3, 4] },
      { name: 'w', shape: [5, 4], value: [5, 4] },
      { name: 'bias', shape: [5], value: [5] },
      { name: 'a', shape: [2, 4], value: [2, 4] },
      { name: 'b', shape: [5, 2], value: [5, 2] },
    ],
    build: (_g, { x, w, bias, a, b }) => nn.linear(x, w, { bias, lora: { a, b, scale: 2 } }),
  },
  {
    name: 'swiGlu',
    inputs: [
      { name: 'g', shape: [3, 4], value: [3, 4] },
      { name: 'u', shape: [3, 4], value: [3, 4] },
    ],
    build: (_g, { g, u }) => nn.swiGlu(g, u),
  },
  {
    name: 'rope',
    inputs: [
      { name: 'x', shape: ['B', 2, 'T', 4], value: [2, 2, 3, 4] },
      {
        name: 'pos',
        dtype: 'int64',
        shape: ['B', 'T'],
        value: [2, 3],
        data: () => [0, 1, 2, 5, 6, 7],
      },
    ],
    build: (_g, { x, pos }) =>
      nn.applyRope(x, nn.ropeTables(pos, 4, { theta: 100, dtype: 'float64' })),
  },
  {
    name: 'attention (causal, GQA, offset, bool mask)',
    inputs: [
      { name: 'q', shape: ['B', 4, 'T', 2], value: [2, 4, 2, 2] },
      { name: 'k', shape: ['B', 2, 'S', 2], value: [2, 2, 3, 2] },
      { name: 'v', shape: ['B', 2, 'S', 2], value: [2, 2, 3, 2] },
      {
        name: 'm',
        dtype: 'bool',
        shape: ['B', 1, 1, 'S'],
        value: [2, 1, 1, 3],
        data: () => [1, 1, 1, 0, 1, 1],
      },
      { name: 'offset', dtype: 'int64', shape: [], value: [], data: () => [1] },
    ],
    build: (_g, { q, k, v, m, offset }) =>
      nn.attention(q, k, v, { causal: true, queryOffset: offset, mask: m }),
  },
  {
    name: 'attention (additive mask)',
    inputs: [
      { name: 'q', shape: [1, 2, 'T', 3], value: [1, 2, 3, 3] },
      { name: 'k', shape: [1, 2, 'T', 3], value: [1, 2, 3, 3] },
      { name: 'v', shape: [1, 2, 'T', 3], value: [1, 2, 3, 3] },
      { name: 'm', shape: [1, 1, 'T', 'T'], value: [1, 1, 3, 3], wrt: false },
    ],
    build: (_g, { q, k, v, m }) => nn.attention(q, k, v, { mask: m }),
  },
  {
    name: 'crossEntropy (ignore-index)',
    inputs: [
      { name: 'logits', shape: ['B', 'T', 5], value: [2, 3, 5] },
      {
        name: 't',
        dtype: 'int64',
        shape: ['B', 'T'],
        value: [2, 3],
        data: () => [1, -100, 4, 0, 4, -100],
      },
    ],
    build: (_g, { logits, t }) => nn.crossEntropy(logits, t),
  },
  {
    name: 'tokenLogprobs',
    inputs: [
      { name: 'logits', shape: ['N', 6], value: [4, 6] },
      { name: 't', dtype: 'int64', shape: ['N'], value: [4], data: integersBelow(6) },
    ],
    build: (_g, { logits, t }) => nn.tokenLogprobs(logits, t),
  },
  {
    name: 'entropy',
    inputs: [{ name: 'logits', shape: ['N', 6], value: [3, 6] }],
    build: (_g, { logits }) => nn.entropy(logits),
  },
  {
    name: 'maskedMean',
    inputs: [
      { name: 'x', shape: [3, 4], value: [3, 4] },
      {
        name: 'm',
        dtype: 'bool',
        shape: [3, 4],
        value: [3, 4],
        data: (rng, n) => Array.from({ length: n }, (_, i) => (i === 0 ? 1 : rng.int(2))),
      },
    ],
    build: (_g, { x, m }) => nn.maskedMean(x, m),
  },
];

export const gradCheckResults: CheckResult[] = [];

describe('engine gradients vs central finite differences (float64)', function () {
  this.timeout(60000);
  after(() => {
    if (process.env.ENGINE_GRADCHECK_TABLE) {
      for (const r of gradCheckResults) {
        process.stdout.write(
          `${r.name.padEnd(46)} ${r.maxRelativeError.toExponential(2)}  (${r.elements} elements)\n`,
        );
      }
    }
  });
  for (const c of cases) {
    it(c.name, async () => {
      const result = await gradCheck(c);
      gradCheckResults.push(result);
      assert.ok(
        result.maxRelativeError <= TOLERANCE,
        `${c.name}: max relative error ${result.maxRelativeError} > ${TOLERANCE}`,
      );
    });
  }

  it('cast (float32 -> float64) passes the gradient back in float32', async () => {
    // x^2 makes central differences exact, so float32 inputs give an exact numeric gradient.
    const result = await gradCheck({
      name: 'cast',
      inputs: [{ name: 'x', dtype: 'float32', shape: [6], value: [6] }],
      build: (_g, { x }) => {
        const y = op.cast(x, 'float64');
        return op.mul(y, y);
      },
      step: 1 / 128,
    });
    gradCheckResults.push(result);
    assert.ok(result.maxRelativeError <= 1e-6, `cast: ${result.maxRelativeError}`);
  });

  it('exact GELU (erf) in float32, which has no float64 kernel', async () => {
    const result = await gradCheck({
      name: 'gelu (erf, float32)',
      inputs: [{ name: 'x', dtype: 'float32', shape: [8], value: [8] }],
      build: (_g, { x }) => op.gelu(x, 'none'),
      step: 1e-2,
    });
    gradCheckResults.push(result);
    // Limitation: float32 central differences are only good to ~1e-3 here.
    assert.ok(result.maxRelativeError <= 2e-3, `gelu erf: ${result.maxRelativeError}`);
  });
});
