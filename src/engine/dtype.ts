/** Element types the engine knows, with their ONNX TensorProto codes and host array types. */

export type DType =
  'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

/** ONNX TensorProto.DataType values (onnx.proto). */
export const ONNX_DTYPE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
  bfloat16: 16,
};

export const DTYPE_BYTES: Record<DType, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int8: 1,
  uint8: 1,
  bool: 1,
};

export type TypedArray =
  Float32Array | Float64Array | BigInt64Array | Int32Array | Int8Array | Uint8Array | Uint16Array;

/** The host array type that carries each dtype (float16/bfloat16 travel as raw Uint16 bits). */
export function arrayTypeName(dtype: DType): string {
  switch (dtype) {
    case 'float32':
      return 'Float32Array';
    case 'float64':
      return 'Float64Array';
    case 'int64':
      return 'BigInt64Array';
    case 'int32':
      return 'Int32Array';
    case 'int8':
      return 'Int8Array';
    case 'uint8':
    case 'bool':
      return 'Uint8Array';
    case 'float16':
    case 'bfloat16':
      return 'Uint16Array';
  }
}

export function arrayMatchesDType(data: TypedArray, dtype: DType): boolean {
  return data.constructor.name === arrayTypeName(dtype);
}

export function isFloat(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64' || dtype === 'float16' || dtype === 'bfloat16';
}

export function allocate(dtype: DType, size: number): TypedArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(size);
    case 'float64':
      return new Float64Array(size);
    case 'int64':
      return new BigInt64Array(size);
    case 'int32':
      return new Int32Array(size);
    case 'int8':
      return new Int8Array(size);
    case 'uint8':
    case 'bool':
      return new Uint8Array(size);
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(size);
  }
}

/** Raw little-endian bytes of a host array, for TensorProto.raw_data. */
export function rawBytes(data: TypedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Fills a host array of `dtype` from JS numbers (int64 accepts numbers or bigints). */
export function fromValues(
  dtype: DType,
  values: readonly (number | bigint | boolean)[],
): TypedArray {
  const out = allocate(dtype, values.length);
  if (dtype === 'int64') {
    const target = out as BigInt64Array;
    values.forEach((v, i) => (target[i] = BigInt(v)));
  } else if (dtype === 'float16' || dtype === 'bfloat16') {
    throw new Error(`fromValues: ${dtype} constants are not supported; use float32 and Cast`);
  } else {
    const target = out as Float32Array;
    values.forEach((v, i) => (target[i] = Number(v)));
  }
  return out;
}

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  // Limitation: raw tensor bytes are written in host order; ONNX requires little-endian.
  throw new Error('code-rlhf engine: big-endian hosts are not supported');
}
