/** Shape and indexing ops: Reshape, Transpose, (Un)Squeeze, Concat, Slice, Split, Gather, Expand. */
import {
  broadcastShapes,
  canonicalDim,
  Dim,
  dimsEqual,
  divDims,
  formatShape,
  shapeProduct,
  Shape,
} from '../dims';
import { Graph, Tensor } from '../graph';
import {
  attrInt,
  attrInts,
  attrString,
  dimValue,
  fail,
  normAxis,
  requireInteger,
  runtimeDim,
  runtimeShape,
  shapeValue,
  zerosLike,
} from './common';
import { sumToShape } from './reduce';

function int64Op(g: Graph, op: string, a: Tensor, b: Tensor): Tensor {
  return g.node(op, [a, b], [{ dtype: 'int64', shape: a.shape }])[0];
}

/** Reshape to `shape` (dims may be symbolic; at most one -1, inferred). */
export function reshape(x: Tensor, shape: readonly (Dim | -1)[]): Tensor {
  const g = x.graph;
  const inferIndex = shape.indexOf(-1);
  if (shape.lastIndexOf(-1) !== inferIndex)
    fail('Reshape', `more than one -1 in ${formatShape(shape)}`, [x]);
  const known = shape.filter((d) => d !== -1).map(canonicalDim);
  const total = shapeProduct(x.shape);
  const out: Dim[] = shape.map((d) => (d === -1 ? -1 : canonicalDim(d)));
  if (inferIndex >= 0) {
    const inferred = divDims(total, shapeProduct(known));
    if (inferred === null) {
      fail(
        'Reshape',
        `cannot infer -1 in ${formatShape(shape)}: ${total} is not divisible by ${shapeProduct(known)}`,
        [x],
      );
    }
    out[inferIndex] = inferred;
  } else if (!dimsEqual(shapeProduct(out), total)) {
    fail('Reshape', `cannot reshape ${total} elements to ${formatShape(shape)}`, [x]);
  }
  // Runtime target: literal numbers, 0 = "copy input dim", -1 = "infer", else read the symbol.
  let inferUsed = false;
  const parts: (number | Tensor)[] = out.map((d, i) => {
    if (typeof d === 'number') return d;
    if (i < x.rank && dimsEqual(x.shape[i], d)) return 0;
    if (!inferUsed) {
      inferUsed = true;
      return -1;
    }
    return dimValue(g, d, [x]);
  });
  const target = parts.every((p) => typeof p === 'number')
    ? g.int64s(parts as number[])
    : g.node(
        'Concat',
        parts.map((p) => (typeof p === 'number' ? g.int64s([p]) : p)),
        [{ dtype: 'int64', shape: [out.length] }],
        { axis: attrInt(0) },
      )[0];
  return g.node(
    'Reshape',
    [x, target],
    [{ dtype: x.dtype, shape: out }],
    {},
    {
      nonDifferentiable: [1],
      backward: (node, [dy]) => [reshapeLike(dy!, node.inputs[0]!), null],
    },
  )[0];
}

/** Reshapes `x` to the (runtime) shape of `like`. */
export function reshapeLike(x: Tensor, like: Tensor): Tensor {
  return x.graph.node(
    'Reshape',
    [x, runtimeShape(like)],
    [{ dtype: x.dtype, shape: like.shape }],
    {},
    {
      nonDifferentiable: [1],
      backward: (node, [dy]) => [reshapeLike(dy!, node.inputs[0]!), null],
    },
  )[0];
}

export function transpose(x: Tensor, perm: readonly number[]): Tensor {
  const sorted = [...perm].sort((a, b) => a - b);
  if (perm.length !== x.rank || sorted.some((p, i) => p !== i)) {
    fail('Transpose', `perm [${perm.join(', ')}] is not a permutation of rank ${x.rank}`, [x]);
  }
  const inverse = perm.map((_, i) => perm.indexOf(i));
  return x.graph.node(
    'Transpose',
    [x],
    [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]) }],
    { perm: attrInts(perm) },
    {
      backward: (_node, [dy]) => [transpose(dy!, inverse)],
    },
  )[0];
}

/** Swaps the last two axes. */
export function transposeLast2(x: Tensor): Tensor {
  const perm = x.shape.map((_, i) => i);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return transpose(x, perm);
}

export function unsqueeze(x: Tensor, axes: readonly number[]): Tensor {
  const rank = x.rank + axes.length;
  const norm = axes.map((a) => normAxis('Unsqueeze', a, rank, [x])).sort((a, b) => a - b);
  const out: Dim[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) out.push(norm.includes(i) ? 1 : x.shape[j++]);
  const g = x.graph;
  return g.node(
    'Unsqueeze',
    [x, g.int64s(norm)],
    [{ dtype: x.dtype, shape: out }],
    {},
    {
      nonDifferentiable: [1],
      backward: (node, [dy]) => [reshapeLike(dy!, node.inputs[0]!), null],
    },
  )[0];
}

export function squeeze(x: Tensor, axes: readonly number[]): Tensor {
  const norm = axes.map((a) => normAxis('Squeeze', a, x.rank, [x]));
  for (const a of norm)
    if (x.shape[a] !== 1) fail('Squeeze', `axis ${a} has size ${x.shape[a]}, not 1`, [x]);
  const g = x.graph;
  return g.node(
    'Squeeze',
    [x, g.int64s(norm)],
    [{ dtype: x.dtype, shape: x.shape.filter((_, i) => !norm.includes(i)) }],
    {},
    {
      nonDifferentiable: [1],
      backward: (node, [dy]) => [reshapeLike(dy!, node.inputs[0]!), null],
    },
  )[0];
}

let freshDimCounter = 0;
function freshDim(prefix: string): string {
  return `${prefix}${freshDimCounter++}`;
}

/**
 * Concatenates along `axis`. When the axis has symbolic sizes the result's size is a new symbol,
 * or `resultDim` when given (e.g. "S" for past + new keys in a KV cache).
 */
export function concat(tensors: readonly Tensor[], axis: number, resultDim?: Dim): Tensor {
  if (tensors.length === 0) throw new Error('Concat: needs at least one tensor');
  const first = tensors[0];
  const a = normAxis('Concat', axis, first.rank, tensors);
  for (const t of tensors) {
    if (t.dtype !== first.dtype) fail('Concat', 'operand dtypes differ', tensors);
    if (t.rank !== first.rank) fail('Concat', 'operand ranks differ', tensors);
    t.shape.forEach((d, i) => {
      if (i !== a && !dimsEqual(d, first.shape[i]))
        fail('Concat', `dim ${i} differs (${d} vs ${first.shape[i]})`, tensors);
    });
  }
  const sizes = tensors.map((t) => t.shape[a]);
  const size: Dim =
    resultDim ??
    (sizes.every((s) => typeof s === 'number')
      ? (sizes as number[]).reduce((x, y) => x + y, 0)
      : freshDim('cat'));
  const shape = first.shape.map((d, i) => (i === a ? size : d));
  const g = first.graph;
  return g.node(
    'Concat',
    tensors,
    [{ dtype: first.dtype, shape }],
    { axis: attrInt(a) },
    {
      backward: (node, [dy]) => {
        const ins = node.inputs as Tensor[];
        const split = concatSizes(g, ins, a);
        return g.node(
          'Split',
          [dy!, split],
          ins.map((t) => ({ dtype: dy!.dtype, shape: t.shape })),
          { axis: attrInt(a) },
        );
      },
    },
  )[0];
}

function concatSizes(g: Graph, ins: Tensor[], axis: number): Tensor {
  if (ins.every((t) => typeof t.shape[axis] === 'number'))
    return g.int64s(ins.map((t) => t.shape[axis] as number));
  const parts = ins.map((t) => runtimeDim(t, axis));
  return g.node('Concat', parts, [{ dtype: 'int64', shape: [ins.length] }], {
    axis: attrInt(0),
  })[0];
}

const INT64_MAX = 9223372036854775807n;

/**
 * x[start:end] along one axis (step 1; negative indices count from the end; `end` omitted means
 * to the end).
 */
export function slice(x: Tensor, axis: number, start: number, end?: number): Tensor {
  const a = normAxis('Slice', axis, x.rank, [x]);
  const g = x.graph;
  const dim = x.shape[a];
  let outDim: Dim;
  if (typeof dim === 'number') {
    const s = Math.min(Math.max(start < 0 ? start + dim : start, 0), dim);
    const e = end === undefined ? dim : Math.min(Math.max(end < 0 ? end + dim : end, 0), dim);
    outDim = Math.max(e - s, 0);
  } else {
    outDim = start === 0 && end === undefined ? dim : freshDim('slice');
  }
  const endValue = end === undefined ? INT64_MAX : BigInt(end);
  return g.node(
    'Slice',
    [x, g.int64s([start]), g.int64s([endValue]), g.int64s([a])],
    [{ dtype: x.dtype, shape: x.shape.map((d, i) => (i === a ? outDim : d)) }],
    {},
    {
      nonDifferentiable: [1, 2, 3],
      backward: (node, [dy]) => {
        const xin = node.inputs[0]!;
        // Pad dy back: [start, dim - end] zeros around it on the sliced axis.
        let before: Tensor;
        let after: Tensor;
        if (typeof dim === 'number') {
          const s = Math.min(Math.max(start < 0 ? start + dim : start, 0), dim);
          before = g.int64s([s]);
          after = g.int64s([dim - s - (outDim as number)]);
        } else {
          const n = runtimeDim(xin, a);
          const clampIndex = (v: Tensor) =>
            int64Op(g, 'Max', int64Op(g, 'Min', v, n), g.int64s([0]));
          const s = clampIndex(
            start < 0 ? int64Op(g, 'Add', n, g.int64s([start])) : g.int64s([start]),
          );
          const e =
            end === undefined
              ? n
              : clampIndex(end < 0 ? int64Op(g, 'Add', n, g.int64s([end])) : g.int64s([end]));
          before = s;
          after = int64Op(g, 'Sub', n, int64Op(g, 'Max', e, s));
        }
        const pads = g.node('Concat', [before, after], [{ dtype: 'int64', shape: [2] }], {
          axis: attrInt(0),
        })[0];
        const dx = g.node(
          'Pad',
          [dy!, pads, null, g.int64s([a])],
          [{ dtype: dy!.dtype, shape: xin.shape }],
          {
            mode: attrString('constant'),
          },
        )[0];
        return [dx, null, null, null];
      },
    },
  )[0];
}

/** Splits along `axis` into pieces of the given static sizes. */
export function split(x: Tensor, axis: number, sizes: readonly number[]): Tensor[] {
  const a = normAxis('Split', axis, x.rank, [x]);
  const total = sizes.reduce((p, q) => p + q, 0);
  if (typeof x.shape[a] === 'number' && x.shape[a] !== total) {
    fail('Split', `sizes [${sizes.join(', ')}] sum to ${total}, not ${x.shape[a]}`, [x]);
  }
  const g = x.graph;
  return g.node(
    'Split',
    [x, g.int64s(sizes)],
    sizes.map((s) => ({ dtype: x.dtype, shape: x.shape.map((d, i) => (i === a ? s : d)) })),
    { axis: attrInt(a) },
    {
      nonDifferentiable: [1],
      backward: (node, dys) => {
        const parts = dys.map((dy, i) => dy ?? zerosLike(node.outputs[i]));
        return [
          g.node('Concat', parts, [{ dtype: x.dtype, shape: x.shape }], { axis: attrInt(a) })[0],
          null,
        ];
      },
    },
  );
}

/**
 * Gathers slices of `data` along `axis` by integer `indices` (an embedding lookup when axis is 0).
 * The gradient w.r.t. data (axis 0 only) scatter-adds, so repeated indices accumulate.
 */
export function gather(data: Tensor, indices: Tensor, axis = 0): Tensor {
  const a = normAxis('Gather', axis, data.rank, [data, indices]);
  requireInteger('Gather', indices, [data, indices]);
  const shape = [...data.shape.slice(0, a), ...indices.shape, ...data.shape.slice(a + 1)];
  const g = data.graph;
  return g.node(
    'Gather',
    [data, indices],
    [{ dtype: data.dtype, shape }],
    { axis: attrInt(a) },
    {
      nonDifferentiable: [1],
      backward: (node, [dy]) => {
        const [d, idx] = node.inputs as Tensor[];
        if (a !== 0) {
          // Limitation: Gather is differentiated only along axis 0 (embedding tables).
          fail('Gather backward', `gradient along axis ${a} is not supported (only axis 0)`, [
            d,
            idx,
          ]);
        }
        const idx64 =
          idx.dtype === 'int64'
            ? idx
            : g.node('Cast', [idx], [{ dtype: 'int64', shape: idx.shape }], { to: attrInt(7) })[0];
        const idxN = unsqueeze(idx64, [-1]);
        const dd = g.node(
          'ScatterND',
          [zerosLike(d), idxN, dy!],
          [{ dtype: d.dtype, shape: d.shape }],
          {
            reduction: attrString('add'),
          },
        )[0];
        return [dd, null];
      },
    },
  )[0];
}

/** out[i][j] = data[i][indices[i][j]] along `axis` (torch.gather); the gradient scatter-adds. */
export function gatherElements(data: Tensor, indices: Tensor, axis: number): Tensor {
  const a = normAxis('GatherElements', axis, data.rank, [data, indices]);
  requireInteger('GatherElements', indices, [data, indices]);
  if (indices.rank !== data.rank)
    fail('GatherElements', 'indices must have the rank of data', [data, indices]);
  const g = data.graph;
  return g.node(
    'GatherElements',
    [data, indices],
    [{ dtype: data.dtype, shape: indices.shape }],
    { axis: attrInt(a) },
    {
      nonDifferentiable: [1],
      backward: (node, [dy]) => {
        const [d, idx] = node.inputs as Tensor[];
        const dd = g.node(
          'ScatterElements',
          [zerosLike(d), idx, dy!],
          [{ dtype: d.dtype, shape: d.shape }],
          {
            axis: attrInt(a),
            reduction: attrString('add'),
          },
        )[0];
        return [dd, null];
      },
    },
  )[0];
}

/** Broadcasts x to `shape` (numpy rules). */
export function expand(x: Tensor, shape: Shape, from: readonly Tensor[] = []): Tensor {
  const out = broadcastShapes(x.shape, shape);
  if (!out) fail('Expand', `cannot broadcast to ${formatShape(shape)}`, [x]);
  const g = x.graph;
  return g.node(
    'Expand',
    [x, shapeValue(g, shape, [x, ...from])],
    [{ dtype: x.dtype, shape: out }],
    {},
    {
      nonDifferentiable: [1],
      backward: (node, [dy]) => [sumToShape(dy!, node.inputs[0]!), null],
    },
  )[0];
}

export function identity(x: Tensor): Tensor {
  return x.graph.node(
    'Identity',
    [x],
    [{ dtype: x.dtype, shape: x.shape }],
    {},
    { backward: (_n, [dy]) => [dy] },
  )[0];
}

/**
 * Declares that x has `shape` (same rank; e.g. renames a dim "cat3" to "S"). No data moves; the
 * runner checks named input dims, so use this only where the sizes are equal by construction.
 */
export function assumeShape(x: Tensor, shape: Shape): Tensor {
  if (shape.length !== x.rank) fail('assumeShape', `rank ${shape.length} != ${x.rank}`, [x]);
  shape.forEach((d, i) => {
    const cur = x.shape[i];
    if (typeof d === 'number' && typeof cur === 'number' && d !== cur) {
      fail('assumeShape', `dim ${i} is ${cur}, not ${d}`, [x]);
    }
  });
  return x.graph.node(
    'Identity',
    [x],
    [{ dtype: x.dtype, shape }],
    {},
    {
      backward: (node, [dy]) => [assumeShape(dy!, node.inputs[0]!.shape)],
    },
  )[0];
}

/** int64 range [start, start + length) where length may be read from a tensor dim. */
export function arange(
  g: Graph,
  start: Tensor | number,
  length: Dim,
  from: readonly Tensor[] = [],
): Tensor {
  const s = typeof start === 'number' ? g.scalar(start, 'int64') : start;
  const n = g.node('Squeeze', [dimValue(g, length, from)], [{ dtype: 'int64', shape: [] }])[0];
  const limit = g.node('Add', [s, n], [{ dtype: 'int64', shape: [] }])[0];
  return g.node(
    'Range',
    [s, limit, g.scalar(1, 'int64')],
    [{ dtype: 'int64', shape: [length] }],
  )[0];
}

/**
 * Returns `y` unchanged, with a hand-written gradient: `rule(dy)` gives the gradients of `wrt`
 * directly, so autodiff skips the nodes between `wrt` and `y` (fused backward formulas).
 */
export function customGradient(
  y: Tensor,
  wrt: readonly Tensor[],
  rule: (dy: Tensor) => (Tensor | null)[],
): Tensor {
  return y.graph.node(
    'Identity',
    [y],
    [{ dtype: y.dtype, shape: y.shape }],
    {},
    {
      gradientInputs: [...wrt],
      backward: (_node, [dy]) => rule(dy!),
    },
  )[0];
}
