/**
 * Safetensors reading and writing.
 *
 * Layout (https://github.com/huggingface/safetensors, "Format"): 8-byte little-endian header
 * length N, N bytes of JSON header, then the data buffer. Each header entry gives dtype, shape and
 * `data_offsets` [begin, end) relative to the start of the data buffer. The reader checks what the
 * reference implementation checks: the header fits in the file, offsets are ordered, sizes match
 * the shape, the tensors tile the buffer with no overlap, gap or trailing bytes, and metadata
 * values are strings. Only the header is read eagerly; tensor bytes are read on demand, so the
 * engine can also point external-data initializers straight at the file.
 */
import * as fs from 'fs';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './floatCodec';

export type SafetensorsDtype =
  'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** The reference implementation refuses headers above 100 MB; so do we, before allocating. */
export const MAX_HEADER_BYTES = 100_000_000;

const LFS_POINTER_PREFIX = 'version https://git-lfs.github.com/spec/';

export class SafetensorsError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'SafetensorsError';
  }
}

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute byte offset of the first byte in the file. */
  fileOffset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  file: string;
  fileSize: number;
  /** Absolute offset of the data buffer (8 + header length). */
  dataStart: number;
  metadata: Record<string, string>;
  tensors: Map<string, TensorEntry>;
}

/** Reads and validates the header of a safetensors file; reads no tensor data. */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  const fd = fs.openSync(file, 'r');
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new SafetensorsError(file, 'not a regular file');
    const fileSize = stat.size;
    const head = Buffer.alloc(Math.min(fileSize, 64));
    fs.readSync(fd, head, 0, head.length, 0);
    checkPrefix(file, head, fileSize);
    const headerLength = readHeaderLength(file, head, fileSize);
    const headerBytes = Buffer.alloc(headerLength);
    fs.readSync(fd, headerBytes, 0, headerLength, 8);
    return parseHeaderJson(file, headerBytes, fileSize);
  } finally {
    fs.closeSync(fd);
  }
}

/** Validates a whole safetensors file held in memory (same checks as the file reader). */
export function parseSafetensorsBuffer(bytes: Uint8Array, source = '<buffer>'): SafetensorsHeader {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  checkPrefix(source, buffer, buffer.length);
  const headerLength = readHeaderLength(source, buffer, buffer.length);
  return parseHeaderJson(source, buffer.subarray(8, 8 + headerLength), buffer.length);
}

function checkPrefix(file: string, head: Buffer, fileSize: number): void {
  if (head.subarray(0, LFS_POINTER_PREFIX.length).toString('latin1') === LFS_POINTER_PREFIX) {
    throw new SafetensorsError(
      file,
      'this is a Git LFS pointer, not weights; run `git lfs pull` (or download the file itself)',
    );
  }
  if (fileSize < 8) {
    throw new SafetensorsError(file, `file is ${fileSize} bytes, shorter than the 8-byte header`);
  }
}

function readHeaderLength(file: string, head: Buffer, fileSize: number): number {
  const length = head.readBigUInt64LE(0);
  if (length > BigInt(fileSize - 8)) {
    throw new SafetensorsError(
      file,
      `header length ${length} exceeds file size ${fileSize} (truncated or not a safetensors file)`,
    );
  }
  if (length > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(file, `header length ${length} exceeds ${MAX_HEADER_BYTES} bytes`);
  }
  return Number(length);
}

function parseHeaderJson(file: string, headerBytes: Buffer, fileSize: number): SafetensorsHeader {
  if (headerBytes.length === 0 || headerBytes[0] !== 0x7b /* { */) {
    throw new SafetensorsError(file, 'header does not start with "{"');
  }
  let json: unknown;
  try {
    json = JSON.parse(headerBytes.toString('utf8'));
  } catch (error) {
    throw new SafetensorsError(file, `header is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new SafetensorsError(file, 'header is not a JSON object');
  }
  const dataStart = 8 + headerBytes.length;
  const dataLength = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorEntry>();
  const ranges: { name: string; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (value === null) continue;
      if (typeof value !== 'object' || Array.isArray(value)) {
        throw new SafetensorsError(file, '__metadata__ must be an object of strings');
      }
      for (const [key, entry] of Object.entries(value as Record<string, unknown>)) {
        // The reference implementation rejects non-string metadata values; we follow it.
        if (typeof entry !== 'string') {
          throw new SafetensorsError(
            file,
            `__metadata__.${key} is ${JSON.stringify(entry)}; metadata values must be strings`,
          );
        }
        metadata[key] = entry;
      }
      continue;
    }
    const entry = parseEntry(file, name, value);
    const [begin, end] = entry.offsets;
    if (end > dataLength) {
      throw new SafetensorsError(
        file,
        `truncated file: tensor "${name}" data_offsets [${begin}, ${end}] run past the end of ` +
          `the ${dataLength}-byte data buffer`,
      );
    }
    ranges.push({ name, begin, end });
    tensors.set(name, {
      name,
      dtype: entry.dtype,
      shape: entry.shape,
      fileOffset: dataStart + begin,
      byteLength: end - begin,
    });
  }
  ranges.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const range of ranges) {
    if (range.begin < cursor) {
      const previous = ranges[ranges.indexOf(range) - 1];
      throw new SafetensorsError(
        file,
        `overlapping tensor data: "${range.name}" starts at ${range.begin}, inside "${previous.name}"`,
      );
    }
    if (range.begin > cursor) {
      throw new SafetensorsError(
        file,
        `unindexed gap of ${range.begin - cursor} bytes before tensor "${range.name}"`,
      );
    }
    cursor = range.end;
  }
  if (cursor !== dataLength) {
    throw new SafetensorsError(
      file,
      `${dataLength - cursor} unindexed bytes after the last tensor (data buffer is ${dataLength})`,
    );
  }
  return { file, fileSize, dataStart, metadata, tensors };
}

function parseEntry(
  file: string,
  name: string,
  value: unknown,
): { dtype: SafetensorsDtype; shape: number[]; offsets: [number, number] } {
  if (typeof value !== 'object' || value === null) {
    throw new SafetensorsError(file, `tensor "${name}" entry is not an object`);
  }
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
    throw new SafetensorsError(
      file,
      `tensor "${name}" has dtype ${JSON.stringify(dtype)}; supported: ${Object.keys(DTYPE_BYTES).join(', ')}`,
    );
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new SafetensorsError(file, `tensor "${name}" shape ${JSON.stringify(shape)} is invalid`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
  ) {
    throw new SafetensorsError(
      file,
      `tensor "${name}" data_offsets ${JSON.stringify(offsets)} must be two non-negative integers`,
    );
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) {
    throw new SafetensorsError(file, `tensor "${name}" data_offsets begin ${begin} > end ${end}`);
  }
  const typed = dtype as SafetensorsDtype;
  const expected = shape.reduce((a: number, b: number) => a * b, 1) * DTYPE_BYTES[typed];
  if (end - begin !== expected) {
    throw new SafetensorsError(
      file,
      `tensor "${name}" size mismatch: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, ` +
        `${typed} ${JSON.stringify(shape)} needs ${expected}`,
    );
  }
  return { dtype: typed, shape: shape as number[], offsets: [begin, end] };
}

/** Reads a tensor's raw bytes. */
export function readTensorBytes(header: SafetensorsHeader, name: string): Buffer {
  const entry = header.tensors.get(name);
  if (!entry) throw new SafetensorsError(header.file, `no tensor named "${name}"`);
  const bytes = Buffer.alloc(entry.byteLength);
  const fd = fs.openSync(header.file, 'r');
  try {
    let read = 0;
    while (read < entry.byteLength) {
      const n = fs.readSync(fd, bytes, read, entry.byteLength - read, entry.fileOffset + read);
      if (n === 0) {
        throw new SafetensorsError(
          header.file,
          `truncated file: tensor "${name}" needs bytes up to ${entry.fileOffset + entry.byteLength}` +
            `, the file ends at ${entry.fileOffset + read} (was it replaced after loading?)`,
        );
      }
      read += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return bytes;
}

/** Reads a floating-point tensor and widens it to float32. */
export function readTensorF32(header: SafetensorsHeader, name: string): Float32Array {
  const entry = header.tensors.get(name);
  if (!entry) throw new SafetensorsError(header.file, `no tensor named "${name}"`);
  return decodeToF32(readTensorBytes(header, name), entry.dtype, `${header.file}: "${name}"`);
}

export function decodeToF32(
  bytes: Uint8Array,
  dtype: SafetensorsDtype,
  what: string,
): Float32Array {
  const count = bytes.byteLength / DTYPE_BYTES[dtype];
  // Copy into an aligned buffer: tensor offsets inside a safetensors file need not be aligned.
  const aligned = new Uint8Array(bytes.byteLength);
  aligned.set(bytes);
  switch (dtype) {
    case 'F32':
      return new Float32Array(aligned.buffer, 0, count);
    case 'F64':
      return Float32Array.from(new Float64Array(aligned.buffer, 0, count));
    case 'F16':
      return f16ToF32(new Uint16Array(aligned.buffer, 0, count));
    case 'BF16':
      return bf16ToF32(new Uint16Array(aligned.buffer, 0, count));
    default:
      throw new Error(`${what} has dtype ${dtype}; expected F32, F16, BF16 or F64`);
  }
}

/** A tensor to write: float data is narrowed to `dtype` (F32, F16 or BF16) on write. */
export interface TensorToWrite {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array | Int32Array | BigInt64Array | Uint8Array;
}

/** Serialises tensors (sorted by name) into safetensors bytes. */
export function encodeSafetensors(
  tensors: Record<string, TensorToWrite>,
  metadata: Record<string, string> = {},
): Buffer {
  const names = Object.keys(tensors).sort();
  const chunks: Buffer[] = [];
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const tensor = tensors[name];
    const bytes = encodeTensorData(name, tensor);
    header[name] = {
      dtype: tensor.dtype,
      shape: tensor.shape,
      data_offsets: [offset, offset + bytes.length],
    };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  // Pad with spaces to a multiple of 8 so the data buffer starts aligned, as the reference does.
  const padded = Math.ceil(json.length / 8) * 8;
  json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, ...chunks]);
}

/** Writes a safetensors file atomically (temporary file, then rename). */
export function writeSafetensors(
  file: string,
  tensors: Record<string, TensorToWrite>,
  metadata: Record<string, string> = {},
): void {
  const temporary = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(temporary, encodeSafetensors(tensors, metadata));
  fs.renameSync(temporary, file);
}

function encodeTensorData(name: string, tensor: TensorToWrite): Buffer {
  const count = tensor.shape.reduce((a, b) => a * b, 1);
  if (tensor.data.length !== count) {
    throw new Error(
      `tensor "${name}": ${tensor.data.length} values do not fill shape ${JSON.stringify(tensor.shape)}`,
    );
  }
  const { data, dtype } = tensor;
  if (data instanceof Float32Array) {
    if (dtype === 'F32')
      return Buffer.from(new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice());
    if (dtype === 'F16') return Buffer.from(f32ToF16(data).buffer);
    if (dtype === 'BF16') return Buffer.from(f32ToBf16(data).buffer);
  } else if (data instanceof Int32Array && dtype === 'I32') {
    return Buffer.from(data.slice().buffer);
  } else if (data instanceof BigInt64Array && dtype === 'I64') {
    return Buffer.from(data.slice().buffer);
  } else if (data instanceof Uint8Array && (dtype === 'U8' || dtype === 'BOOL')) {
    return Buffer.from(data.slice());
  }
  throw new Error(`tensor "${name}": cannot write ${data.constructor.name} as ${dtype}`);
}

/** A tensor written by `writeSafetensorsStreaming`: its data is produced when written. */
export interface LazyTensor {
  name: string;
  dtype: 'F32' | 'F16' | 'BF16';
  shape: number[];
  produce: () => Float32Array;
}

/**
 * Writes tensors one at a time (only one tensor's data in memory), for checkpoints larger than
 * is comfortable to assemble in one buffer. Atomic: temporary file, then rename.
 */
export function writeSafetensorsStreaming(
  file: string,
  tensors: readonly LazyTensor[],
  metadata: Record<string, string> = {},
): void {
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of sorted) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  json = Buffer.concat([json, Buffer.alloc(Math.ceil(json.length / 8) * 8 - json.length, 0x20)]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  const temporary = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(temporary, 'w');
  try {
    fs.writeSync(fd, length);
    fs.writeSync(fd, json);
    for (const t of sorted) fs.writeSync(fd, encodeTensorData(t.name, { ...t, data: t.produce() }));
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temporary, file);
}
