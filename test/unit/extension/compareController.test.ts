import * as assert from 'assert';
import type { CompletionRequest, GeneratedCandidate } from '../../../src/protocol/generation';
import type { EditorSnapshot } from '../../../src/extension/comparison';
import { withLineEndings } from '../../../src/extension/comparison';
import {
  CompareController,
  type CompareDeps,
  type GenerationResult,
} from '../../../src/extension/compareController';
import { DEFAULT_SETTINGS } from '../../../src/extension/config';
import { recordingLogger } from '../../support/recordingLogger';
import { PendingComparisons, type MementoLike } from '../../../src/extension/pendingComparisons';
import { WebviewChannel, type WebviewPort } from '../../../src/extension/webviewChannel';
import type { JudgmentRecord } from '../../../src/protocol/records';
import type { HostToCompare } from '../../../src/protocol/webviewMessages';

class FakeMemento implements MementoLike {
  readonly data = new Map<string, unknown>();
  get<T>(key: string): T | undefined {
    // Round-trip through JSON like VS Code's storage does.
    const value = this.data.get(key);
    return value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as T);
  }
  async update(key: string, value: unknown): Promise<void> {
    this.data.set(key, JSON.parse(JSON.stringify(value)));
  }
}

/** A fake webview panel: visible flag, and postMessage that can be made to fail. */
class FakePort implements WebviewPort<HostToCompare> {
  visible = true;
  delivered: HostToCompare[] = [];
  failNext = 0;
  async postMessage(message: HostToCompare): Promise<boolean> {
    if (this.failNext > 0) {
      this.failNext--;
      return false;
    }
    this.delivered.push(message);
    return true;
  }
  comparisons(): string[][] {
    return this.delivered
      .filter((m): m is Extract<HostToCompare, { type: 'comparison' }> => m.type === 'comparison')
      .map((m) => m.comparison.candidates);
  }
}

function candidates(texts: string[]): GeneratedCandidate[] {
  return texts.map((text, i) => ({ text, tokenIds: [i], logprob: -i, stopReason: 'max-lines' }));
}

function snapshot(version: number, prefix: string, extra: Partial<EditorSnapshot> = {}) {
  return {
    uri: 'file:///ws/lib/src/x.py',
    version,
    languageId: 'python',
    offset: prefix.length,
    prefix,
    suffix: '',
    eol: '\n' as const,
    workspace: 'lib',
    file: 'src/x.py',
    requestedAt: 1000,
    storePath: '/ws/lib/.code-rlhf/judgments.jsonl',
    ...extra,
  };
}

const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));

function setup(options: { generate?: CompareDeps['generate'] } = {}) {
  const log = recordingLogger();
  const memento = new FakeMemento();
  const channel = new WebviewChannel<HostToCompare>(log);
  const port = new FakePort();
  const records: Array<{ record: JudgmentRecord; storePath: string }> = [];
  const inserted: Array<{ text: string; version: number }> = [];
  const versions = new Map<string, number>();
  let now = 1000;
  let seq = 0;
  const generateCalls: CompletionRequest[] = [];
  const deps: CompareDeps = {
    generate:
      options.generate ??
      (async (request) => {
        generateCalls.push(request);
        return { candidates: candidates(['a', 'b', 'c', 'd']), latencyMs: 5, model: 'tiny' };
      }),
    generateWith: async () => {
      throw new Error('generateWith is only used by blind A/B comparisons');
    },
    adapter: () => null,
    readRecords: async () => records.map((r) => r.record),
    settings: () => DEFAULT_SETTINGS,
    documentVersion: (uri) => versions.get(uri),
    isExcluded: () => false,
    channel,
    revealPanel: () => {},
    pending: new PendingComparisons(memento),
    record: async (record, snap) => {
      records.push({ record, storePath: snap.storePath });
      return { written: true };
    },
    insert: async (snap, text) => {
      inserted.push({ text: withLineEndings(text, snap.eol), version: snap.version });
      return versions.get(snap.uri) === snap.version;
    },
    focusEditor: async () => {},
    annotator: () => 'tester',
    log,
    now: () => (now += 10),
    random: () => 0.5,
    newId: () => `cmp${++seq}`,
  };
  const controller = new CompareController(deps);
  return {
    controller,
    channel,
    port,
    records,
    inserted,
    versions,
    memento,
    log,
    deps,
    generateCalls,
  };
}

describe('compare controller', () => {
  it('V1a: candidates posted before the webview is ready render after ready', async () => {
    const t = setup();
    t.versions.set(snapshot(1, '').uri, 1);
    t.channel.attach(t.port);
    const pending = await t.controller.compare(snapshot(1, 'def f('));
    assert.ok(pending);
    assert.deepStrictEqual(t.port.delivered, [], 'nothing may be sent before ready');
    t.channel.onReady();
    await tick();
    assert.strictEqual(t.port.comparisons().length, 1);
    assert.strictEqual(t.port.comparisons()[0].length, 4);
  });

  it('V1b: a comparison made while the panel is hidden shows when it is shown again', async () => {
    const t = setup();
    t.versions.set(snapshot(1, '').uri, 1);
    t.channel.attach(t.port);
    t.channel.onReady();
    t.port.visible = false;
    t.channel.onVisibilityChanged(false);
    await t.controller.compare(snapshot(1, 'x = '));
    await tick();
    assert.strictEqual(t.port.comparisons().length, 0);
    t.port.visible = true;
    t.channel.onVisibilityChanged(true);
    t.channel.onReady(); // the rebuilt content says ready again
    await tick();
    assert.strictEqual(t.port.comparisons().length, 1);
  });

  it('V1c: after a reload the revived panel shows cmp2, and a vote records it once', async () => {
    const t = setup();
    const uri = snapshot(1, '').uri;
    t.versions.set(uri, 1);
    t.channel.attach(t.port);
    t.channel.onReady();
    await t.controller.compare(snapshot(1, 'def one('));
    t.versions.set(uri, 2);
    const cmp2 = await t.controller.compare(snapshot(2, 'def two('));
    assert.strictEqual(cmp2?.id, 'cmp2');
    // Window reload: a new extension host (new controller and channel), same memento.
    const log = recordingLogger();
    const channel = new WebviewChannel<HostToCompare>(log);
    const port = new FakePort();
    await t.deps.pending.flushed();
    const pending = new PendingComparisons(t.memento);
    const revived = new CompareController({ ...t.deps, channel, log, pending });
    channel.attach(port);
    revived.restore('cmp2');
    channel.onReady();
    await tick();
    assert.deepStrictEqual(port.comparisons(), [cmp2!.candidates.map((c) => c.text)]);
    await revived.onRendered('cmp2');
    await revived.onJudgment('cmp2', { kind: 'pick', best: 1 });
    await revived.onJudgment('cmp2', { kind: 'pick', best: 1 });
    assert.strictEqual(t.records.length, 1);
    const { record } = t.records[0];
    assert.strictEqual(record.id, 'cmp2');
    assert.strictEqual(record.prompt.prefix, 'def two(');
    assert.strictEqual(record.judgment.kind, 'pick');
    assert.strictEqual(
      record.candidates.find((c) => c.position === 1)!.id,
      (record.judgment as { best: string }).best,
    );
  });

  it('closing the panel abandons its comparison; an unclosed one is offered back', async () => {
    const t = setup();
    t.versions.set(snapshot(1, '').uri, 1);
    const first = await t.controller.compare(snapshot(1, 'a'));
    await t.controller.onRendered(first!.id);
    assert.strictEqual(t.controller.unfinished(60_000)?.id, first!.id);
    t.controller.onPanelClosed();
    await t.deps.pending.flushed();
    assert.strictEqual(t.deps.pending.get(first!.id), undefined);
    assert.strictEqual(t.controller.unfinished(60_000), undefined);
    const second = await t.controller.compare(snapshot(1, 'b'));
    assert.strictEqual(t.controller.unfinished(60_000), undefined, 'never on screen');
    await t.controller.onRendered(second!.id);
    assert.strictEqual(t.controller.unfinished(0), undefined, 'too old');
  });

  it('V1d: a postMessage that resolves false is re-queued and delivered', async () => {
    const t = setup();
    t.versions.set(snapshot(1, '').uri, 1);
    t.channel.attach(t.port);
    t.port.failNext = 1;
    t.channel.onReady();
    await t.controller.compare(snapshot(1, 'y = '));
    await tick(100);
    assert.strictEqual(t.port.comparisons().length, 1);
    assert.strictEqual(t.channel.pending.length, 0);
  });

  it('V2: candidates from an overtaken version are never shown or recorded', async () => {
    const uri = snapshot(5, '').uri;
    const releases: Array<() => void> = [];
    const t = setup({
      generate: (request, signal) =>
        new Promise<GenerationResult>((resolve) => {
          // Like a generator that ignores the abort and still resolves.
          releases.push(() =>
            resolve({
              candidates: candidates([1, 2, 3, 4].map((i) => `${request.prefix}${i}`)),
              latencyMs: 1,
              model: 'tiny',
            }),
          );
          void signal;
        }),
    });
    t.channel.attach(t.port);
    t.channel.onReady();
    t.versions.set(uri, 5);
    const v5 = t.controller.compare(snapshot(5, 'def f('));
    await tick();
    t.versions.set(uri, 6);
    t.controller.onDocumentChanged(uri, 6);
    const v6 = t.controller.compare(snapshot(6, 'def f(x'));
    await tick();
    releases[0]();
    assert.strictEqual(await v5, undefined);
    releases[1]();
    const shown = await v6;
    await tick();
    assert.ok(shown);
    const all = t.port.comparisons().flat();
    assert.ok(
      all.every((text) => text.startsWith('def f(x')),
      JSON.stringify(all),
    );
    assert.ok(
      !t.memento
        .get<unknown[]>('codeRlhf.pendingComparisons')!
        .some((p) => JSON.stringify(p).includes('"def f("')),
    );
    await t.controller.onJudgment(shown.id, { kind: 'pick', best: 0 });
    assert.strictEqual(t.records[0].record.prompt.prefix, 'def f(x');
    assert.strictEqual(t.controller.generating, false);
    assert.ok(
      t.log.lines.some((l) => /dropped 4 candidates .* v5/.test(l)),
      t.log.lines.join('\n'),
    );
  });

  it('V2: typing during generation aborts the request signal', async () => {
    let aborted = false;
    const t = setup({
      generate: (_request, signal) =>
        new Promise<GenerationResult>((_resolve, reject) => {
          signal.addEventListener('abort', () => {
            aborted = true;
            const error = new Error('aborted');
            error.name = 'AbortError';
            reject(error);
          });
        }),
    });
    const uri = snapshot(1, '').uri;
    t.versions.set(uri, 1);
    const result = t.controller.compare(snapshot(1, 'a'));
    await tick();
    t.controller.onDocumentChanged(uri, 2);
    assert.strictEqual(await result, undefined);
    assert.ok(aborted);
    assert.strictEqual(t.controller.generating, false);
  });

  it('D1: identical samples are shown once and a double vote is stored once', async () => {
    let calls = 0;
    const t = setup({
      generate: async (request) => ({
        candidates: candidates(
          ++calls && request.seed % 2 === 0
            ? ['same', 'same', 'other', 'third']
            : ['same', 'other', 'third', 'same'],
        ),
        latencyMs: 1,
        model: 'tiny',
      }),
    });
    t.versions.set(snapshot(1, '').uri, 1);
    const pending = await t.controller.compare(snapshot(1, 'x = '));
    assert.deepStrictEqual(pending!.candidates.map((c) => c.text).sort(), [
      'other',
      'same',
      'third',
    ]);
    assert.strictEqual(calls, 1, 'three distinct candidates are enough to compare');
    await Promise.all([
      t.controller.onJudgment(pending!.id, { kind: 'pick', best: 0 }),
      t.controller.onJudgment(pending!.id, { kind: 'pick', best: 0 }),
    ]);
    assert.strictEqual(t.records.length, 1);
  });

  it('records exactly what was shown: order, texts, version, timings; inserts with CRLF', async () => {
    const t = setup();
    const snap = snapshot(3, '\tif (a) {\r\n', { eol: '\r\n', languageId: 'c' });
    t.versions.set(snap.uri, 3);
    t.generateCalls.length = 0;
    const pending = await t.controller.compare(snap);
    assert.strictEqual(t.generateCalls[0].count, 4);
    await t.controller.onRendered(pending!.id);
    await t.controller.onJudgment(pending!.id, { kind: 'ranking', groups: [[2], [0, 3], [1]] });
    const { record, storePath } = t.records[0];
    assert.strictEqual(storePath, '/ws/lib/.code-rlhf/judgments.jsonl');
    assert.strictEqual(record.prompt.prefix, '\tif (a) {\r\n');
    assert.deepStrictEqual(
      record.candidates.map((c) => c.position),
      [0, 1, 2, 3],
    );
    const idAt = (p: number) => record.candidates[p].id;
    assert.deepStrictEqual(record.judgment, {
      kind: 'ranking',
      groups: [[idAt(2)], [idAt(0), idAt(3)], [idAt(1)]],
    });
    assert.deepStrictEqual(record.meta, {
      documentVersion: 3,
      shownOrder: record.candidates.map((c) => c.id),
    });
    assert.ok(record.decisionMs! > 0 && record.generationMs! >= 0);
    assert.strictEqual(t.inserted.length, 1);
    assert.strictEqual(t.inserted[0].text, record.candidates[2].text);
  });

  it('asks once more when every sample is the same text', async () => {
    const seeds: number[] = [];
    const t = setup({
      generate: async (request) => {
        seeds.push(request.seed);
        const texts = seeds.length === 1 ? ['x', 'x', 'x', 'x'] : ['x', 'y', 'x', 'z'];
        return { candidates: candidates(texts), latencyMs: 1, model: 'tiny' };
      },
    });
    t.versions.set(snapshot(1, '').uri, 1);
    const pending = await t.controller.compare(snapshot(1, 'w'));
    assert.deepStrictEqual(seeds.length, 2);
    assert.notStrictEqual(seeds[0], seeds[1]);
    assert.deepStrictEqual(pending!.candidates.map((c) => c.text).sort(), ['x', 'y', 'z']);
  });

  it('rejects a judgment naming a position that was not shown', async () => {
    const t = setup();
    t.versions.set(snapshot(1, '').uri, 1);
    const pending = await t.controller.compare(snapshot(1, 'q'));
    await t.controller.onJudgment(pending!.id, { kind: 'pick', best: 6 });
    assert.strictEqual(t.records.length, 0);
    assert.ok(t.log.lines.some((l) => /"best" is position 6, but only 4 candidates/.test(l)));
    await t.controller.onJudgment(pending!.id, { kind: 'pick', best: 3 });
    assert.strictEqual(t.records.length, 1);
  });

  it('keeps the comparison when the store fails, so the judgment can be given again', async () => {
    const t = setup();
    t.versions.set(snapshot(1, '').uri, 1);
    let fail = true;
    const controller = new CompareController({
      ...t.deps,
      record: async (record, snap) => {
        if (fail) throw new Error('disk full');
        t.records.push({ record, storePath: snap.storePath });
        return { written: true };
      },
    });
    const pending = await controller.compare(snapshot(1, 'z'));
    await controller.onJudgment(pending!.id, { kind: 'none-good' });
    assert.strictEqual(t.records.length, 0);
    fail = false;
    await controller.onJudgment(pending!.id, { kind: 'none-good' });
    assert.strictEqual(t.records.length, 1);
  });
});

describe('line endings of inserted text', () => {
  it('converts to the document EOL both ways', () => {
    assert.strictEqual(withLineEndings('a\nb\r\nc', '\r\n'), 'a\r\nb\r\nc');
    assert.strictEqual(withLineEndings('a\r\nb\nc\rd', '\n'), 'a\nb\nc\nd');
    assert.strictEqual(withLineEndings('printf("a\\n");', '\r\n'), 'printf("a\\n");');
  });
});
