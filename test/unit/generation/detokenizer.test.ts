import * as assert from 'assert';
import { completePrefixLength, StreamingDetokenizer } from '../../../src/generation/detokenizer';

describe('streaming detokenizer', () => {
  it('never emits half a UTF-8 character', () => {
    const text = 'a€b😀\tc\r\n';
    const bytes = Buffer.from(text, 'utf8');
    // One byte per token: the worst case for splitting characters.
    const detokenizer = new StreamingDetokenizer((id) => Uint8Array.of(id));
    const chunks: string[] = [];
    for (const b of bytes) chunks.push(detokenizer.push(b));
    assert.ok(chunks.every((c) => !c.includes('\uFFFD')));
    assert.strictEqual(chunks.join(''), text);
    assert.strictEqual(detokenizer.heldBack, 0);
    assert.deepStrictEqual(chunks.slice(1, 4), ['', '', '€']);
  });

  it('holds back only incomplete tails', () => {
    assert.strictEqual(completePrefixLength([0x61, 0xe2, 0x82]), 1);
    assert.strictEqual(completePrefixLength([0x61, 0xe2, 0x82, 0xac]), 4);
    assert.strictEqual(completePrefixLength([0xf0, 0x9f, 0x98]), 0);
    assert.strictEqual(completePrefixLength([0x80, 0x80, 0x80, 0x80, 0x80]), 5);
  });
});
