import * as assert from 'assert';
import { checkStop, validateStopping } from '../../../src/generation/stopping';

const settings = { stopIds: new Set([99]), stopStrings: ['\ndef '], maxNewTokens: 5, maxLines: 0 };

describe('stopping', () => {
  it('stops on a stop id and keeps the text before it', () => {
    assert.deepStrictEqual(checkStop(settings, 'x = 1', 3, 2, 99), {
      reason: 'stop-token',
      keepChars: 5,
    });
  });

  it('finds a stop string that straddles two checks and cuts before it', () => {
    assert.strictEqual(checkStop(settings, 'return 1\nde', 9, 2, 1), undefined);
    assert.deepStrictEqual(checkStop(settings, 'return 1\ndef g', 11, 3, 1), {
      reason: 'stop-string',
      keepChars: 8,
    });
  });

  it('stops after maxLines completed lines, keeping the newline', () => {
    const lines = { ...settings, maxLines: 2 };
    assert.strictEqual(checkStop(lines, 'a\nb', 0, 2, 1), undefined);
    assert.deepStrictEqual(checkStop(lines, 'a\r\nb\r\n    c', 0, 3, 1), {
      reason: 'max-lines',
      keepChars: 6,
    });
  });

  it('stops at maxNewTokens', () => {
    assert.deepStrictEqual(checkStop(settings, 'abcde', 4, 5, 1), {
      reason: 'max-tokens',
      keepChars: 5,
    });
  });

  it('rejects bad settings by name', () => {
    assert.throws(() => validateStopping({ ...settings, maxNewTokens: 0 }), /maxNewTokens/);
    assert.throws(() => validateStopping({ ...settings, maxLines: -1 }), /maxLines/);
    assert.throws(() => validateStopping({ ...settings, stopStrings: [''] }), /stopStrings\[0\]/);
  });
});
