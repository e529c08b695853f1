/**
 * Encodes ONNX messages with the field numbers of onnx/onnx.proto (ModelProto, GraphProto,
 * NodeProto, AttributeProto, TensorProto, ValueInfoProto, TypeProto, TensorShapeProto).
 */
import type { AttrValue, EmittedNode, ExternalData, TensorSpec } from './graph';
import { DType, ONNX_DTYPE, rawBytes, TypedArray } from './dtype';
import { ProtoWriter } from './protobuf';

/** ONNX IR version 8 pairs with opset 18. */
const IR_VERSION = 8;

export interface ModelDescription {
  name: string;
  opset: number;
  nodes: EmittedNode[];
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  initializers: {
    name: string;
    dtype: DType;
    shape: number[];
    data?: TypedArray;
    external?: ExternalData;
  }[];
}

// AttributeProto.AttributeType
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_TENSOR = 4;
const ATTR_FLOATS = 6;
const ATTR_INTS = 7;

function writeTensor(
  w: ProtoWriter,
  t: {
    name?: string;
    dtype: DType;
    shape: readonly number[];
    data?: TypedArray;
    external?: ExternalData;
  },
): void {
  w.packedInt64(1, t.shape); // dims
  w.int32(2, ONNX_DTYPE[t.dtype]); // data_type
  if (t.name !== undefined) w.string(8, t.name);
  if (t.data) w.bytes(9, rawBytes(t.data)); // raw_data
  if (t.external) {
    const entries: [string, string][] = [
      ['location', t.external.file],
      ['offset', String(t.external.offset)],
      ['length', String(t.external.length)],
    ];
    for (const [key, value] of entries) {
      w.message(13, (e) => {
        e.string(1, key);
        e.string(2, value);
      });
    }
    w.int32(14, 1); // data_location = EXTERNAL
  }
}

function writeAttribute(w: ProtoWriter, name: string, attr: AttrValue): void {
  w.string(1, name);
  switch (attr.type) {
    case 'float':
      w.float(2, attr.value);
      w.int32(20, ATTR_FLOAT);
      break;
    case 'int':
      w.int64(3, attr.value);
      w.int32(20, ATTR_INT);
      break;
    case 'string':
      w.string(4, attr.value);
      w.int32(20, ATTR_STRING);
      break;
    case 'tensor':
      w.message(5, (t) => writeTensor(t, attr.value));
      w.int32(20, ATTR_TENSOR);
      break;
    case 'floats':
      w.packedFloat(7, attr.value);
      w.int32(20, ATTR_FLOATS);
      break;
    case 'ints':
      w.packedInt64(8, attr.value);
      w.int32(20, ATTR_INTS);
      break;
  }
}

function writeValueInfo(w: ProtoWriter, spec: TensorSpec): void {
  w.string(1, spec.name);
  w.message(2, (type) =>
    type.message(1, (tensorType) => {
      tensorType.int32(1, ONNX_DTYPE[spec.dtype]);
      tensorType.message(2, (shape) => {
        for (const d of spec.shape) {
          shape.message(1, (dim) => {
            if (typeof d === 'number') dim.int64(1, d);
            else dim.string(2, d);
          });
        }
      });
    }),
  );
}

export function encodeModel(model: ModelDescription): Uint8Array {
  const w = new ProtoWriter();
  w.int64(1, IR_VERSION);
  w.string(2, 'code-rlhf-engine');
  const domains = new Set(model.nodes.map((n) => n.domain));
  domains.add('');
  for (const domain of domains) {
    w.message(8, (o) => {
      o.string(1, domain);
      o.int64(2, domain === '' ? model.opset : 1);
    });
  }
  w.message(7, (g) => {
    for (const n of model.nodes) {
      g.message(1, (node) => {
        for (const i of n.inputs) node.string(1, i);
        for (const o of n.outputs) node.string(2, o);
        node.string(4, n.opType);
        for (const [name, attr] of Object.entries(n.attrs))
          node.message(5, (a) => writeAttribute(a, name, attr));
        if (n.domain) node.string(7, n.domain);
      });
    }
    g.string(2, model.name);
    for (const init of model.initializers) g.message(5, (t) => writeTensor(t, init));
    for (const i of model.inputs) g.message(11, (v) => writeValueInfo(v, i));
    for (const o of model.outputs) g.message(12, (v) => writeValueInfo(v, o));
  });
  return w.finish();
}
