/**
 * Named float32 tensors packed into one buffer for checkpoints (parameters, optimizer moments,
 * the best adapter so far): a little-endian u32 header length, a JSON index
 * {name: [offset, length]} in values, then the values as little-endian float32.
 */

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

/** Reads a packTensors buffer; errors name `source` (the file it came from). */
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

/**
 * Reads a trainer's saved parameters (a checkpoint's params.bin or best.bin) for `params`: every
 * parameter must be there with its length, or the error names the first that is not. A
 * checkpoint from another LoRA shape would otherwise fail with a bare TypeError, or a shorter
 * tensor would be copied into the start of a longer one without a word.
 */
export function unpackParams(
  bytes: Uint8Array,
  source: string,
  params: ReadonlyMap<string, Float32Array>,
): Record<string, Float32Array> {
  const saved = unpackTensors(bytes, source);
  for (const [name, p] of params) {
    const found = saved[name];
    if (found?.length !== p.length) {
      const has = found === undefined ? 'has none' : `has ${found.length}`;
      throw new Error(
        `${source}: parameter "${name}" needs ${p.length} values and the checkpoint ${has}; ` +
          'was it written with another LoRA rank or targets?',
      );
    }
  }
  return saved;
}
