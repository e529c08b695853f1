/** Reductions and normalizing maps (ReduceSum/Mean/Max, Softmax, LogSoftmax, CumSum, ArgMax). */
import { Dim, dimsEqual, formatShape, shapeProduct } from '../dims';
import { Tensor } from '../graph';
import { attrInt, dimValue, fail, normAxis, requireFloat, runtimeShape } from './common';
import { cast, div, equal, exp, mul, sub, where } from './elementwise';
import { squeeze, unsqueeze } from './shape';

function reducedShape(shape: readonly Dim[], axes: readonly number[], keepDims: boolean): Dim[] {
  const out: Dim[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepDims) out.push(1);
  });
  return out;
}

function normAxes(op: string, x: Tensor, axes?: readonly number[]): number[] {
  const list = axes ?? x.shape.map((_, i) => i);
  const norm = list.map((a) => normAxis(op, a, x.rank, [x]));
  if (new Set(norm).size !== norm.length) fail(op, `repeated axis in [${list.join(', ')}]`, [x]);
  return norm.sort((a, b) => a - b);
}

/** Broadcasts a reduced gradient back over the reduced axes of x. */
function expandBack(dy: Tensor, x: Tensor, axes: number[], keepDims: boolean): Tensor {
  const kept = keepDims ? dy : unsqueeze(dy, axes);
  return x.graph.node('Expand', [kept, runtimeShape(x)], [{ dtype: dy.dtype, shape: x.shape }])[0];
}

/** Sum over `axes` (all axes when omitted). */
export function reduceSum(x: Tensor, axes?: readonly number[], keepDims = false): Tensor {
  const ax = normAxes('ReduceSum', x, axes);
  const g = x.graph;
  return g.node(
    'ReduceSum',
    [x, g.int64s(ax)],
    [{ dtype: x.dtype, shape: reducedShape(x.shape, ax, keepDims) }],
    { keepdims: attrInt(keepDims ? 1 : 0) },
    {
      nonDifferentiable: [1],
      backward: (node, [dy]) => [expandBack(dy!, node.inputs[0]!, ax, keepDims), null],
    },
  )[0];
}

/** Number of elements reduced over `axes`, as a scalar of x's dtype. */
function countOf(x: Tensor, axes: number[]): Tensor {
  const g = x.graph;
  const count = shapeProduct(axes.map((a) => x.shape[a]));
  if (typeof count === 'number') return g.scalar(count, x.dtype);
  const value = dimValue(g, count, [x]);
  return cast(g.node('Squeeze', [value], [{ dtype: 'int64', shape: [] }])[0], x.dtype);
}

export function reduceMean(x: Tensor, axes?: readonly number[], keepDims = false): Tensor {
  requireFloat('ReduceMean', [x]);
  const ax = normAxes('ReduceMean', x, axes);
  const g = x.graph;
  return g.node(
    'ReduceMean',
    [x, g.int64s(ax)],
    [{ dtype: x.dtype, shape: reducedShape(x.shape, ax, keepDims) }],
    { keepdims: attrInt(keepDims ? 1 : 0) },
    {
      nonDifferentiable: [1],
      backward: (node, [dy]) => {
        const xin = node.inputs[0]!;
        return [div(expandBack(dy!, xin, ax, keepDims), countOf(xin, ax)), null];
      },
    },
  )[0];
}

/** Max over `axes`; the gradient is split evenly between tied maxima. */
export function reduceMax(x: Tensor, axes?: readonly number[], keepDims = false): Tensor {
  const ax = normAxes('ReduceMax', x, axes);
  const g = x.graph;
  return g.node(
    'ReduceMax',
    [x, g.int64s(ax)],
    [{ dtype: x.dtype, shape: reducedShape(x.shape, ax, keepDims) }],
    { keepdims: attrInt(keepDims ? 1 : 0) },
    {
      nonDifferentiable: [1],
      backward: (node, [dy]) => {
        const xin = node.inputs[0]!;
        const y = node.outputs[0];
        const isMax = equal(xin, expandBack(y, xin, ax, keepDims));
        const ties = reduceSum(cast(isMax, xin.dtype), ax, true);
        const share = div(expandBack(dy!, xin, ax, keepDims), ties);
        return [where(isMax, share, 0), null];
      },
    },
  )[0];
}

export function softmax(x: Tensor, axis = -1): Tensor {
  requireFloat('Softmax', [x]);
  const a = normAxis('Softmax', axis, x.rank, [x]);
  return x.graph.node(
    'Softmax',
    [x],
    [{ dtype: x.dtype, shape: x.shape }],
    { axis: attrInt(a) },
    {
      backward: (node, [dy]) => {
        const y = node.outputs[0];
        // dx = y * (dy - sum(dy * y))
        return [mul(y, sub(dy!, reduceSum(mul(dy!, y), [a], true)))];
      },
    },
  )[0];
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  requireFloat('LogSoftmax', [x]);
  const a = normAxis('LogSoftmax', axis, x.rank, [x]);
  return x.graph.node(
    'LogSoftmax',
    [x],
    [{ dtype: x.dtype, shape: x.shape }],
    { axis: attrInt(a) },
    {
      backward: (node, [dy]) => {
        const y = node.outputs[0];
        // dx = dy - softmax(x) * sum(dy)
        return [sub(dy!, mul(exp(y), reduceSum(dy!, [a], true)))];
      },
    },
  )[0];
}

/** Cumulative sum along `axis`; the gradient is the reverse cumulative sum. */
export function cumSum(
  x: Tensor,
  axis: number,
  options: { exclusive?: boolean; reverse?: boolean } = {},
): Tensor {
  const a = normAxis('CumSum', axis, x.rank, [x]);
  const exclusive = options.exclusive ?? false;
  const reverse = options.reverse ?? false;
  const g = x.graph;
  return g.node(
    'CumSum',
    [x, g.scalar(a, 'int64')],
    [{ dtype: x.dtype, shape: x.shape }],
    { exclusive: attrInt(exclusive ? 1 : 0), reverse: attrInt(reverse ? 1 : 0) },
    {
      nonDifferentiable: [1],
      backward: (_node, [dy]) => [cumSum(dy!, a, { exclusive, reverse: !reverse }), null],
    },
  )[0];
}

/** Index of the maximum along `axis` (int64, no gradient). */
export function argMax(x: Tensor, axis = -1, keepDims = false): Tensor {
  const a = normAxis('ArgMax', axis, x.rank, [x]);
  return x.graph.node(
    'ArgMax',
    [x],
    [{ dtype: 'int64', shape: reducedShape(x.shape, [a], keepDims) }],
    {
      axis: attrInt(a),
      keepdims: attrInt(keepDims ? 1 : 0),
    },
  )[0];
}

/**
 * Sums a broadcast gradient `dy` back to the shape of operand `x` (numpy broadcasting: leading
 * axes and axes where x has size 1).
 */
export function sumToShape(dy: Tensor, x: Tensor): Tensor {
  const lead = dy.rank - x.rank;
  if (lead < 0) fail('sumToShape', `gradient rank ${dy.rank} < operand rank ${x.rank}`, [dy, x]);
  const axes: number[] = [];
  for (let i = 0; i < lead; i++) axes.push(i);
  x.shape.forEach((d, i) => {
    if (d === 1 && dy.shape[i + lead] !== 1) axes.push(i + lead);
  });
  if (axes.length === 0) return dy;
  let out = reduceSum(dy, axes, true);
  if (lead > 0) out = squeeze(out, axes.slice(0, lead));
  if (!out.shape.every((d, i) => dimsEqual(d, x.shape[i]) || d === 1)) {
    fail('sumToShape', `cannot reduce ${formatShape(dy.shape)} to ${formatShape(x.shape)}`, [
      dy,
      x,
    ]);
  }
  return out;
}
