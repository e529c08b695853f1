import * as assert from 'assert';
import {
  MessageValidationError,
  parseDashboardToHost,
  parseHostToDashboard,
} from '../../src/protocol/webviewMessages';

describe('webview message validation', () => {
  it('accepts the dashboard message types', () => {
    assert.deepStrictEqual(parseDashboardToHost({ type: 'refresh', extra: 1 }), {
      type: 'refresh',
    });
  });

  it('rejects an unknown type and names it', () => {
    assert.throws(
      () => parseDashboardToHost({ type: 'rm -rf' }),
      (error: Error) => error instanceof MessageValidationError && /"rm -rf"/.test(error.message),
    );
  });

  it('rejects a negative judgment count', () => {
    assert.throws(
      () => parseHostToDashboard({ type: 'state', judgments: -1, model: 'm', training: 'idle' }),
      /non-negative integer, got -1/,
    );
  });
});
