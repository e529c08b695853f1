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
} from './llamaGraph';
import { loadModel, type LoadedModel } from './loader';
import { loraScale, type LoraAdapter } from './lora';
import { SettingError } from './settingError';
import { PROJECTIONS, projectionShape, type Projection } from './weights';

export type GraphKind = 'step' | 'logits' | 'logprobs';

export interface RuntimeOptions {
  /** Intra-op threads (default 2, the machine's cores). */
  threads?: number;
  /**
   * Intra-op threads for the `step` session (prefill and decode). Default: 1 for models under
   * SMALL_MODEL_PARAMS parameters, whose [K, 1] decode steps are too small for a second thread to
   * pay for its hand-offs (see bench/generation.ts), else `threads`.
   */
  stepThreads?: number;
}

/** Below this many parameters the decode session runs on one thread by default. */
export const SMALL_MODEL_PARAMS = 20e6;

/**
 * A static KV cache: per layer [B, Hkv, capacity, D] float32 buffers, filled in slot order, and
 * which slots hold real keys (padding and free slots are 0). `step` writes into it in place.
 */
export interface KvCache {
  batch: number;
  capacity: number;
  kvHeads: number;
  headDim: number;
  /** Slots used so far (the next call's tokens go to slots length, length + 1, ...). */
  length: number;
  keys: Float32Array[];
  values: Float32Array[];
  /** [B, capacity], 1 = a real key. */
  valid: Uint8Array;
}

export interface StepResult {
  /** [B, V] logits of each row's last position. */
  logits: Float32Array;
  /** The same cache object, with this call's keys and values written in. */
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
    return ModelRuntime.fromModel(loadModel(dir), options);
  }

  static fromModel(model: LoadedModel, options: RuntimeOptions = {}): ModelRuntime {
    const threads = options.threads ?? 2;
    const small = parameterCount(model.config) < SMALL_MODEL_PARAMS;
    const stepThreads = options.stepThreads ?? (small ? 1 : threads);
    return new ModelRuntime(model, { threads, stepThreads });
  }

  /** Intra-op threads the sessions of a graph kind run with. */
  threadsFor(kind: GraphKind): number {
    return kind === 'step' ? this.options.stepThreads : this.options.threads;
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
      session = EngineSession.create(built, { threads: this.threadsFor(kind) });
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
    const keyMask = g.input('key_mask', 'int64', ['B', 'T']);
    if (kind === 'step') {
      const shape = ['B', config.numKvHeads, 'C', config.headDim];
      const cache = {
        keys: Array.from({ length: config.numLayers }, (_, l) =>
          g.input(`cache.${l}.key`, 'float32', shape),
        ),
        values: Array.from({ length: config.numLayers }, (_, l) =>
          g.input(`cache.${l}.value`, 'float32', shape),
        ),
        validSlots: g.input('valid_slots', 'int64', ['B', 'C']),
      };
      const { hidden, present } = buildLlamaForward(g, this.model, {
        inputIds,
        positions,
        keyMask,
        cache,
        lora,
      });
      const lastSlice = op.assumeShape(op.slice(hidden, 1, -1), ['B', 1, config.hiddenSize]);
      const last = op.squeeze(lastSlice, [1]); // [B, C]
      g.output('logits', outputLogits(g, this.model, last)); // [B, V]
      present.forEach((kv, l) => {
        g.output(`new.${l}.key`, kv.key); // [B, Hkv, T, D]
        g.output(`new.${l}.value`, kv.value);
      });
      return g.build();
    }
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

  /** An empty cache for `batch` rows with room for `capacity` tokens (it grows when needed). */
  emptyCache(batch: number, capacity = 0): KvCache {
    const { numLayers, numKvHeads, headDim } = this.model.config;
    const size = batch * numKvHeads * capacity * headDim;
    return {
      batch,
      capacity,
      kvHeads: numKvHeads,
      headDim,
      length: 0,
      keys: Array.from({ length: numLayers }, () => new Float32Array(size)),
      values: Array.from({ length: numLayers }, () => new Float32Array(size)),
      valid: new Uint8Array(batch * capacity),
    };
  }

  /**
   * One cached forward step for `T` new tokens per row: `ids` and `positions` are [B, T]
   * row-major; `keyMask` [B, T] marks padding among the new tokens (default all real). Attends
   * to the cache's valid slots and, causally, to the new tokens; then writes the new keys and
   * values into the cache (in place, growing it if full).
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
    if (!Number.isInteger(t) || t < 1 || positions.length !== ids.length) {
      throw new RangeError(
        `step: ${ids.length} ids and ${positions.length} positions do not fill [${b}, T]`,
      );
    }
    checkTokenIds(ids, config.vocabSize, 'step: input_ids');
    const session = await this.session('step', options.adapter?.config.targets ?? []);
    const kvShape = [b, config.numKvHeads, cache.capacity, config.headDim];
    // Filled from the 0/1 bytes directly: this runs once per decode step.
    const validSlots = new BigInt64Array(b * cache.capacity);
    for (let i = 0; i < validSlots.length; i++) if (cache.valid[i]) validSlots[i] = 1n;
    const keyMask = options.keyMask ?? new Array<number>(b * t).fill(1);
    const feeds: Record<string, HostTensor> = {
      input_ids: int64Tensor(ids, [b, t]),
      positions: int64Tensor(positions, [b, t]),
      key_mask: int64Tensor(keyMask, [b, t]),
      valid_slots: { dtype: 'int64', shape: [b, cache.capacity], data: validSlots },
      ...this.loraFeeds(options.adapter),
    };
    for (let l = 0; l < config.numLayers; l++) {
      feeds[`cache.${l}.key`] = { dtype: 'float32', shape: kvShape, data: cache.keys[l] };
      feeds[`cache.${l}.value`] = { dtype: 'float32', shape: kvShape, data: cache.values[l] };
    }
    const out = await session.run(feeds);
    if (cache.length + t > cache.capacity) {
      growCache(cache, Math.max(cache.length + t, 2 * cache.capacity));
    }
    const { numKvHeads: kv, headDim: d } = config;
    for (let l = 0; l < config.numLayers; l++) {
      const newKeys = out[`new.${l}.key`].data as Float32Array; // [B, Hkv, T, D]
      const newValues = out[`new.${l}.value`].data as Float32Array;
      for (let row = 0; row < b * kv; row++) {
        const to = (row * cache.capacity + cache.length) * d;
        cache.keys[l].set(newKeys.subarray(row * t * d, (row + 1) * t * d), to);
        cache.values[l].set(newValues.subarray(row * t * d, (row + 1) * t * d), to);
      }
    }
    for (let row = 0; row < b; row++) {
      for (let j = 0; j < t; j++)
        cache.valid[row * cache.capacity + cache.length + j] = keyMask[row * t + j] ? 1 : 0;
    }
    cache.length += t;
    return { logits: out.logits.data as Float32Array, cache };
  }

  /** Full logits for sequences of any lengths (right-padded into one batch): [len, V] each. */
  async logits(
    sequences: readonly (readonly number[])[],
    adapter?: LoraAdapter,
  ): Promise<Float32Array[]> {
    sequences.forEach((seq, i) => checkTokenIds(seq, this.vocabSize, `logits: sequences[${i}]`));
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
    if (!(temperature > 0)) throw new SettingError(`temperature must be > 0, got ${temperature}`);
    items.forEach((item, i) => {
      if (item.prompt.length === 0) throw new RangeError(`items[${i}].prompt is empty`);
      checkTokenIds(item.prompt, this.vocabSize, `completionLogprobs: items[${i}].prompt`);
      checkTokenIds(item.completion, this.vocabSize, `completionLogprobs: items[${i}].completion`);
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

/** Weights in a Llama-family checkpoint of this config (embedding, blocks, head). */
export function parameterCount(config: LoadedModel['config']): number {
  const c = config;
  const attention = c.hiddenSize * c.headDim * (2 * c.numHeads + 2 * c.numKvHeads);
  const mlp = 3 * c.hiddenSize * c.intermediateSize;
  const embed = c.vocabSize * c.hiddenSize * (c.tieWordEmbeddings ? 1 : 2);
  return embed + c.numLayers * (attention + mlp + 2 * c.hiddenSize) + c.hiddenSize;
}

/**
 * Token ids must be integers in [0, vocabSize): the embedding Gather would read a wrong row for a
 * negative id (ONNX Gather counts from the end) and fail without naming the input for one past
 * the end.
 */
function checkTokenIds(ids: readonly number[], vocabSize: number, what: string): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!(Number.isInteger(id) && id >= 0 && id < vocabSize)) {
      throw new RangeError(
        `${what}[${i}] = ${id} is not a token id; allowed: integers from 0 to ${vocabSize - 1} ` +
          `(vocab_size ${vocabSize})`,
      );
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

/** Reallocates a cache with a larger capacity, keeping its contents. */
function growCache(cache: KvCache, capacity: number): void {
  const { kvHeads, headDim } = cache;
  const relayout = (data: Float32Array) => {
    const out = new Float32Array(cache.batch * kvHeads * capacity * headDim);
    for (let row = 0; row < cache.batch * kvHeads; row++) {
      const from = row * cache.capacity * headDim;
      out.set(data.subarray(from, from + cache.length * headDim), row * capacity * headDim);
    }
    return out;
  };
  cache.keys = cache.keys.map(relayout);
  cache.values = cache.values.map(relayout);
  const valid = new Uint8Array(cache.batch * capacity);
  for (let row = 0; row < cache.batch; row++) {
    valid.set(
      cache.valid.subarray(row * cache.capacity, row * cache.capacity + cache.length),
      row * capacity,
    );
  }
  cache.valid = valid;
  cache.capacity = capacity;
}

/**
 * A new cache holding the given rows of `cache` (rows may repeat: [0, 0, 0, 0] turns a one-row
 * prompt cache into four candidates), with room for `capacity` tokens.
 */
export function selectCacheRows(
  cache: KvCache,
  rows: readonly number[],
  capacity = cache.capacity,
): KvCache {
  if (capacity < cache.length) {
    throw new RangeError(`capacity ${capacity} is below the cache length ${cache.length}`);
  }
  const { kvHeads, headDim: d } = cache;
  const used = cache.length * d;
  const copy = (data: Float32Array) => {
    const out = new Float32Array(rows.length * kvHeads * capacity * d);
    rows.forEach((r, i) => {
      for (let h = 0; h < kvHeads; h++) {
        const from = (r * kvHeads + h) * cache.capacity * d;
        out.set(data.subarray(from, from + used), (i * kvHeads + h) * capacity * d);
      }
    });
    return out;
  };
  const valid = new Uint8Array(rows.length * capacity);
  rows.forEach((r, i) => {
    const from = r * cache.capacity;
    valid.set(cache.valid.subarray(from, from + cache.length), i * capacity);
  });
  return {
    batch: rows.length,
    capacity,
    length: cache.length,
    kvHeads,
    headDim: d,
    keys: cache.keys.map(copy),
    values: cache.values.map(copy),
    valid,
  };
}
