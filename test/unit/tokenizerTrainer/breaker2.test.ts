import * as assert from 'assert';
import { editorCut } from '../../../scripts/pretrain/data';

describe('breaker 2: editorCut edge cases', () => {
  it('never moves a cut forward: a cut at 0 stays at 0 when the text starts with a newline', () => {
    for (const draw of [0.1, 0.5, 0.9]) assert.strictEqual(editorCut('\nfoo()', 0, draw), 0);
  });

  it('never cuts inside a UTF-16 surrogate pair (a cursor cannot stand there)', () => {
    const text = 'const s = "😀";\n';
    const inside = text.indexOf('😀') + 1; // between the high and the low surrogate
    for (const draw of [0.5, 0.9]) {
      const at = editorCut(text, inside, draw);
      assert.strictEqual(at, inside - 1, `draw ${draw}`);
      // Both sides stay well-formed text, so encoding them loses nothing.
      assert.strictEqual(Buffer.from(text.slice(0, at)).toString(), text.slice(0, at));
      assert.strictEqual(Buffer.from(text.slice(at)).toString(), text.slice(at));
    }
  });

  it('never cuts between the CR and LF of a CRLF line ending', () => {
    const text = 'a = 1;\r\nb = 2;\r\n';
    const inside = text.indexOf('\n');
    for (const draw of [0.5, 0.9]) assert.strictEqual(editorCut(text, inside, draw), inside - 1);
  });
});
