/**
 * Elementwise ops with numpy broadcasting, each with its backward rule. Gradients of broadcast
 * operands are summed back to the operand's shape (sumToShape).
 */
import { broadcastShapes, formatShape } from '../dims';
import { DType, isFloat, ONNX_DTYPE } from '../dtype';
import { BackwardRule, Tensor } from '../graph';
import { attrInt, fail, lift, Operand, requireFloat, requireSameDType } from './common';
import { sumToShape } from './reduce';

function broadcastOp(op: string, a: Tensor, b: Tensor): (string | number)[] {
  const shape = broadcastShapes(a.shape, b.shape);
  if (!shape)
    fail(op, `shapes ${formatShape(a.shape)} and ${formatShape(b.shape)} do not broadcast`, [a, b]);
  return shape;
}

function binary(
  op: string,
  aIn: Operand,
  bIn: Operand,
  backward: BackwardRule | undefined,
  outDType?: DType,
): Tensor {
  const [a, b] = lift(op, [aIn, bIn]);
  const dtype = requireSameDType(op, [a, b]);
  const shape = broadcastOp(op, a, b);
  return a.graph.node(op, [a, b], [{ dtype: outDType ?? dtype, shape }], {}, { backward })[0];
}

function unary(op: string, x: Tensor, backward?: BackwardRule, attrs = {}): Tensor {
  requireFloat(op, [x]);
  return x.graph.node(op, [x], [{ dtype: x.dtype, shape: x.shape }], attrs, { backward })[0];
}

export function add(a: Operand, b: Operand): Tensor {
  return binary('Add', a, b, (node, [dy]) => {
    const [x, y] = node.inputs as Tensor[];
    return [sumToShape(dy!, x), sumToShape(dy!, y)];
  });
}

export function sub(a: Operand, b: Operand): Tensor {
  return binary('Sub', a, b, (node, [dy]) => {
    const [x, y] = node.inputs as Tensor[];
    return [sumToShape(dy!, x), sumToShape(neg(dy!), y)];
  });
}

export function mul(a: Operand, b: Operand): Tensor {
  return binary('Mul', a, b, (node, [dy]) => {
    const [x, y] = node.inputs as Tensor[];
    return [sumToShape(mul(dy!, y), x), sumToShape(mul(dy!, x), y)];
  });
}

export function div(a: Operand, b: Operand): Tensor {
  return binary('Div', a, b, (node, [dy]) => {
    const [x, y] = node.inputs as Tensor[];
    const out = node.outputs[0];
    const dx = div(dy!, y);
    // d(x/y)/dy = -x/y^2 = -(x/y)/y
    return [sumToShape(dx, x), sumToShape(neg(mul(dx, out)), y)];
  });
}

export function neg(x: Tensor): Tensor {
  return x.graph.node(
    'Neg',
    [x],
    [{ dtype: x.dtype, shape: x.shape }],
    {},
    { backward: (_n, [dy]) => [neg(dy!)] },
  )[0];
}

export function exp(x: Tensor): Tensor {
  return unary('Exp', x, (node, [dy]) => [mul(dy!, node.outputs[0])]);
}

export function log(x: Tensor): Tensor {
  return unary('Log', x, (node, [dy]) => [div(dy!, node.inputs[0]!)]);
}

export function sqrt(x: Tensor): Tensor {
  // d sqrt(x) = 0.5 / sqrt(x)
  return unary('Sqrt', x, (node, [dy]) => [div(mul(dy!, 0.5), node.outputs[0])]);
}

export function reciprocal(x: Tensor): Tensor {
  // d (1/x) = -1/x^2 = -y^2
  return unary('Reciprocal', x, (node, [dy]) => {
    const y = node.outputs[0];
    return [neg(mul(dy!, mul(y, y)))];
  });
}

export function tanh(x: Tensor): Tensor {
  return unary('Tanh', x, (node, [dy]) => {
    const y = node.outputs[0];
    return [mul(dy!, sub(1, mul(y, y)))];
  });
}

export function sigmoid(x: Tensor): Tensor {
  return unary('Sigmoid', x, (node, [dy]) => {
    const y = node.outputs[0];
    return [mul(dy!, mul(y, sub(1, y)))];
  });
}

export function sin(x: Tensor): Tensor {
  return unary('Sin', x, (node, [dy]) => [mul(dy!, cos(node.inputs[0]!))]);
}

export function cos(x: Tensor): Tensor {
  return unary('Cos', x, (node, [dy]) => [neg(mul(dy!, sin(node.inputs[0]!)))]);
}

export function abs(x: Tensor): Tensor {
  return unary('Abs', x, (node, [dy]) => [mul(dy!, sign(node.inputs[0]!))]);
}

export function sign(x: Tensor): Tensor {
  return x.graph.node('Sign', [x], [{ dtype: x.dtype, shape: x.shape }])[0];
}

/** Error function. Limitation: the CPU runtime has no float64 Erf kernel. */
export function erf(x: Tensor): Tensor {
  return unary('Erf', x, (node, [dy]) => {
    const xin = node.inputs[0]!;
    // d erf(x) = 2/sqrt(pi) * exp(-x^2)
    return [mul(dy!, mul(exp(neg(mul(xin, xin))), 2 / Math.sqrt(Math.PI)))];
  });
}

/** x^p; a number exponent becomes a constant (no gradient for it). */
export function pow(x: Tensor, p: Operand): Tensor {
  const [base, exponent] = lift('Pow', [x, p]);
  requireFloat('Pow', [base, exponent]);
  return binary('Pow', base, exponent, (node, [dy]) => {
    const [b, e] = node.inputs as Tensor[];
    const y = node.outputs[0];
    // d b^e / db = e * b^(e-1); d b^e / de = b^e * ln b
    const db = sumToShape(mul(dy!, mul(e, pow(b, sub(e, 1)))), b);
    const de = e.kind === 'constant' ? null : sumToShape(mul(dy!, mul(y, log(b))), e);
    return [db, de];
  });
}

/** SiLU (swish): x * sigmoid(x), with the fused derivative s * (1 + x * (1 - s)). */
export function silu(x: Tensor): Tensor {
  requireFloat('Silu', [x]);
  const s = sigmoid(x);
  const g = x.graph;
  return g.node(
    'Mul',
    [x, s],
    [{ dtype: x.dtype, shape: x.shape }],
    {},
    {
      backward: (node, [dy]) => {
        const [xin, sig] = node.inputs as Tensor[];
        return [mul(dy!, mul(sig, add(1, mul(xin, sub(1, sig))))), null];
      },
      nonDifferentiable: [1],
    },
  )[0];
}

/**
 * GELU. 'tanh' is the approximation 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))) (float64-capable);
 * 'none' is the exact 0.5x(1 + erf(x/sqrt 2)) (no float64 kernel for Erf on CPU).
 */
export function gelu(x: Tensor, approximate: 'tanh' | 'none' = 'tanh'): Tensor {
  requireFloat('Gelu', [x]);
  if (approximate === 'none') {
    return mul(mul(x, 0.5), add(1, erf(mul(x, Math.SQRT1_2))));
  }
  const inner = mul(add(x, mul(pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
  return mul(mul(x, 0.5), add(1, tanh(inner)));
}

/** where(cond, a, b); cond is bool and gets no gradient. */
export function where(cond: Tensor, aIn: Operand, bIn: Operand): Tensor {
  const [a, b] = lift('Where', [aIn, bIn]);
  if (cond.dtype !== 'bool')
    fail('Where', `condition must be bool, got ${cond.dtype}`, [cond, a, b]);
  const dtype = requireSameDType('Where', [a, b]);
  const ab = broadcastOp('Where', a, b);
  const shape = broadcastShapes(cond.shape, ab);
  if (!shape)
    fail('Where', `condition shape ${formatShape(cond.shape)} does not broadcast`, [cond, a, b]);
  return cond.graph.node(
    'Where',
    [cond, a, b],
    [{ dtype, shape }],
    {},
    {
      nonDifferentiable: [0],
      backward: (node, [dy]) => {
        const [c, x, y] = node.inputs as Tensor[];
        const zero = c.graph.scalar(0, dy!.dtype);
        return [null, sumToShape(where(c, dy!, zero), x), sumToShape(where(c, zero, dy!), y)];
      },
    },
  )[0];
}

/** Clamps x to [min, max] (either may be omitted); gradient passes where min <= x <= max. */
export function clip(x: Tensor, min?: number, max?: number): Tensor {
  requireFloat('Clip', [x]);
  const g = x.graph;
  const lo = min === undefined ? null : g.scalar(min, x.dtype);
  const hi = max === undefined ? null : g.scalar(max, x.dtype);
  return g.node(
    'Clip',
    [x, lo, hi],
    [{ dtype: x.dtype, shape: x.shape }],
    {},
    {
      nonDifferentiable: [1, 2],
      backward: (node, [dy]) => {
        const xin = node.inputs[0]!;
        let inside: Tensor | null = null;
        if (lo) inside = greaterOrEqual(xin, lo);
        if (hi) inside = inside ? and(inside, lessOrEqual(xin, hi)) : lessOrEqual(xin, hi);
        return [inside ? where(inside, dy!, 0) : dy!, null, null];
      },
    },
  )[0];
}

/** Elementwise minimum; on ties the gradient goes to the first operand. */
export function minimum(a: Operand, b: Operand): Tensor {
  return binary('Min', a, b, (node, [dy]) => {
    const [x, y] = node.inputs as Tensor[];
    const pickX = lessOrEqual(x, y);
    return [sumToShape(where(pickX, dy!, 0), x), sumToShape(where(pickX, 0, dy!), y)];
  });
}

/** Elementwise maximum; on ties the gradient goes to the first operand. */
export function maximum(a: Operand, b: Operand): Tensor {
  return binary('Max', a, b, (node, [dy]) => {
    const [x, y] = node.inputs as Tensor[];
    const pickX = greaterOrEqual(x, y);
    return [sumToShape(where(pickX, dy!, 0), x), sumToShape(where(pickX, 0, dy!), y)];
  });
}

/** Converts dtype; float-to-float casts pass the gradient back (cast to the source dtype). */
export function cast(x: Tensor, to: DType): Tensor {
  if (x.dtype === to) return x;
  const differentiable = isFloat(x.dtype) && isFloat(to);
  return x.graph.node(
    'Cast',
    [x],
    [{ dtype: to, shape: x.shape }],
    { to: attrInt(ONNX_DTYPE[to]) },
    {
      backward: differentiable ? (node, [dy]) => [cast(dy!, node.inputs[0]!.dtype)] : undefined,
    },
  )[0];
}

function compare(op: string, a: Operand, b: Operand): Tensor {
  return binary(op, a, b, undefined, 'bool');
}

export const equal = (a: Operand, b: Operand) => compare('Equal', a, b);
export const less = (a: Operand, b: Operand) => compare('Less', a, b);
export const lessOrEqual = (a: Operand, b: Operand) => compare('LessOrEqual', a, b);
export const greater = (a: Operand, b: Operand) => compare('Greater', a, b);
export const greaterOrEqual = (a: Operand, b: Operand) => compare('GreaterOrEqual', a, b);

export function not(x: Tensor): Tensor {
  if (x.dtype !== 'bool') fail('Not', `needs bool, got ${x.dtype}`, [x]);
  return x.graph.node('Not', [x], [{ dtype: 'bool', shape: x.shape }])[0];
}

export function and(a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== 'bool' || b.dtype !== 'bool') fail('And', 'needs bool operands', [a, b]);
  return binary('And', a, b, undefined, 'bool');
}

export function or(a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== 'bool' || b.dtype !== 'bool') fail('Or', 'needs bool operands', [a, b]);
  return binary('Or', a, b, undefined, 'bool');
}
