/**
 * The graph builder: symbolic tensors with dtype and shape, inputs, initializers (inline or
 * external data at a byte offset in a file), constants and nodes. Ops (ops/*.ts) check shapes
 * and dtypes when they are called, so a mismatch fails at build time with the op's name.
 */
import * as path from 'path';
import { canonicalDim, Dim, formatShape, Shape } from './dims';
import {
  arrayMatchesDType,
  arrayTypeName,
  DType,
  DTYPE_BYTES,
  fromValues,
  ONNX_DTYPE,
  TypedArray,
} from './dtype';
import { encodeModel } from './onnxProto';

export type AttrValue =
  | { type: 'int'; value: number }
  | { type: 'float'; value: number }
  | { type: 'string'; value: string }
  | { type: 'ints'; value: readonly number[] }
  | { type: 'floats'; value: readonly number[] }
  | { type: 'tensor'; value: ConstantData };

export interface ConstantData {
  dtype: DType;
  shape: readonly number[];
  data: TypedArray;
}

/** Backward rule of a node: gradients of its inputs given the gradients of its outputs. */
export type BackwardRule = (node: Node, dOutputs: readonly (Tensor | null)[]) => (Tensor | null)[];

export interface Node {
  readonly opType: string;
  readonly domain: string;
  readonly inputs: readonly (Tensor | null)[];
  readonly outputs: readonly Tensor[];
  readonly attrs: Readonly<Record<string, AttrValue>>;
  readonly backward?: BackwardRule;
  /** Indices of inputs that never carry a gradient (indices, shapes, masks). */
  readonly nonDifferentiable?: readonly number[];
  /**
   * When set, the backward rule returns gradients for these tensors instead of `inputs`
   * (a custom gradient that skips the nodes between them and this node's input).
   */
  readonly gradientInputs?: readonly Tensor[];
}

export type TensorKind = 'input' | 'initializer' | 'external' | 'constant' | 'node';

export class GraphBuildError extends Error {
  override name = 'GraphBuildError';
}

/** A symbolic tensor: a value in a graph under construction. */
export class Tensor {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: Shape,
    readonly kind: TensorKind,
    readonly producer: Node | null,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `${this.name}: ${this.dtype}${formatShape(this.shape)}`;
  }
}

/** Where an external initializer's bytes live: raw little-endian data in a file. */
export interface ExternalData {
  /** Absolute path of the file (e.g. a .safetensors checkpoint). */
  file: string;
  /** Byte offset of the tensor's first element in that file. */
  offset: number;
  /** Byte length; must equal product(shape) * bytes per element. */
  length: number;
}

interface InitializerEntry {
  tensor: Tensor;
  data?: TypedArray;
  external?: ExternalData;
}

/** What a built model declares for each of its inputs and outputs. */
export interface TensorSpec {
  name: string;
  dtype: DType;
  shape: Dim[];
}

/** An ONNX model (opset 18) with the declared signature the runner validates against. */
export interface BuiltModel {
  name: string;
  bytes: Uint8Array;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** Files holding external initializer data, in the order they are referenced. */
  externalFiles: string[];
  /**
   * Folder the external data locations are relative to (the runtime rejects absolute locations);
   * null when the model has no external data.
   */
  externalDataDir: string | null;
}

export const OPSET = 18;

export class Graph {
  readonly nodes: Node[] = [];
  private readonly inputs: Tensor[] = [];
  private readonly initializers = new Map<string, InitializerEntry>();
  private readonly outputs: { name: string; tensor: Tensor }[] = [];
  private readonly usedNames = new Set<string>();
  private readonly scalarCache = new Map<string, Tensor>();
  /** Where a symbolic dim name can be read at run time: the first input that declares it. */
  readonly dimSources = new Map<string, { tensor: Tensor; axis: number }>();
  /** Cache for small derived tensors (shape reads), keyed by the helper that made them. */
  readonly memo = new Map<string, Tensor>();
  private counter = 0;

  constructor(readonly name = 'graph') {}

  private claim(name: string, what: string): string {
    if (!/^[A-Za-z0-9_.:/\-[\]]+$/.test(name)) {
      throw new GraphBuildError(`${what} name "${name}" has characters outside [A-Za-z0-9_.:/-[]]`);
    }
    if (this.usedNames.has(name)) {
      throw new GraphBuildError(`${what} name "${name}" is already used in graph "${this.name}"`);
    }
    this.usedNames.add(name);
    return name;
  }

  /** A fresh unique tensor name with a readable prefix. */
  freshName(prefix: string): string {
    let name: string;
    do name = `${prefix}_${this.counter++}`;
    while (this.usedNames.has(name));
    this.usedNames.add(name);
    return name;
  }

  /** A graph input. String dims are named dynamic dimensions ("B", "T"). */
  input(name: string, dtype: DType, shape: Shape): Tensor {
    const dims = shape.map(canonicalDim);
    const tensor = new Tensor(this, this.claim(name, 'input'), dtype, dims, 'input', null);
    dims.forEach((d, axis) => {
      if (typeof d === 'string' && /^[A-Za-z_]\w*$/.test(d) && !this.dimSources.has(d)) {
        this.dimSources.set(d, { tensor, axis });
      }
    });
    this.inputs.push(tensor);
    return tensor;
  }

  /** An initializer whose data is stored inside the model. */
  initializer(name: string, dtype: DType, shape: readonly number[], data: TypedArray): Tensor {
    checkData(`initializer "${name}"`, dtype, shape, data);
    const tensor = new Tensor(
      this,
      this.claim(name, 'initializer'),
      dtype,
      shape,
      'initializer',
      null,
    );
    this.initializers.set(name, { tensor, data });
    return tensor;
  }

  /**
   * An initializer whose bytes stay in a file (e.g. a safetensors checkpoint) at a byte offset.
   * float16/bfloat16 data is cast to `castTo` (default float32) inside the graph, since the CPU
   * runtime has no bf16 kernels; the returned tensor is the cast result.
   */
  externalInitializer(
    name: string,
    dtype: DType,
    shape: readonly number[],
    external: ExternalData,
    options: { castTo?: DType } = {},
  ): Tensor {
    const bytes = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
    if (external.length !== bytes) {
      throw new GraphBuildError(
        `external initializer "${name}": ${dtype}${formatShape(shape)} needs ${bytes} bytes, ` +
          `but ${external.file} @ ${external.offset} gives ${external.length}`,
      );
    }
    if (!Number.isInteger(external.offset) || external.offset < 0) {
      throw new GraphBuildError(`external initializer "${name}": bad offset ${external.offset}`);
    }
    if (!external.file.startsWith('/') && !/^[A-Za-z]:[\\/]/.test(external.file)) {
      throw new GraphBuildError(
        `external initializer "${name}": file "${external.file}" must be an absolute path`,
      );
    }
    const raw = new Tensor(this, this.claim(name, 'initializer'), dtype, shape, 'external', null);
    this.initializers.set(name, { tensor: raw, external });
    const castTo =
      options.castTo ?? (dtype === 'float16' || dtype === 'bfloat16' ? 'float32' : dtype);
    if (castTo === dtype) return raw;
    return this.node('Cast', [raw], [{ dtype: castTo, shape }], {
      to: { type: 'int', value: ONNX_DTYPE[castTo] },
    })[0];
  }

  /** A constant tensor stored in the model (numbers are converted to `dtype`). */
  constant(
    dtype: DType,
    shape: readonly number[],
    values: TypedArray | readonly (number | bigint | boolean)[],
  ): Tensor {
    const data = ArrayBuffer.isView(values) ? values : fromValues(dtype, values);
    checkData('constant', dtype, shape, data);
    const tensor = new Tensor(this, this.freshName('const'), dtype, shape, 'constant', null);
    this.initializers.set(tensor.name, { tensor, data });
    return tensor;
  }

  /** A scalar constant (rank 0), shared between uses of the same value and dtype. */
  scalar(value: number | bigint | boolean, dtype: DType): Tensor {
    const key = `${dtype}:${String(value)}`;
    let t = this.scalarCache.get(key);
    if (!t) {
      t = this.constant(dtype, [], [value]);
      this.scalarCache.set(key, t);
    }
    return t;
  }

  /** A 1-D int64 constant (shapes, axes, starts). */
  int64s(values: readonly (number | bigint)[]): Tensor {
    const key = `i64s:${values.join(',')}`;
    let t = this.scalarCache.get(key);
    if (!t) {
      t = this.constant('int64', [values.length], values);
      this.scalarCache.set(key, t);
    }
    return t;
  }

  /** Adds a node; ops call this after checking shapes. Returns the output tensors. */
  node(
    opType: string,
    inputs: readonly (Tensor | null)[],
    outputs: readonly { dtype: DType; shape: Shape }[],
    attrs: Record<string, AttrValue> = {},
    extra: {
      backward?: BackwardRule;
      nonDifferentiable?: number[];
      domain?: string;
      gradientInputs?: Tensor[];
    } = {},
  ): Tensor[] {
    for (const t of inputs) {
      if (t && t.graph !== this) {
        throw new GraphBuildError(
          `${opType}: operand ${t.name} belongs to graph "${t.graph.name}", not "${this.name}"`,
        );
      }
    }
    const outs: Tensor[] = [];
    const node: Node = {
      opType,
      domain: extra.domain ?? '',
      inputs,
      outputs: outs,
      attrs,
      backward: extra.backward,
      nonDifferentiable: extra.nonDifferentiable,
      gradientInputs: extra.gradientInputs,
    };
    for (const o of outputs) {
      outs.push(
        new Tensor(
          this,
          this.freshName(opType.toLowerCase()),
          o.dtype,
          o.shape.map(canonicalDim),
          'node',
          node,
        ),
      );
    }
    this.nodes.push(node);
    return outs;
  }

  /** Marks `tensor` as a graph output called `name`. */
  output(name: string, tensor: Tensor): void {
    if (tensor.graph !== this)
      throw new GraphBuildError(`output "${name}": tensor from another graph`);
    if (this.outputs.some((o) => o.name === name)) {
      throw new GraphBuildError(`output "${name}" is declared twice`);
    }
    this.claim(name, 'output');
    this.outputs.push({ name, tensor });
  }

  getInputs(): readonly Tensor[] {
    return this.inputs;
  }

  getOutputs(): readonly { name: string; tensor: Tensor }[] {
    return this.outputs;
  }

  /**
   * Serializes the nodes needed by the outputs. `outputs` selects a subset of the declared
   * outputs; `pruneInputs` then drops inputs those outputs do not read (the runner only expects
   * the remaining ones).
   */
  build(options: { outputs?: readonly string[]; pruneInputs?: boolean } = {}): BuiltModel {
    const selected = options.outputs
      ? options.outputs.map((name) => {
          const found = this.outputs.find((o) => o.name === name);
          if (!found) throw new GraphBuildError(`graph "${this.name}" has no output "${name}"`);
          return found;
        })
      : this.outputs;
    if (selected.length === 0) throw new GraphBuildError(`graph "${this.name}" has no outputs`);
    const needed = new Set<Node>();
    const neededTensors = new Set<string>();
    const stack: Tensor[] = selected.map((o) => o.tensor);
    while (stack.length > 0) {
      const t = stack.pop()!;
      if (neededTensors.has(t.name)) continue;
      neededTensors.add(t.name);
      if (t.producer && !needed.has(t.producer)) {
        needed.add(t.producer);
        for (const i of t.producer.inputs) if (i) stack.push(i);
      }
    }
    // A node-produced output takes its public name directly (an Identity would copy it); the
    // same tensor under a second name, or an input/initializer, goes through Identity.
    const renamed = new Map<string, string>();
    for (const o of selected) {
      if (o.tensor.producer && !renamed.has(o.tensor.name)) renamed.set(o.tensor.name, o.name);
    }
    const nameOf = (t: Tensor) => renamed.get(t.name) ?? t.name;
    const nodes: EmittedNode[] = [];
    for (const n of this.nodes) {
      if (!needed.has(n)) continue;
      nodes.push({
        opType: n.opType,
        domain: n.domain,
        inputs: n.inputs.map((t) => (t ? nameOf(t) : '')),
        outputs: n.outputs.map(nameOf),
        attrs: n.attrs,
      });
    }
    const outputSpecs: TensorSpec[] = [];
    for (const o of selected) {
      if (nameOf(o.tensor) !== o.name) {
        nodes.push({
          opType: 'Identity',
          domain: '',
          inputs: [nameOf(o.tensor)],
          outputs: [o.name],
          attrs: {},
        });
      }
      outputSpecs.push({ name: o.name, dtype: o.tensor.dtype, shape: [...o.tensor.shape] });
    }
    const initializers = [...this.initializers.values()].filter((e) =>
      neededTensors.has(e.tensor.name),
    );
    const externalFiles = [
      ...new Set(initializers.flatMap((e) => (e.external ? [e.external.file] : []))),
    ];
    const externalDataDir = externalFiles.length > 0 ? commonDirectory(externalFiles) : null;
    const inputs = (
      options.pruneInputs ? this.inputs.filter((t) => neededTensors.has(t.name)) : this.inputs
    ).map(specOf);
    const bytes = encodeModel({
      name: this.name,
      opset: OPSET,
      nodes,
      inputs,
      outputs: outputSpecs,
      initializers: initializers.map((e) => ({
        name: e.tensor.name,
        dtype: e.tensor.dtype,
        shape: e.tensor.shape as number[],
        data: e.data,
        external: e.external && {
          ...e.external,
          file: path.relative(externalDataDir!, e.external.file).split(path.sep).join('/'),
        },
      })),
    });
    return {
      name: this.name,
      bytes,
      inputs,
      outputs: outputSpecs,
      externalFiles,
      externalDataDir,
    };
  }
}

export interface EmittedNode {
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Readonly<Record<string, AttrValue>>;
}

function commonDirectory(files: readonly string[]): string {
  let dir = path.dirname(path.resolve(files[0]));
  for (const f of files) {
    const resolved = path.resolve(f);
    while (!resolved.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep))
      dir = path.dirname(dir);
  }
  return dir;
}

function specOf(t: Tensor): TensorSpec {
  return { name: t.name, dtype: t.dtype, shape: [...t.shape] };
}

function checkData(what: string, dtype: DType, shape: readonly number[], data: TypedArray): void {
  if (!arrayMatchesDType(data, dtype)) {
    throw new GraphBuildError(
      `${what}: ${dtype} data must be a ${arrayTypeName(dtype)}, got ${data.constructor.name}`,
    );
  }
  const size = shape.reduce((a, b) => a * b, 1);
  if (!shape.every((d) => Number.isInteger(d) && d >= 0) || data.length !== size) {
    throw new GraphBuildError(
      `${what}: shape ${formatShape(shape)} needs ${size} values, got ${data.length}`,
    );
  }
}
