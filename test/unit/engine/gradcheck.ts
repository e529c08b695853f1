/**
 * Central finite-difference gradient checks: builds loss = sum(f(inputs) * R) for a fixed
 * random R, compares the engine's emitted gradients with (L(x + h) - L(x - h)) / 2h per
 * element, and reports the normwise relative error max|analytic - numeric| / max|numeric|.
 */
import {
  DType,
  EngineSession,
  Graph,
  gradients,
  HostTensor,
  op,
  Tensor,
} from '../../../src/engine';
import { Dim } from '../../../src/engine/dims';
import { Rng } from '../../../src/engine/random';

export interface CheckInput {
  name: string;
  dtype?: DType;
  /** Declared (possibly symbolic) shape. */
  shape: Dim[];
  /** Runtime shape. */
  value: number[];
  /** Data; default standard normal. */
  data?: (rng: Rng, size: number) => ArrayLike<number | bigint>;
  /** Differentiate w.r.t. this input (default: floats yes, ints no). */
  wrt?: boolean;
}

export interface CheckCase {
  name: string;
  inputs: CheckInput[];
  build: (g: Graph, inputs: Record<string, Tensor>) => Tensor;
  /** Finite-difference step (default 1e-5). */
  step?: number;
}

export interface CheckResult {
  name: string;
  maxRelativeError: number;
  elements: number;
}

function makeFeed(input: CheckInput, rng: Rng): HostTensor {
  const dtype = input.dtype ?? 'float64';
  const size = input.value.reduce((a, b) => a * b, 1);
  const raw = input.data ? input.data(rng, size) : Array.from({ length: size }, () => rng.normal());
  let data: HostTensor['data'];
  if (dtype === 'float64') data = Float64Array.from(raw as ArrayLike<number>);
  else if (dtype === 'float32') data = Float32Array.from(raw as ArrayLike<number>);
  else if (dtype === 'int64') data = BigInt64Array.from(Array.from(raw, (v) => BigInt(v)));
  else if (dtype === 'bool') data = Uint8Array.from(Array.from(raw, (v) => (v ? 1 : 0)));
  else throw new Error(`gradcheck: unsupported input dtype ${dtype}`);
  return { dtype, shape: input.value, data };
}

function buildGraph(c: CheckCase, outShape: Dim[] | null) {
  const g = new Graph(c.name.replace(/[^A-Za-z0-9_]/g, '_'));
  const tensors: Record<string, Tensor> = {};
  for (const i of c.inputs) tensors[i.name] = g.input(i.name, i.dtype ?? 'float64', i.shape);
  const out = c.build(g, tensors);
  if (outShape === null) {
    g.output('out', out);
    return { g, out, wrt: [] as CheckInput[] };
  }
  const weights = g.input('R', out.dtype, out.shape);
  const loss = op.reduceSum(op.mul(out, weights));
  const wrt = c.inputs.filter(
    (i) => i.wrt ?? ((i.dtype ?? 'float64') === 'float64' || i.dtype === 'float32'),
  );
  const grads = gradients(
    loss,
    wrt.map((i) => tensors[i.name]),
  );
  g.output('loss', loss);
  grads.forEach((d, k) => g.output(`d_${wrt[k].name}`, d));
  return { g, out, wrt };
}

export async function gradCheck(c: CheckCase, seed = 1): Promise<CheckResult> {
  const rng = new Rng(seed);
  const feeds: Record<string, HostTensor> = {};
  for (const i of c.inputs) feeds[i.name] = makeFeed(i, rng);

  const probe = buildGraph(c, null);
  const probeSession = await EngineSession.create(probe.g.build());
  const outValue = (await probeSession.run(feeds)).out;
  await probeSession.release();
  const outSize = outValue.shape.reduce((a, b) => a * b, 1);
  feeds.R = {
    dtype: outValue.dtype,
    shape: outValue.shape,
    data:
      outValue.dtype === 'float32'
        ? Float32Array.from({ length: outSize }, () => rng.normal())
        : Float64Array.from({ length: outSize }, () => rng.normal()),
  };

  const { g, out, wrt } = buildGraph(c, [...probe.out.shape]);
  void out;
  const full = await EngineSession.create(g.build());
  const lossOnly = await EngineSession.create(g.build({ outputs: ['loss'] }));
  const analytic = await full.run(feeds);
  const h = c.step ?? 1e-5;
  let worst = 0;
  let elements = 0;
  for (const input of wrt) {
    const feed = feeds[input.name];
    const x = feed.data as Float64Array | Float32Array;
    const grad = analytic[`d_${input.name}`].data as Float64Array | Float32Array;
    const numeric = new Float64Array(x.length);
    for (let k = 0; k < x.length; k++) {
      const original = x[k];
      x[k] = original + h;
      const plusX = x[k];
      const plus = Number((await lossOnly.run(feeds)).loss.data[0]);
      x[k] = original - h;
      const minusX = x[k];
      const minus = Number((await lossOnly.run(feeds)).loss.data[0]);
      x[k] = original;
      numeric[k] = (plus - minus) / (plusX - minusX);
    }
    let maxDiff = 0;
    let maxNumeric = 0;
    for (let k = 0; k < x.length; k++) {
      maxDiff = Math.max(maxDiff, Math.abs(grad[k] - numeric[k]));
      maxNumeric = Math.max(maxNumeric, Math.abs(numeric[k]));
    }
    if (maxNumeric === 0) {
      throw new Error(
        `gradcheck ${c.name}: numeric gradient of ${input.name} is all zero; the check would be vacuous`,
      );
    }
    worst = Math.max(worst, maxDiff / maxNumeric);
    elements += x.length;
  }
  await full.release();
  await lossOnly.release();
  return { name: c.name, maxRelativeError: worst, elements };
}

/** Values in [lo, hi) with no two closer than `gap` (keeps max/min/clip away from kinks). */
export function spread(lo: number, hi: number) {
  return (rng: Rng, size: number): number[] => {
    const step = (hi - lo) / size;
    const values = Array.from(
      { length: size },
      (_, i) => lo + step * (i + 0.25 + 0.5 * rng.uniform()),
    );
    for (let i = size - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [values[i], values[j]] = [values[j], values[i]];
    }
    return values;
  };
}

export const uniformIn = (lo: number, hi: number) => (rng: Rng, size: number) =>
  Array.from({ length: size }, () => lo + (hi - lo) * rng.uniform());

export const integersBelow = (n: number) => (rng: Rng, size: number) =>
  Array.from({ length: size }, () => rng.int(n));
