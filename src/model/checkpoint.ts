/**
 * A Hugging Face checkpoint folder: `model.safetensors`, or the shards listed in
 * `model.safetensors.index.json` (only those; a stray file next to them is never read).
 */
import * as fs from 'fs';
import * as path from 'path';
import { ConfigError, readJsonFile } from './config';
import {
  readSafetensorsHeader,
  readTensorF32,
  SafetensorsHeader,
  SafetensorsError,
  TensorEntry,
} from './safetensors';

export interface CheckpointTensor extends TensorEntry {
  /** Absolute path of the file holding the bytes. */
  file: string;
}

export interface Checkpoint {
  dir: string;
  /** Files actually used, absolute. */
  files: string[];
  tensors: Map<string, CheckpointTensor>;
  /** Reads a float tensor as float32 (F32, F16, BF16 or F64 on disk). */
  readF32(name: string): Float32Array;
}

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

/** Opens the checkpoint's safetensors headers; reads no tensor data. */
export function openCheckpoint(dir: string): Checkpoint {
  const absolute = path.resolve(dir);
  const indexPath = path.join(absolute, INDEX_FILE);
  const headers = new Map<string, SafetensorsHeader>();
  const tensors = new Map<string, CheckpointTensor>();
  const headerOf = (file: string): SafetensorsHeader => {
    let header = headers.get(file);
    if (!header) {
      if (!fs.existsSync(file)) {
        throw new SafetensorsError(file, `shard listed in ${INDEX_FILE} does not exist`);
      }
      header = readSafetensorsHeader(file);
      headers.set(file, header);
    }
    return header;
  };

  if (fs.existsSync(indexPath)) {
    const index = readJsonFile(indexPath) as { weight_map?: unknown };
    const weightMap = index?.weight_map;
    if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
      throw new ConfigError(`${indexPath}: "weight_map" must be an object of tensor -> shard file`);
    }
    for (const [name, shard] of Object.entries(weightMap as Record<string, unknown>)) {
      if (
        typeof shard !== 'string' ||
        shard.includes('/') ||
        shard.includes('\\') ||
        shard === '' ||
        shard === '.' ||
        shard === '..'
      ) {
        throw new ConfigError(
          `${indexPath}: weight_map["${name}"] = ${JSON.stringify(shard)} must be a file name in ${absolute}`,
        );
      }
      const file = path.join(absolute, shard);
      const entry = headerOf(file).tensors.get(name);
      if (!entry) {
        throw new SafetensorsError(
          file,
          `${INDEX_FILE} maps tensor "${name}" to shard ${shard}, but that shard has no such tensor`,
        );
      }
      tensors.set(name, { ...entry, file });
    }
  } else {
    const file = path.join(absolute, SINGLE_FILE);
    if (!fs.existsSync(file)) {
      throw new ConfigError(`${absolute} has neither ${SINGLE_FILE} nor ${INDEX_FILE}`);
    }
    for (const [name, entry] of headerOf(file).tensors) tensors.set(name, { ...entry, file });
  }

  return {
    dir: absolute,
    files: [...headers.keys()],
    tensors,
    readF32(name: string): Float32Array {
      const entry = tensors.get(name);
      if (!entry) throw new ConfigError(`${absolute}: missing tensor ${name}`);
      const header = headers.get(entry.file) as SafetensorsHeader;
      return readTensorF32(header, name);
    },
  };
}
