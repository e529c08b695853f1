/**
 * Symbolic dimensions. A dim is a number or a product of named symbols with an integer
 * coefficient, written canonically as e.g. "B", "B*T" or "4*B*T" (names sorted).
 */

export type Dim = number | string;
export type Shape = readonly Dim[];

interface Product {
  coefficient: number;
  names: string[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function parse(dim: Dim): Product {
  if (typeof dim === 'number') return { coefficient: dim, names: [] };
  let coefficient = 1;
  const names: string[] = [];
  for (const part of dim.split('*').map((p) => p.trim())) {
    if (/^\d+$/.test(part)) coefficient *= Number(part);
    else if (NAME.test(part)) names.push(part);
    else
      throw new Error(`invalid symbolic dim "${dim}": use names like "B" or products like "B*T"`);
  }
  names.sort();
  return { coefficient, names };
}

function format(p: Product): Dim {
  if (p.names.length === 0) return p.coefficient;
  const body = p.names.join('*');
  return p.coefficient === 1 ? body : `${p.coefficient}*${body}`;
}

/** Canonical form of a dim ("T*B" -> "B*T"); validates names and integers. */
export function canonicalDim(dim: Dim): Dim {
  if (typeof dim === 'number') {
    if (!Number.isInteger(dim) || dim < 0) {
      throw new Error(`invalid dim ${dim}: dims are non-negative integers or symbol names`);
    }
    return dim;
  }
  return format(parse(dim));
}

export function dimsEqual(a: Dim, b: Dim): boolean {
  return canonicalDim(a) === canonicalDim(b);
}

export function mulDims(a: Dim, b: Dim): Dim {
  const pa = parse(a);
  const pb = parse(b);
  return format({
    coefficient: pa.coefficient * pb.coefficient,
    names: [...pa.names, ...pb.names].sort(),
  });
}

/** a / b when it divides exactly (symbolically), else null. */
export function divDims(a: Dim, b: Dim): Dim | null {
  const pa = parse(a);
  const pb = parse(b);
  if (pb.coefficient === 0 || pa.coefficient % pb.coefficient !== 0) return null;
  const names = [...pa.names];
  for (const n of pb.names) {
    const i = names.indexOf(n);
    if (i < 0) return null;
    names.splice(i, 1);
  }
  return format({ coefficient: pa.coefficient / pb.coefficient, names });
}

export function shapeProduct(shape: Shape): Dim {
  return shape.reduce<Dim>((acc, d) => mulDims(acc, d), 1);
}

/** The names a dim is built from ("2*B*T" -> ["B", "T"]). */
export function dimSymbols(dim: Dim): string[] {
  return parse(dim).names;
}

export function dimCoefficient(dim: Dim): number {
  return parse(dim).coefficient;
}

export function isStatic(shape: Shape): shape is readonly number[] {
  return shape.every((d) => typeof d === 'number');
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Numpy-style broadcast of two shapes. Size-1 broadcasting must be explicit: a symbolic dim
 * never broadcasts against a different dim, so "T" vs "S" or "T" vs 128 is an error.
 */
export function broadcastShapes(a: Shape, b: Shape): Dim[] | null {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const da = i < rank - a.length ? 1 : a[i - (rank - a.length)];
    const db = i < rank - b.length ? 1 : b[i - (rank - b.length)];
    if (dimsEqual(da, db)) out.push(canonicalDim(da));
    else if (da === 1) out.push(canonicalDim(db));
    else if (db === 1) out.push(canonicalDim(da));
    else return null;
  }
  return out;
}
