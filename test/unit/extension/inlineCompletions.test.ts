import * as assert from 'assert';
import { DEFAULT_SETTINGS } from '../../../src/extension/config';
import type { GenerationResult } from '../../../src/extension/compareController';
import {
  InlineCompletions,
  type CancellationLike,
  type InlineDeps,
} from '../../../src/extension/inlineCompletions';
import type { ImplicitSignalRecord } from '../../../src/protocol/records';

class Token implements CancellationLike {
  isCancellationRequested = false;
  private listeners: Array<() => void> = [];
  onCancellationRequested(listener: () => void) {
    this.listeners.push(listener);
    return { dispose: () => (this.listeners = this.listeners.filter((l) => l !== listener)) };
  }
  cancel() {
    this.isCancellationRequested = true;
    for (const l of [...this.listeners]) l();
  }
}

const snap = (version: number, prefix: string) => ({
  uri: 'file:///ws/a.js',
  version,
  languageId: 'javascript',
  offset: prefix.length,
  prefix,
  suffix: '',
  eol: '\n' as const,
  workspace: 'ws',
  file: 'a.js',
  requestedAt: 0,
  storePath: '/tmp/none.jsonl',
});

function setup(generate?: InlineDeps['generate']) {
  const records: ImplicitSignalRecord[] = [];
  const versions = new Map<string, number>();
  let seq = 0;
  let calls = 0;
  const deps: InlineDeps = {
    generate:
      generate ??
      (async (request) => {
        calls++;
        return {
          candidates: [
            {
              text: `${request.prefix.length}`,
              tokenIds: [1],
              logprob: -1,
              stopReason: 'max-lines',
            },
          ],
          latencyMs: 1,
          model: 'tiny',
        };
      }),
    settings: () => DEFAULT_SETTINGS,
    documentVersion: (uri) => versions.get(uri),
    isExcluded: () => false,
    record: async (record) => {
      records.push(record);
    },
    adapter: () => null,
    annotator: () => 'me',
    log: { info() {}, warn() {}, error() {}, debug() {} },
    now: () => Date.now(),
    newId: () => `inl${++seq}`,
    debounceMs: 20,
  };
  return { inline: new InlineCompletions(deps), records, versions, calls: () => calls };
}

describe('inline completions', () => {
  it('debounces: a request cancelled while waiting never generates', async () => {
    const t = setup();
    t.versions.set('file:///ws/a.js', 1);
    const token = new Token();
    const pending = t.inline.provide(snap(1, 'x'), token);
    token.cancel();
    assert.strictEqual(await pending, undefined);
    assert.strictEqual(t.calls(), 0);
  });

  it('a suggestion overtaken by typing is not returned and not recorded', async () => {
    let release!: (r: GenerationResult) => void;
    const t = setup(() => new Promise((resolve) => (release = resolve)));
    t.versions.set('file:///ws/a.js', 1);
    const pending = t.inline.provide(snap(1, 'x'), new Token());
    await new Promise((r) => setTimeout(r, 40));
    t.versions.set('file:///ws/a.js', 2);
    release({
      candidates: [{ text: 'stale', tokenIds: [1], logprob: -1, stopReason: 'max-lines' }],
      latencyMs: 1,
      model: 'tiny',
    });
    assert.strictEqual(await pending, undefined);
    await t.inline.settle('ignored');
    assert.deepStrictEqual(t.records, []);
  });

  it('cancelRunning aborts the generation of the running request', async () => {
    let aborted = false;
    const t = setup(
      (_request, signal) =>
        new Promise<GenerationResult>((_resolve, reject) =>
          signal.addEventListener('abort', () => {
            aborted = true;
            reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
          }),
        ),
    );
    t.versions.set('file:///ws/a.js', 1);
    const pending = t.inline.provide(snap(1, 'x'), new Token());
    await new Promise((r) => setTimeout(r, 40));
    t.inline.cancelRunning();
    assert.strictEqual(await pending, undefined);
    assert.ok(aborted);
  });

  it('records accepted once, and a replaced suggestion as ignored', async () => {
    const t = setup();
    t.versions.set('file:///ws/a.js', 1);
    const first = await t.inline.provide(snap(1, 'ab'), new Token());
    assert.deepStrictEqual(first, { id: 'inl1', text: '2' });
    t.versions.set('file:///ws/a.js', 2);
    const second = await t.inline.provide(snap(2, 'abc'), new Token());
    assert.strictEqual(second?.id, 'inl2');
    await t.inline.accepted('inl2');
    await t.inline.accepted('inl2');
    await t.inline.accepted('inl1');
    assert.deepStrictEqual(
      t.records.map((r) => [r.id, r.outcome, r.prompt.prefix, r.candidate.text]),
      [
        ['inl1', 'ignored', 'ab', '2'],
        ['inl2', 'accepted', 'abc', '3'],
      ],
    );
  });

  it('a repeated request for the same place and text keeps the id on screen, so Tab records it', async () => {
    const t = setup();
    t.versions.set('file:///ws/a.js', 1);
    const first = await t.inline.provide(snap(1, 'ab'), new Token());
    // VS Code asks again without an edit (focus or cursor event): same version, same text.
    const again = await t.inline.provide(snap(1, 'ab'), new Token());
    assert.deepStrictEqual(again, first);
    assert.strictEqual(t.calls(), 2);
    await t.inline.accepted('inl1');
    assert.deepStrictEqual(
      t.records.map((r) => [r.id, r.outcome]),
      [['inl1', 'accepted']],
    );
    // After an edit, the same text at a new version is a new suggestion.
    t.versions.set('file:///ws/a.js', 2);
    const later = await t.inline.provide(snap(2, 'xy'), new Token());
    assert.strictEqual(later?.id, 'inl2');
  });
});
