/**
 * AdamW (Loshchilov & Hutter 2019, Algorithm 2) over named Float32Array parameters, on the host.
 * The trainable set here is small (LoRA factors and scalar heads, tens to hundreds of thousands
 * of numbers), so updating them in JavaScript between graph runs costs well under a
 * millisecond, and keeps the optimizer state easy to checkpoint exactly.
 */

export interface AdamWConfig {
  learningRate: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip the global gradient L2 norm to this value (0 = off). */
  maxGradNorm: number;
}

export const ADAMW_DEFAULTS: AdamWConfig = {
  learningRate: 1e-3,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0,
  maxGradNorm: 1,
};

export type ParameterSet = Map<string, Float32Array>;

export interface AdamWState {
  step: number;
  m: Record<string, Float32Array>;
  v: Record<string, Float32Array>;
}

export class AdamW {
  readonly config: AdamWConfig;
  private stepCount = 0;
  private readonly m = new Map<string, Float32Array>();
  private readonly v = new Map<string, Float32Array>();

  constructor(
    readonly params: ParameterSet,
    config: Partial<AdamWConfig> = {},
  ) {
    this.config = { ...ADAMW_DEFAULTS, ...config };
    for (const [name, p] of params) {
      this.m.set(name, new Float32Array(p.length));
      this.v.set(name, new Float32Array(p.length));
    }
  }

  get step(): number {
    return this.stepCount;
  }

  /**
   * Applies one update in place. Returns the global gradient norm before clipping.
   * `grads` must hold one gradient per parameter, of the same length.
   */
  update(
    grads: ReadonlyMap<string, ArrayLike<number>>,
    learningRate = this.config.learningRate,
  ): number {
    let sq = 0;
    for (const [name, p] of this.params) {
      const g = grads.get(name);
      if (!g) throw new Error(`AdamW: no gradient for parameter "${name}"`);
      if (g.length !== p.length) {
        throw new Error(
          `AdamW: gradient for "${name}" has ${g.length} elements, parameter ${p.length}`,
        );
      }
      for (let i = 0; i < g.length; i++) sq += g[i] * g[i];
    }
    const norm = Math.sqrt(sq);
    if (!Number.isFinite(norm)) {
      throw new Error(`AdamW: gradient norm is ${norm}; refusing to update (diverged step)`);
    }
    const { beta1, beta2, eps, weightDecay, maxGradNorm } = this.config;
    const clip = maxGradNorm > 0 && norm > maxGradNorm ? maxGradNorm / norm : 1;
    this.stepCount++;
    const c1 = 1 - beta1 ** this.stepCount;
    const c2 = 1 - beta2 ** this.stepCount;
    for (const [name, p] of this.params) {
      const g = grads.get(name)!;
      const m = this.m.get(name)!;
      const v = this.v.get(name)!;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i] * clip;
        m[i] = beta1 * m[i] + (1 - beta1) * gi;
        v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
        const update = m[i] / c1 / (Math.sqrt(v[i] / c2) + eps);
        p[i] -= learningRate * (update + weightDecay * p[i]);
      }
    }
    return norm;
  }

  state(): AdamWState {
    const copy = (map: Map<string, Float32Array>) =>
      Object.fromEntries([...map].map(([k, a]) => [k, a.slice()]));
    return { step: this.stepCount, m: copy(this.m), v: copy(this.v) };
  }

  restore(state: AdamWState): void {
    for (const name of this.params.keys()) {
      const m = state.m[name];
      const v = state.v[name];
      if (!m || !v || m.length !== this.m.get(name)!.length) {
        throw new Error(`AdamW: saved optimizer state has no matching moments for "${name}"`);
      }
      this.m.get(name)!.set(m);
      this.v.get(name)!.set(v);
    }
    this.stepCount = state.step;
  }
}

/** Packs named Float32Arrays into one little-endian buffer with a JSON index (for checkpoints). */
export function packTensors(tensors: Record<string, Float32Array>): Uint8Array {
  const index: Record<string, [number, number]> = {};
  let offset = 0;
  for (const [name, a] of Object.entries(tensors)) {
    index[name] = [offset, a.length];
    offset += a.length;
  }
  const header = Buffer.from(JSON.stringify(index), 'utf8');
  const out = new Uint8Array(4 + header.length + offset * 4);
  const view = new DataView(out.buffer);
  view.setUint32(0, header.length, true);
  out.set(header, 4);
  let pos = 4 + header.length;
  for (const a of Object.values(tensors)) {
    for (let i = 0; i < a.length; i++, pos += 4) view.setFloat32(pos, a[i], true);
  }
  return out;
}

export function unpackTensors(bytes: Uint8Array, source: string): Record<string, Float32Array> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(0, true);
  if (4 + headerLength > bytes.length) throw new Error(`${source}: truncated tensor pack header`);
  const index = JSON.parse(
    Buffer.from(bytes.subarray(4, 4 + headerLength)).toString('utf8'),
  ) as Record<string, [number, number]>;
  const base = 4 + headerLength;
  const out: Record<string, Float32Array> = {};
  for (const [name, [offset, length]] of Object.entries(index)) {
    if (base + (offset + length) * 4 > bytes.length)
      throw new Error(`${source}: tensor "${name}" truncated`);
    const a = new Float32Array(length);
    for (let i = 0; i < length; i++) a[i] = view.getFloat32(base + (offset + i) * 4, true);
    out[name] = a;
  }
  return out;
}
