import { gunzipSync } from 'node:zlib';

/** One regular file read from a tarball. */
export interface TarEntry {
  /** Path inside the archive, with the leading `package/` folder npm adds removed. */
  path: string;
  data: Buffer;
}

const BLOCK = 512;

function readString(block: Buffer, offset: number, length: number): string {
  const end = block.indexOf(0, offset);
  const stop = end === -1 || end > offset + length ? offset + length : end;
  return block.toString('utf8', offset, stop);
}

function readOctal(block: Buffer, offset: number, length: number, where: string): number {
  const text = readString(block, offset, length).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) {
    throw new Error(`${where}: tar header field at byte ${offset} is "${text}", expected octal`);
  }
  return parseInt(text, 8);
}

/** Parses pax extended-header records (`"<len> key=value\n"`) into a map. */
function parsePax(data: Buffer): Map<string, string> {
  const records = new Map<string, string>();
  let position = 0;
  while (position < data.length) {
    const space = data.indexOf(0x20, position);
    if (space === -1) break;
    const length = parseInt(data.toString('utf8', position, space), 10);
    if (!Number.isFinite(length) || length <= 0) break;
    const record = data.toString('utf8', space + 1, position + length - 1);
    const equals = record.indexOf('=');
    if (equals > 0) records.set(record.slice(0, equals), record.slice(equals + 1));
    position += length;
  }
  return records;
}

/**
 * Reads every regular file of a gzipped tarball (ustar, pax and GNU long names), as written
 * by `npm pack`. Links, folders and device entries are skipped.
 */
export function readTarGz(gz: Buffer, where: string): TarEntry[] {
  const tar = gunzipSync(gz);
  const entries: TarEntry[] = [];
  let offset = 0;
  let nextPath: string | undefined;
  while (offset + BLOCK <= tar.length) {
    const header = tar.subarray(offset, offset + BLOCK);
    if (header.every((byte) => byte === 0)) break;
    const size = readOctal(header, 124, 12, where);
    const type = String.fromCharCode(header[156] || 0x30);
    const dataStart = offset + BLOCK;
    const data = tar.subarray(dataStart, dataStart + size);
    if (data.length !== size) {
      throw new Error(`${where}: tar entry at byte ${offset} claims ${size} bytes past the end`);
    }
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'x') {
      nextPath = parsePax(data).get('path') ?? nextPath;
      continue;
    }
    if (type === 'L') {
      nextPath = data.toString('utf8').replace(/\0+$/, '');
      continue;
    }
    if (type === 'g') continue;
    let path = nextPath;
    nextPath = undefined;
    if (path === undefined) {
      const name = readString(header, 0, 100);
      const magic = readString(header, 257, 6);
      const prefix = magic.startsWith('ustar') ? readString(header, 345, 155) : '';
      path = prefix ? `${prefix}/${name}` : name;
    }
    if (type !== '0' && type !== '\0') continue;
    const slash = path.indexOf('/');
    entries.push({ path: slash === -1 ? path : path.slice(slash + 1), data: Buffer.from(data) });
  }
  return entries;
}
