/**
 * A loaded model with its onnxruntime sessions. Graph kinds:
 *
 * - `step`: one forward step with a KV cache (prefill when the cache is empty, decode after);
 *   returns last-position logits [B, V] and the updated cache.
 * - `logits`: full-sequence logits [B, T, V] without a cache (parity checks, scoring).
 * - `logprobs`: per-token log p(target) and entropy of softmax(logits / temperature), [B, T].
 *
 * Each (kind, LoRA targets) pair gets one session, created on first use and kept until
 * `dispose()`: sessions are never rebuilt per request. LoRA factors are inputs, so switching
 * adapters with the same targets costs nothing.
 */
import { EngineSession, Graph, nn, op, type HostTensor, type Tensor } from '../engine';
import type { BuiltModel } from '../engine';
import {
  buildLlamaForward,
  declareLoraInputs,
  loraInputName,
  maskPaddedVocab,
  outputLogits,
  type KvPair,
} from './llamaGraph';
import { loadModel, type LoadedModel } from './loader';
import { loraScale, type LoraAdapter } from './lora';
import { PROJECTIONS, projectionShape, type Projection } from './weights';

export type GraphKind = 'step' | 'logits' | 'logprobs';

export interface RuntimeOptions {
  /** Intra-op threads (default 2, the machine's cores). */
  threads?: number;
}

/** Per-layer cache tensors, [B, Hkv, P, D] float32 each. */
export interface KvCache {
  batch: number;
  length: number;
  keys: Float32Array[];
  values: Float32Array[];
}

export interface StepResult {
  /** [B, V] logits of each row's last position. */
  logits: Float32Array;
  cache: KvCache;
}

export class ModelRuntime {
  private readonly sessions = new Map<string, Promise<EngineSession>>();
  private disposed = false;
  /** Number of sessions created so far (O3: must not grow per request). */
  sessionsCreated = 0;

  private constructor(
    readonly model: LoadedModel,
    private readonly options: Required<RuntimeOptions>,
  ) {}

  static load(dir: string, options: RuntimeOptions = {}): ModelRuntime {
    return new ModelRuntime(loadModel(dir), { threads: options.threads ?? 2 });
  }

  static fromModel(model: LoadedModel, options: RuntimeOptions = {}): ModelRuntime {
    return new ModelRuntime(model, { threads: options.threads ?? 2 });
  }

  get vocabSize(): number {
    return this.model.config.vocabSize;
  }

  /** The session for a graph kind and LoRA target set, built once. */
  session(kind: GraphKind, targets: readonly Projection[] = []): Promise<EngineSession> {
    if (this.disposed) throw new Error(`model ${this.model.name} was disposed`);
    const sorted = PROJECTIONS.filter((p) => targets.includes(p));
    const key = `${kind}:${sorted.join(',')}`;
    let session = this.sessions.get(key);
    if (!session) {
      const built = this.buildGraph(kind, sorted);
      this.sessionsCreated++;
      session = EngineSession.create(built, { threads: this.options.threads });
      this.sessions.set(key, session);
      // A failed build must not stay cached.
      session.catch(() => this.sessions.delete(key));
    }
    return session;
  }

  /** Builds the ONNX model for a graph kind (exposed for tests and benchmarks). */
  buildGraph(kind: GraphKind, targets: readonly Projection[]): BuiltModel {
    const { config } = this.model;
    const g = new Graph(`${this.model.name}-${kind}${targets.length ? '-lora' : ''}`);
    const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
    const positions = g.input('positions', 'int64', ['B', 'T']);
    const lora = targets.length > 0 ? declareLoraInputs(g, this.model, targets) : undefined;
    if (kind === 'step') {
      const past: KvPair[] = [];
      for (let l = 0; l < config.numLayers; l++) {
        const shape = ['B', config.numKvHeads, 'P', config.headDim];
        past.push({
          key: g.input(`past.${l}.key`, 'float32', shape),
          value: g.input(`past.${l}.value`, 'float32', shape),
        });
      }
      const keyMask = g.input('key_mask', 'int64', ['B', 'S']);
      const { hidden, present } = buildLlamaForward(g, this.model, {
        inputIds,
        positions,
        keyMask,
        past,
        lora,
      });
      const lastSlice = op.assumeShape(op.slice(hidden, 1, -1), ['B', 1, config.hiddenSize]);
      const last = op.squeeze(lastSlice, [1]); // [B, C]
      g.output('logits', outputLogits(g, this.model, last)); // [B, V]
      present.forEach((kv, l) => {
        g.output(`present.${l}.key`, kv.key);
        g.output(`present.${l}.value`, kv.value);
      });
      return g.build();
    }
    const keyMask = g.input('key_mask', 'int64', ['B', 'T']);
    const { hidden } = buildLlamaForward(g, this.model, { inputIds, positions, keyMask, lora });
    const logits = outputLogits(g, this.model, hidden); // [B, T, V]
    if (kind === 'logits') {
      g.output('logits', logits);
      return g.build();
    }
    const targetsInput = g.input('targets', 'int64', ['B', 'T']);
    const temperature = g.input('temperature', 'float32', []);
    const scaled: Tensor = op.div(maskPaddedVocab(g, this.model, logits), temperature);
    g.output('logprobs', nn.tokenLogprobs(scaled, targetsInput)); // [B, T]
    g.output('entropy', nn.entropy(scaled)); // [B, T]
    return g.build();
  }

  /** Feeds for an adapter (or none). Modules the adapter lacks get zero factors. */
  loraFeeds(adapter: LoraAdapter | undefined): Record<string, HostTensor> {
    if (!adapter) return {};
    const feeds: Record<string, HostTensor> = {
      lora_scale: { dtype: 'float32', shape: [], data: Float32Array.of(loraScale(adapter.config)) },
    };
    const r = adapter.config.rank;
    for (const layer of this.model.weights.layers) {
      for (const projection of adapter.config.targets) {
        const module = layer.linears[projection].module;
        const [out, inFeatures] = projectionShape(this.model.config, projection);
        const f = adapter.factors.get(module);
        feeds[loraInputName(module, 'A')] = {
          dtype: 'float32',
          shape: [r, inFeatures],
          data: f?.a ?? new Float32Array(r * inFeatures),
        };
        feeds[loraInputName(module, 'B')] = {
          dtype: 'float32',
          shape: [out, r],
          data: f?.b ?? new Float32Array(out * r),
        };
      }
    }
    return feeds;
  }

  /** An empty cache for `batch` rows. */
  emptyCache(batch: number): KvCache {
    const layers = this.model.config.numLayers;
    return {
      batch,
      length: 0,
      keys: Array.from({ length: layers }, () => new Float32Array(0)),
      values: Array.from({ length: layers }, () => new Float32Array(0)),
    };
  }

  /**
   * One cached forward step. `ids` and `positions` are [B, T] row-major; `keyMask` is [B, P+T]
   * (1 = real token, 0 = padding) or undefined for all ones.
   */
  async step(
    cache: KvCache,
    ids: readonly number[],
    positions: readonly number[],
    options: { adapter?: LoraAdapter; keyMask?: readonly number[] } = {},
  ): Promise<StepResult> {
    const { config } = this.model;
    const b = cache.batch;
    const t = ids.length / b;
    const s = cache.length + t;
    const session = await this.session('step', options.adapter?.config.targets ?? []);
    const kvShape = [b, config.numKvHeads, cache.length, config.headDim];
    const feeds: Record<string, HostTensor> = {
      input_ids: int64Tensor(ids, [b, t]),
      positions: int64Tensor(positions, [b, t]),
      key_mask: int64Tensor(options.keyMask ?? new Array(b * s).fill(1), [b, s]),
      ...this.loraFeeds(options.adapter),
    };
    for (let l = 0; l < config.numLayers; l++) {
      feeds[`past.${l}.key`] = { dtype: 'float32', shape: kvShape, data: cache.keys[l] };
      feeds[`past.${l}.value`] = { dtype: 'float32', shape: kvShape, data: cache.values[l] };
    }
    const out = await session.run(feeds);
    return {
      logits: out.logits.data as Float32Array,
      cache: {
        batch: b,
        length: s,
        keys: Array.from(
          { length: config.numLayers },
          (_, l) => out[`present.${l}.key`].data as Float32Array,
        ),
        values: Array.from(
          { length: config.numLayers },
          (_, l) => out[`present.${l}.value`].data as Float32Array,
        ),
      },
    };
  }

  /** Full logits for sequences of any lengths (right-padded into one batch): [len, V] each. */
  async logits(
    sequences: readonly (readonly number[])[],
    adapter?: LoraAdapter,
  ): Promise<Float32Array[]> {
    const batch = padRight(sequences);
    const session = await this.session('logits', adapter?.config.targets ?? []);
    const out = await session.run({ ...batch.feeds, ...this.loraFeeds(adapter) });
    const v = this.vocabSize;
    const data = out.logits.data as Float32Array;
    return sequences.map((seq, i) =>
      data.slice(i * batch.length * v, (i * batch.length + seq.length) * v),
    );
  }

  /**
   * Log-probabilities and entropies of each completion token given its prompt, under an adapter
   * and temperature, for a batch of (prompt, completion) pairs of any lengths. Entry j of a
   * result is about completion token j, predicted from prompt + completion[:j].
   */
  async completionLogprobs(
    items: readonly { prompt: readonly number[]; completion: readonly number[] }[],
    options: { adapter?: LoraAdapter; temperature?: number } = {},
  ): Promise<{ logprobs: Float32Array; entropy: Float32Array }[]> {
    const temperature = options.temperature ?? 1;
    if (!(temperature > 0)) throw new RangeError(`temperature must be > 0, got ${temperature}`);
    items.forEach((item, i) => {
      if (item.prompt.length === 0) throw new RangeError(`items[${i}].prompt is empty`);
    });
    const sequences = items.map((item) => [...item.prompt, ...item.completion]);
    const batch = padRight(sequences);
    const targets = new Array(items.length * batch.length).fill(0);
    sequences.forEach((seq, i) => {
      for (let p = 0; p + 1 < seq.length; p++) targets[i * batch.length + p] = seq[p + 1];
    });
    const session = await this.session('logprobs', options.adapter?.config.targets ?? []);
    const out = await session.run({
      ...batch.feeds,
      targets: int64Tensor(targets, [items.length, batch.length]),
      temperature: { dtype: 'float32', shape: [], data: Float32Array.of(temperature) },
      ...this.loraFeeds(options.adapter),
    });
    const logprobs = out.logprobs.data as Float32Array;
    const entropy = out.entropy.data as Float32Array;
    return items.map((item, i) => {
      const from = i * batch.length + item.prompt.length - 1;
      const to = from + item.completion.length;
      return { logprobs: logprobs.slice(from, to), entropy: entropy.slice(from, to) };
    });
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of sessions) {
      try {
        await (await s).release();
      } catch {
        // A session that failed to build has nothing to release.
      }
    }
  }
}

export function int64Tensor(values: readonly number[], shape: number[]): HostTensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]);
  return { dtype: 'int64', shape, data };
}

/** Right-pads sequences into [B, T] ids/positions/key_mask feeds (pad id 0, masked out). */
function padRight(sequences: readonly (readonly number[])[]): {
  length: number;
  feeds: Record<string, HostTensor>;
} {
  if (sequences.length === 0) throw new RangeError('no sequences given');
  const length = Math.max(...sequences.map((s) => s.length));
  if (length === 0) throw new RangeError('all sequences are empty');
  const b = sequences.length;
  const ids = new Array(b * length).fill(0);
  const positions = new Array(b * length).fill(0);
  const mask = new Array(b * length).fill(0);
  sequences.forEach((seq, i) => {
    for (let p = 0; p < length; p++) {
      positions[i * length + p] = p;
      if (p < seq.length) {
        ids[i * length + p] = seq[p];
        mask[i * length + p] = 1;
      }
    }
  });
  return {
    length,
    feeds: {
      input_ids: int64Tensor(ids, [b, length]),
      positions: int64Tensor(positions, [b, length]),
      key_mask: int64Tensor(mask, [b, length]),
    },
  };
}
