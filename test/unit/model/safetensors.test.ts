import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  encodeSafetensors,
  parseSafetensorsBuffer,
  readSafetensorsHeader,
  readTensorF32,
  writeSafetensors,
} from '../../../src/model/safetensors';

/** Builds a safetensors file from a raw header object and a data buffer (no validation). */
function raw(header: object, data: Buffer, pad = 0): Buffer {
  const json = Buffer.concat([Buffer.from(JSON.stringify(header)), Buffer.alloc(pad, 0x20)]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, data]);
}

describe('safetensors (C1 header validation)', () => {
  let dir: string;
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-'))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('(a) recognises a Git LFS pointer file without allocating', () => {
    const file = path.join(dir, 'model.safetensors');
    const pointer =
      'version https://git-lfs.github.com/spec/v1\n' +
      'oid sha256:4665a5ef2d8c1d3f6e8f0e5f0c4a6b3b2a1d0c9e8f7a6b5c4d3e2f1a0b9c8d7e\nsize 123456\n';
    fs.writeFileSync(file, pointer);
    assert.strictEqual(fs.statSync(file).size, 131);
    assert.throws(() => readSafetensorsHeader(file), /Git LFS pointer, not weights/);
  });

  it('(b, c, d, f) loads valid edge cases', () => {
    const bf16 = raw(
      { __metadata__: { format: 'pt' }, w: { dtype: 'BF16', shape: [2], data_offsets: [0, 4] } },
      Buffer.from([0x80, 0x3f, 0x00, 0xc0]),
    );
    const b = parseSafetensorsBuffer(bf16);
    assert.strictEqual(b.metadata.format, 'pt');
    assert.deepStrictEqual(b.tensors.get('w')?.shape, [2]);
    const empty = raw(
      { __metadata__: {}, w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } },
      Buffer.alloc(4),
    );
    assert.strictEqual(parseSafetensorsBuffer(empty).tensors.size, 1);
    assert.strictEqual(
      parseSafetensorsBuffer(raw({ __metadata__: { a: 'b' } }, Buffer.alloc(0))).tensors.size,
      0,
    );
    const padded = raw(
      { w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } },
      Buffer.alloc(4),
      7,
    );
    assert.strictEqual(parseSafetensorsBuffer(padded).tensors.size, 1);
  });

  it('(e) rejects non-string metadata values, naming the key', () => {
    assert.throws(
      () => parseSafetensorsBuffer(raw({ __metadata__: { step: 5 } }, Buffer.alloc(0))),
      /__metadata__\.step is 5; metadata values must be strings/,
    );
  });

  it('(g) rejects a size mismatch', () => {
    const file = raw(
      { w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } },
      Buffer.alloc(12),
    );
    assert.throws(() => parseSafetensorsBuffer(file), /size mismatch.*12 bytes.*needs 16/);
  });

  it('(h) rejects offsets past the end of the file', () => {
    const file = raw({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, Buffer.alloc(8));
    assert.throws(() => parseSafetensorsBuffer(file), /truncated file/);
  });

  it('(i) rejects overlapping ranges, gaps and trailing bytes', () => {
    const overlap = raw(
      {
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
      },
      Buffer.alloc(12),
    );
    assert.throws(() => parseSafetensorsBuffer(overlap), /overlapping tensor data/);
    const gap = raw({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, Buffer.alloc(8));
    assert.throws(() => parseSafetensorsBuffer(gap), /unindexed gap of 4 bytes/);
    const trailing = raw(
      { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } },
      Buffer.alloc(8),
    );
    assert.throws(() => parseSafetensorsBuffer(trailing), /4 unindexed bytes/);
  });

  it('rejects a header length larger than the file and unknown dtypes', () => {
    const bytes = Buffer.alloc(16);
    bytes.writeBigUInt64LE(BigInt(2) ** BigInt(40));
    assert.throws(
      () => parseSafetensorsBuffer(bytes),
      /header length 1099511627776 exceeds file size 16/,
    );
    const dtype = raw(
      { a: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } },
      Buffer.alloc(1),
    );
    assert.throws(() => parseSafetensorsBuffer(dtype), /dtype "F8_E4M3"; supported: F64, F32/);
  });

  it('round-trips F32, F16 and BF16 through the writer', () => {
    const values = Float32Array.from([1, -2.5, 0.333251953125, 65504, 1e-7, 0]);
    const file = path.join(dir, 'rt.safetensors');
    writeSafetensors(
      file,
      {
        a: { dtype: 'F32', shape: [2, 3], data: values },
        b: { dtype: 'F16', shape: [6], data: values },
        c: { dtype: 'BF16', shape: [6], data: values },
      },
      { format: 'pt' },
    );
    const header = readSafetensorsHeader(file);
    assert.deepStrictEqual([...readTensorF32(header, 'a')], [...values]);
    const f16 = readTensorF32(header, 'b');
    const bf16 = readTensorF32(header, 'c');
    for (let i = 0; i < values.length; i++) {
      assert.ok(Math.abs(f16[i] - values[i]) <= Math.abs(values[i]) * 1e-3 + 6e-8, `f16 ${i}`);
      assert.ok(Math.abs(bf16[i] - values[i]) <= Math.abs(values[i]) * 4e-3, `bf16 ${i}`);
    }
    assert.strictEqual(encodeSafetensors({}).length % 8, 0);
  });

  it('reads the bf16 fixture shards written by the Python script', () => {
    const fixture = path.join(
      __dirname,
      '../../fixtures/model/tiny-qwen2/model-00001-of-00002.safetensors',
    );
    const header = readSafetensorsHeader(fixture);
    assert.ok(header.tensors.size > 0);
    for (const entry of header.tensors.values()) assert.strictEqual(entry.dtype, 'BF16');
  });
});
