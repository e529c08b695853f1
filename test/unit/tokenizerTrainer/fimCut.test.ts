import * as assert from 'assert';
import { editorCut } from '../../../scripts/pretrain/data';

describe('pretraining FIM cuts (editorCut)', () => {
  const text = 'const total = sum(a);\n  return total;\n';
  const inWord = text.indexOf('otal'); // inside "total" on line 1

  it('moves a cut to the start of its line for draws below 0.45', () => {
    assert.strictEqual(editorCut(text, inWord, 0.1), 0);
    const second = text.indexOf('return') + 3;
    assert.strictEqual(editorCut(text, second, 0.44), text.indexOf('  return'));
    // A cut right after a newline is already at a line start.
    assert.strictEqual(editorCut(text, text.indexOf('  return'), 0.2), text.indexOf('  return'));
  });

  it('moves a cut out of the word it splits for draws in [0.45, 0.8)', () => {
    assert.strictEqual(editorCut(text, inWord, 0.5), text.indexOf('total'));
    // Between a word and punctuation nothing is split: the cut stays.
    const afterSum = text.indexOf('(');
    assert.strictEqual(editorCut(text, afterSum, 0.7), afterSum);
  });

  it('leaves a cut where it fell for draws of 0.8 and above, and keeps the ends', () => {
    assert.strictEqual(editorCut(text, inWord, 0.9), inWord);
    assert.strictEqual(editorCut(text, 0, 0.5), 0);
    assert.strictEqual(editorCut(text, text.length, 0.5), text.length);
    assert.strictEqual(editorCut(text, text.length, 0.1), text.length);
  });
});
