/**
 * Reward and value heads (a [hidden] weight vector and a scalar bias) saved as small F32
 * safetensors files, `reward_head.safetensors` and `value_head.safetensors`, next to the PEFT
 * adapter. Failure kind R5: a head must round-trip bitwise (the SHA-256 of the tensor bytes is
 * stored in the header metadata and checked on load), and a missing head file is an error, never
 * a silent re-init: a fresh head would score (or estimate values) at random.
 */
import * as fs from 'fs';
import * as path from 'path';
import { sha256, writeFileAtomic } from './checkpoint';

export interface Head {
  /** [hidden] */
  weight: Float32Array;
  /** [1] */
  bias: Float32Array;
}

export type HeadKind = 'reward' | 'value';

export function headFileName(kind: HeadKind): string {
  return `${kind}_head.safetensors`;
}

function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** SHA-256 over weight bytes then bias bytes, little-endian F32. */
export function headDigest(head: Head): string {
  const joined = new Uint8Array(head.weight.byteLength + head.bias.byteLength);
  joined.set(bytesOf(head.weight), 0);
  joined.set(bytesOf(head.bias), head.weight.byteLength);
  return sha256(joined);
}

/** Serialises a head to safetensors bytes (the layout is the safetensors spec). */
export function encodeHead(head: Head, kind: HeadKind): Uint8Array {
  if (head.bias.length !== 1)
    throw new Error(`${kind} head bias must have 1 element, got ${head.bias.length}`);
  const hidden = head.weight.length;
  const header: Record<string, unknown> = {
    __metadata__: { format: 'pt', head: kind, sha256: headDigest(head) },
    weight: { dtype: 'F32', shape: [1, hidden], data_offsets: [0, hidden * 4] },
    bias: { dtype: 'F32', shape: [1], data_offsets: [hidden * 4, hidden * 4 + 4] },
  };
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += ' '; // spec allows trailing-space padding
  const headerBytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + headerBytes.length + hidden * 4 + 4);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  const data = new DataView(out.buffer, 8 + headerBytes.length);
  head.weight.forEach((v, i) => data.setFloat32(4 * i, v, true));
  data.setFloat32(4 * hidden, head.bias[0], true);
  return out;
}

export function decodeHead(bytes: Uint8Array, source: string, expectedHidden?: number): Head {
  const fail = (why: string): never => {
    throw new Error(`head file ${source}: ${why}`);
  };
  if (bytes.length < 8) fail(`only ${bytes.length} bytes; not a safetensors file`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > bytes.length - 8)
    fail(`header length ${headerLength} exceeds file size ${bytes.length}`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> & {
    __metadata__?: Record<string, string>;
  };
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLength)).toString('utf8'));
  } catch (error) {
    return fail(`header is not JSON (${(error as Error).message})`);
  }
  const dataStart = 8 + headerLength;
  const tensor = (name: string): Float32Array => {
    const info = header[name];
    if (!info || typeof info !== 'object') return fail(`missing tensor "${name}"`);
    if (info.dtype !== 'F32') fail(`tensor "${name}" has dtype ${info.dtype}; expected F32`);
    const [begin, end] = info.data_offsets;
    const count = info.shape.reduce((a, b) => a * b, 1);
    if (end - begin !== count * 4)
      fail(`tensor "${name}" size mismatch: ${end - begin} != ${count * 4}`);
    if (dataStart + end > bytes.length)
      fail(`tensor "${name}" runs past the end of the file (truncated)`);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(dataStart + begin + 4 * i, true);
    return out;
  };
  const head = { weight: tensor('weight'), bias: tensor('bias') };
  if (expectedHidden !== undefined && head.weight.length !== expectedHidden) {
    fail(`weight has ${head.weight.length} elements; the model's hidden size is ${expectedHidden}`);
  }
  const stored = header.__metadata__?.sha256;
  if (stored !== undefined && stored !== headDigest(head)) {
    fail(`tensor bytes do not match the stored sha256 ${stored.slice(0, 12)}...`);
  }
  return head;
}

export function saveHead(dir: string, kind: HeadKind, head: Head): string {
  const file = path.join(dir, headFileName(kind));
  writeFileAtomic(file, encodeHead(head, kind));
  return file;
}

export class HeadNotFoundError extends Error {}

export interface LoadedHead {
  head: Head;
  file: string;
}

/** What to do about a missing head, by where heads of that kind are loaded from. */
const MISSING_HEAD_ADVICE: Record<HeadKind, (dir: string) => string> = {
  // Loaded from a reward model run's output folder (the scorer of PPO, the gate, eval).
  reward: (dir) =>
    `${dir} is not a complete reward model: point at the output folder of a reward model run ` +
    '(the "reward-model" folder in its run folder) with all its files, or train the reward ' +
    'model again',
  // Loaded from a PPO checkpoint when resuming: the checkpoint lacks it.
  value: (dir) =>
    `the checkpoint ${dir} holds no value head, so PPO cannot continue from it; start PPO ` +
    'again in a new run folder',
};

/** Loads a head; a missing file throws HeadNotFoundError naming it and what to do. */
export function loadHead(dir: string, kind: HeadKind, hidden: number): LoadedHead {
  const file = path.join(dir, headFileName(kind));
  if (!fs.existsSync(file)) {
    throw new HeadNotFoundError(
      `${kind} head not found at ${file}; refusing to continue with a freshly initialized ` +
        `head: ${MISSING_HEAD_ADVICE[kind](dir)}`,
    );
  }
  return { head: decodeHead(fs.readFileSync(file), file, hidden), file };
}
