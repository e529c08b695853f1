/** Shared helpers for ops: operand checks, error messages, runtime shape reads. */
import { Dim, dimsEqual, dimSymbols, dimCoefficient, formatShape, isStatic, Shape } from '../dims';
import { DType, isFloat } from '../dtype';
import { Graph, GraphBuildError, Tensor } from '../graph';

export type Operand = Tensor | number;

export function describe(t: Tensor): string {
  return `${t.name} ${t.dtype}${formatShape(t.shape)}`;
}

/** Throws a build error naming the op, the operands and their shapes. */
export function fail(op: string, reason: string, operands: readonly Tensor[]): never {
  const list = operands.map((t, i) => `#${i} ${describe(t)}`).join(', ');
  throw new GraphBuildError(`${op}: ${reason} (operands: ${list})`);
}

export function graphOf(op: string, operands: readonly Operand[]): Graph {
  const t = operands.find((o): o is Tensor => o instanceof Tensor);
  if (!t) throw new GraphBuildError(`${op}: at least one operand must be a tensor`);
  return t.graph;
}

/** Turns numbers into scalar constants of the tensor operands' dtype. */
export function lift(op: string, operands: readonly Operand[]): Tensor[] {
  const g = graphOf(op, operands);
  const tensor = operands.find((o): o is Tensor => o instanceof Tensor)!;
  return operands.map((o) => (o instanceof Tensor ? o : g.scalar(o, tensor.dtype)));
}

export function requireSameDType(op: string, operands: readonly Tensor[]): DType {
  const dtype = operands[0].dtype;
  if (operands.some((t) => t.dtype !== dtype)) fail(op, 'operand dtypes differ', operands);
  return dtype;
}

export function requireFloat(op: string, operands: readonly Tensor[]): void {
  for (const t of operands)
    if (!isFloat(t.dtype)) fail(op, `needs floating-point operands, got ${t.dtype}`, operands);
}

export function requireInteger(op: string, t: Tensor, operands: readonly Tensor[]): void {
  if (t.dtype !== 'int64' && t.dtype !== 'int32')
    fail(op, `${t.name} must be int64 or int32, got ${t.dtype}`, operands);
}

/** Normalizes a possibly negative axis against a rank. */
export function normAxis(
  op: string,
  axis: number,
  rank: number,
  operands: readonly Tensor[],
): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(axis) || a < 0 || a >= rank)
    fail(op, `axis ${axis} is out of range for rank ${rank}`, operands);
  return a;
}

/** int64[1] holding dim `axis` of x at run time. */
export function runtimeDim(x: Tensor, axis: number): Tensor {
  const g = x.graph;
  const key = `dim:${x.name}:${axis}`;
  let t = g.memo.get(key);
  if (!t) {
    t = g.node('Shape', [x], [{ dtype: 'int64', shape: [1] }], {
      start: { type: 'int', value: axis },
      end: { type: 'int', value: axis + 1 },
    })[0];
    g.memo.set(key, t);
  }
  return t;
}

/** int64[rank] holding the shape of x at run time (a constant when x's shape is static). */
export function runtimeShape(x: Tensor): Tensor {
  const g = x.graph;
  if (isStatic(x.shape)) return g.int64s(x.shape);
  const key = `shape:${x.name}`;
  let t = g.memo.get(key);
  if (!t) {
    t = g.node('Shape', [x], [{ dtype: 'int64', shape: [x.rank] }])[0];
    g.memo.set(key, t);
  }
  return t;
}

/** int64[1] holding the value of a (possibly symbolic) dim, read from the given tensors or inputs. */
export function dimValue(g: Graph, dim: Dim, from: readonly Tensor[]): Tensor {
  if (typeof dim === 'number') return g.int64s([dim]);
  for (const t of from) {
    const axis = t.shape.findIndex((d) => dimsEqual(d, dim));
    if (axis >= 0) return runtimeDim(t, axis);
  }
  const symbols = dimSymbols(dim);
  if (symbols.length === 1 && dimCoefficient(dim) === 1) {
    const source = g.dimSources.get(symbols[0]);
    if (!source) {
      throw new GraphBuildError(
        `no graph input declares the dynamic dim "${dim}", so its size cannot be read at run time`,
      );
    }
    return runtimeDim(source.tensor, source.axis);
  }
  let acc: Tensor = g.int64s([dimCoefficient(dim)]);
  for (const s of symbols)
    acc = g.node('Mul', [acc, dimValue(g, s, from)], [{ dtype: 'int64', shape: [1] }])[0];
  return acc;
}

/** int64[rank] for a target shape with symbolic dims, read from `from` or graph inputs. */
export function shapeValue(g: Graph, shape: Shape, from: readonly Tensor[]): Tensor {
  if (isStatic(shape)) return g.int64s(shape);
  const parts = shape.map((d) => dimValue(g, d, from));
  return g.node('Concat', parts, [{ dtype: 'int64', shape: [shape.length] }], {
    axis: { type: 'int', value: 0 },
  })[0];
}

/** Zeros with the dtype and (runtime) shape of x. */
export function zerosLike(x: Tensor): Tensor {
  return zerosOfShape(x.graph, x.dtype, x.shape, [x]);
}

export function zerosOfShape(
  g: Graph,
  dtype: DType,
  shape: Shape,
  from: readonly Tensor[],
): Tensor {
  const value = { dtype, shape: [1], data: zeroData(dtype) };
  return g.node('ConstantOfShape', [shapeValue(g, shape, from)], [{ dtype, shape }], {
    value: { type: 'tensor', value },
  })[0];
}

function zeroData(dtype: DType) {
  switch (dtype) {
    case 'float64':
      return new Float64Array(1);
    case 'int64':
      return new BigInt64Array(1);
    case 'int32':
      return new Int32Array(1);
    case 'bool':
    case 'uint8':
      return new Uint8Array(1);
    case 'int8':
      return new Int8Array(1);
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(1);
    default:
      return new Float32Array(1);
  }
}

export const attrInt = (value: number) => ({ type: 'int' as const, value });
export const attrInts = (value: readonly number[]) => ({ type: 'ints' as const, value });
export const attrFloat = (value: number) => ({ type: 'float' as const, value });
export const attrString = (value: string) => ({ type: 'string' as const, value });
