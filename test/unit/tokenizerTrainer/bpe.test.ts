import * as assert from 'node:assert/strict';
import { trainBpe } from '../../../scripts/tokenizer/bpe';

const symbols = 'bghnpsu';
const word = (text: string) => Array.from(text, (char) => symbols.indexOf(char));
const name = (id: number, merged: string[]) =>
  id < symbols.length ? symbols[id] : merged[id - symbols.length];

describe('tokenizer trainer: BPE merges', () => {
  it('learns the most frequent pairs first, in the textbook order', () => {
    // hug x10, pug x5, pun x12, bun x4, hugs x5: pair counts ug 20, pu 17, un 16, hu 15.
    const texts = ['hug', 'pug', 'pun', 'bun', 'hugs'];
    const counts = [10, 5, 12, 4, 5];
    const { merges, mergeCounts } = trainBpe(texts.map(word), counts, symbols.length, 3);
    const merged: string[] = [];
    for (const [left, right] of merges) merged.push(name(left, merged) + name(right, merged));
    // After "ug": un 16, h+ug 15, p+u 12.
    assert.deepEqual(merged, ['ug', 'un', 'hug']);
    assert.deepEqual(mergeCounts, [20, 16, 15]);
  });

  it('merges overlapping runs left to right, as the encoder does', () => {
    const { merges, mergeCounts } = trainBpe([word('uuuuu')], [3], symbols.length, 2);
    const uu = symbols.length;
    // "uuuuu" -> [uu, uu, u]; then (uu, uu) occurs 3 times and (uu, u) 3 times: the tie goes
    // to the smaller pair key, (uu, u).
    assert.deepEqual(merges, [
      [symbols.indexOf('u'), symbols.indexOf('u')],
      [uu, symbols.indexOf('u')],
    ]);
    assert.deepEqual(mergeCounts, [12, 3]);
  });

  it('stops when no pair occurs twice, and is deterministic', () => {
    const make = () => [word('hug'), word('pun')];
    const first = trainBpe(make(), [1, 1], symbols.length, 10);
    assert.deepEqual(first.merges, []);
    const texts = ['hugs', 'bugs', 'pun', 'sun', 'gnu'];
    const a = trainBpe(texts.map(word), [3, 3, 2, 2, 1], symbols.length, 5);
    const b = trainBpe(texts.map(word), [3, 3, 2, 2, 1], symbols.length, 5);
    assert.deepEqual(a, b);
    assert.ok(a.merges.length > 0);
  });
});
