/**
 * Streaming detokenizer: turns token ids into text as they arrive, holding back the bytes of a
 * UTF-8 character until all of them are there, so no half character is ever emitted.
 */

export class StreamingDetokenizer {
  private pending: number[] = [];
  // ignoreBOM keeps a U+FEFF that starts a chunk (the default would silently drop it).
  private readonly decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  /** Text emitted so far. */
  text = '';
  /** Byte length of `text` plus the held-back bytes, after each pushed token. */
  readonly byteEnds: number[] = [];
  /**
   * Length of `text` (UTF-16 code units) after each pushed token. Unlike `byteEnds` this stays
   * right when invalid bytes were replaced by U+FFFD (1 byte in, 3 bytes of text out).
   */
  readonly textEnds: number[] = [];
  private bytes = 0;

  constructor(private readonly tokenBytes: (id: number) => Uint8Array) {}

  /** Adds one token; returns the text it completes (possibly empty). */
  push(id: number): string {
    const bytes = this.tokenBytes(id);
    for (const b of bytes) this.pending.push(b);
    this.bytes += bytes.length;
    this.byteEnds.push(this.bytes);
    const complete = completePrefixLength(this.pending);
    if (complete === 0) {
      this.textEnds.push(this.text.length);
      return '';
    }
    const chunk = this.decoder.decode(Uint8Array.from(this.pending.slice(0, complete)));
    this.pending = this.pending.slice(complete);
    this.text += chunk;
    this.textEnds.push(this.text.length);
    return chunk;
  }

  /** Bytes held back because they do not yet form a whole character. */
  get heldBack(): number {
    return this.pending.length;
  }
}

/**
 * Length of the longest prefix that does not end inside a UTF-8 sequence. A lead byte whose
 * continuation bytes have not all arrived is held back; invalid bytes are let through (the
 * decoder turns them into U+FFFD) so that garbage cannot stall the stream.
 */
export function completePrefixLength(bytes: readonly number[]): number {
  const n = bytes.length;
  for (let back = 1; back <= Math.min(4, n); back++) {
    const b = bytes[n - back];
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const need = b >= 0xf0 && b < 0xf8 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}
