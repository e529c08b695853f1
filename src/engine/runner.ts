/**
 * Runs built models in onnxruntime-node. One InferenceSession per model, created once and
 * reused for every run; inputs are checked against the model's declared dtypes and shapes
 * before session.run, so a wrong feed is a typed JS error, never a native abort.
 */
import * as ort from 'onnxruntime-node';
import { Dim, dimSymbols, dimCoefficient, formatShape } from './dims';
import { arrayMatchesDType, arrayTypeName, DType, TypedArray } from './dtype';
import type { BuiltModel, TensorSpec } from './graph';

/** A tensor with data on the host: what goes into and comes out of a run. */
export interface HostTensor {
  dtype: DType;
  shape: number[];
  data: TypedArray;
}

export interface SessionConfig {
  /** Intra-op threads for kernels (default 1). */
  threads?: number;
  /** onnxruntime graph optimization level (default 'all', up to ~25% faster training steps). */
  optimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Skip weight prepacking so external weights are not copied (less memory, some speed cost). */
  disablePrepacking?: boolean;
  /** Use the CPU memory arena (default true). */
  memoryArena?: boolean;
  /**
   * Let idle pool threads spin waiting for work (default true: fastest on an idle machine).
   * Turn off when the CPU is shared, e.g. a background training job beside the editor.
   */
  spinWait?: boolean;
}

/** A feed that does not match the model's declared input. */
export class InputValidationError extends Error {
  override name = 'InputValidationError';
  constructor(
    readonly input: string,
    readonly expected: string,
    readonly got: string,
    modelName: string,
  ) {
    super(`model "${modelName}": feed "${input}": expected ${expected}, got ${got}`);
  }
}

export function hostTensor(dtype: DType, shape: number[], data: TypedArray): HostTensor {
  return { dtype, shape, data };
}

function describeFeed(value: unknown): string {
  if (value === undefined || value === null) return 'nothing';
  const t = value as Partial<HostTensor>;
  const data = t.data as unknown as
    { constructor?: { name?: string }; length?: number } | undefined;
  const dataName = data?.constructor?.name ?? typeof data;
  return `${t.dtype ?? '?'}${Array.isArray(t.shape) ? formatShape(t.shape) : '[?]'} (${dataName} of ${data?.length ?? '?'})`;
}

/**
 * Checks feeds against declared inputs: presence, dtype, host array type, rank, fixed dims,
 * consistent sizes for named dims, and data length. Returns the sizes bound to named dims.
 */
export function validateFeeds(
  modelName: string,
  specs: readonly TensorSpec[],
  feeds: Readonly<Record<string, HostTensor>>,
): Map<string, number> {
  const bound = new Map<string, number>();
  const boundBy = new Map<string, string>();
  for (const name of Object.keys(feeds)) {
    if (!specs.some((s) => s.name === name)) {
      const names = specs.map((s) => s.name).join(', ');
      throw new InputValidationError(
        name,
        `to be one of the model's inputs (${names})`,
        'an unknown feed',
        modelName,
      );
    }
  }
  for (const spec of specs) {
    const expected = `${spec.dtype}${formatShape(spec.shape)} as ${arrayTypeName(spec.dtype)}`;
    const feed = feeds[spec.name];
    const fail = (why: string): never => {
      throw new InputValidationError(
        spec.name,
        expected,
        `${describeFeed(feed)}: ${why}`,
        modelName,
      );
    };
    if (!feed || typeof feed !== 'object') fail('missing');
    if (feed.dtype !== spec.dtype) fail(`dtype ${String(feed.dtype)}`);
    if (!ArrayBuffer.isView(feed.data) || !arrayMatchesDType(feed.data, spec.dtype)) {
      fail(`data must be a ${arrayTypeName(spec.dtype)}`);
    }
    if (!Array.isArray(feed.shape) || !feed.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      fail('shape must be an array of non-negative integers');
    }
    if (feed.shape.length !== spec.shape.length)
      fail(`rank ${feed.shape.length}, expected ${spec.shape.length}`);
    const size = feed.shape.reduce((a, b) => a * b, 1);
    if (feed.data.length !== size) fail(`${feed.data.length} values for ${size} elements`);
    spec.shape.forEach((dim: Dim, axis) => {
      const actual = feed.shape[axis];
      if (typeof dim === 'number') {
        if (actual !== dim) fail(`dim ${axis} is ${actual}, expected ${dim}`);
        return;
      }
      const symbols = dimSymbols(dim);
      if (symbols.length === 1 && dimCoefficient(dim) === 1) {
        const previous = bound.get(dim);
        if (previous !== undefined && previous !== actual) {
          fail(
            `dim ${axis} ("${dim}") is ${actual}, but "${boundBy.get(dim)}" bound "${dim}" to ${previous}`,
          );
        }
        bound.set(dim, actual);
        boundBy.set(dim, spec.name);
      }
    });
  }
  return bound;
}

/** A session for one built model: created once, run many times. */
export class EngineSession {
  private released = false;

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly modelName: string,
    readonly inputs: readonly TensorSpec[],
    readonly outputs: readonly TensorSpec[],
  ) {}

  static async create(model: BuiltModel, config: SessionConfig = {}): Promise<EngineSession> {
    const options = sessionOptions(config);
    if (model.externalDataDir) {
      // Models built in memory have no folder of their own: external data resolves from here.
      (
        options.extra!.session as Record<string, string>
      ).model_external_initializers_file_folder_path = model.externalDataDir;
    }
    const session = await ort.InferenceSession.create(model.bytes, options);
    return new EngineSession(session, model.name, model.inputs, model.outputs);
  }

  /** Opens an .onnx file; inputs are validated against the file's declared metadata. */
  static async fromFile(path: string, config: SessionConfig = {}): Promise<EngineSession> {
    const session = await ort.InferenceSession.create(path, sessionOptions(config));
    const specs = (metadata: readonly ort.InferenceSession.ValueMetadata[]): TensorSpec[] =>
      metadata.map((m) => {
        if (!m.isTensor)
          throw new Error(`${path}: value "${m.name}" is not a tensor; only tensors are supported`);
        return {
          name: m.name,
          dtype: fromOrtType(m.type, `${path}: "${m.name}"`),
          shape: [...m.shape],
        };
      });
    return new EngineSession(
      session,
      path,
      specs(session.inputMetadata),
      specs(session.outputMetadata),
    );
  }

  /**
   * Validates feeds (throws InputValidationError) and runs; returns the requested outputs.
   * Outputs named in `into` are written into those tensors (no allocation or copy); each must
   * have the output's dtype and exactly its size, and must not also be a feed.
   */
  async run(
    feeds: Readonly<Record<string, HostTensor>>,
    outputNames?: readonly string[],
    into?: Readonly<Record<string, HostTensor>>,
  ): Promise<Record<string, HostTensor>> {
    if (this.released) throw new Error(`model "${this.modelName}": session was released`);
    validateFeeds(this.modelName, this.inputs, feeds);
    const names = outputNames ?? this.outputs.map((o) => o.name);
    const fetches: Record<string, ort.Tensor | null> = {};
    for (const n of names) {
      const spec = this.outputs.find((o) => o.name === n);
      if (!spec) {
        throw new Error(
          `model "${this.modelName}": no output "${n}" (outputs: ${this.outputs.map((o) => o.name).join(', ')})`,
        );
      }
      const target = into?.[n];
      if (target) {
        if (target.dtype !== spec.dtype || !arrayMatchesDType(target.data, spec.dtype)) {
          throw new Error(
            `model "${this.modelName}": output buffer for "${n}" must be ${spec.dtype}`,
          );
        }
        if (Object.values(feeds).some((f) => f.data.buffer === target.data.buffer)) {
          throw new Error(`model "${this.modelName}": output buffer for "${n}" is also a feed`);
        }
      }
      fetches[n] = target ? toOrt(target) : null;
    }
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = toOrt(t);
    const results = await this.session.run(ortFeeds, fetches);
    const out: Record<string, HostTensor> = {};
    for (const n of names) {
      const target = into?.[n];
      if (target) {
        out[n] = target;
        continue;
      }
      const r = results[n] as ort.Tensor;
      out[n] = { dtype: fromOrtType(r.type, n), shape: [...r.dims], data: r.data as TypedArray };
    }
    return out;
  }

  /** Frees the native session; later runs throw. Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
  }
}

function toOrt(t: HostTensor): ort.Tensor {
  return new ort.Tensor(t.dtype as ort.Tensor.Type, t.data as ort.Tensor.DataType, t.shape);
}

function sessionOptions(config: SessionConfig): ort.InferenceSession.SessionOptions {
  const threads = config.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) {
    throw new Error(`SessionConfig.threads must be a positive integer, got ${threads}`);
  }
  // Null-prototype objects: the native binding enumerates inherited properties of `extra`,
  // so a polluted Object.prototype elsewhere in the process must not reach it.
  const entries: Record<string, string> = Object.create(null);
  if (config.disablePrepacking) entries.disable_prepacking = '1';
  if (config.spinWait === false) {
    entries['intra_op.allow_spinning'] = '0';
    entries['inter_op.allow_spinning'] = '0';
  }
  return {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: config.optimizationLevel ?? 'all',
    enableCpuMemArena: config.memoryArena ?? true,
    extra: Object.assign(Object.create(null), { session: entries }),
  };
}

function fromOrtType(type: string, where: string): DType {
  const map: Record<string, DType> = {
    float32: 'float32',
    float64: 'float64',
    float16: 'float16',
    int64: 'int64',
    int32: 'int32',
    int8: 'int8',
    uint8: 'uint8',
    bool: 'bool',
  };
  const d = map[type];
  if (!d) throw new Error(`${where}: tensor type ${type} is not supported by the engine`);
  return d;
}
