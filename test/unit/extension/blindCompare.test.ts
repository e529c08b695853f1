import * as assert from 'assert';
import { validateRecord } from '../../../src/data/recordSchema';
import {
  BASE_ID,
  TUNED_ID,
  buildBlindComparison,
  generateBlindPair,
  sidesShown,
} from '../../../src/extension/blindCompare';
import { CompareController, type CompareDeps } from '../../../src/extension/compareController';
import { comparisonView, type EditorSnapshot } from '../../../src/extension/comparison';
import { DEFAULT_SETTINGS } from '../../../src/extension/config';
import type { Logger } from '../../../src/extension/log';
import { PendingComparisons, type MementoLike } from '../../../src/extension/pendingComparisons';
import { WebviewChannel, type WebviewPort } from '../../../src/extension/webviewChannel';
import type { CompletionRequest } from '../../../src/protocol/generation';
import type { AdapterRef, JudgmentRecord } from '../../../src/protocol/records';
import {
  parseHostToCompare,
  type BlindScoreView,
  type HostToCompare,
} from '../../../src/protocol/webviewMessages';

const ADAPTER: AdapterRef = { name: 'run-7 dpo', path: '/g/training/run-7/dpo/adapter' };

/** A seeded uniform [0, 1) source (mulberry32), so the order tests are reproducible. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const snapshot = (version = 1): EditorSnapshot => ({
  uri: 'file:///ws/app/src/a.ts',
  version,
  languageId: 'typescript',
  offset: 10,
  prefix: 'const x = ',
  suffix: ';\n',
  eol: '\n',
  workspace: 'app',
  file: 'src/a.ts',
  requestedAt: 1000,
  storePath: '/ws/app/.code-rlhf/judgments.jsonl',
});

const generated = (text: string) => ({
  text,
  tokenIds: [1],
  logprob: -1.5,
  stopReason: 'max-lines' as const,
});

/** A fake model: the base says "base-<seed>", the adapter "tuned-<seed>" (or `same` for both). */
function fakeModel(options: { same?: string; sameTimes?: number } = {}) {
  const calls: Array<{ request: CompletionRequest; adapter: AdapterRef | null }> = [];
  let sameLeft = options.sameTimes ?? 0;
  const generateWith: CompareDeps['generateWith'] = async (request, adapter) => {
    calls.push({ request, adapter });
    const identical = sameLeft > 0 && options.same !== undefined;
    if (identical && adapter) sameLeft--;
    const text = identical ? options.same! : `${adapter ? 'tuned' : 'base'}-${request.seed}`;
    return { candidates: [generated(text)], latencyMs: 3, model: 'tiny' };
  };
  return { calls, generateWith };
}

class FakeMemento implements MementoLike {
  private readonly data = new Map<string, string>();
  get<T>(key: string): T | undefined {
    const value = this.data.get(key);
    return value === undefined ? undefined : (JSON.parse(value) as T);
  }
  async update(key: string, value: unknown): Promise<void> {
    this.data.set(key, JSON.stringify(value));
  }
}

class FakePort implements WebviewPort<HostToCompare> {
  visible = true;
  delivered: HostToCompare[] = [];
  async postMessage(message: HostToCompare): Promise<boolean> {
    // Everything the host sends must pass the webview's own validation.
    this.delivered.push(parseHostToCompare(JSON.parse(JSON.stringify(message))));
    return true;
  }
  last<T extends HostToCompare['type']>(type: T): Extract<HostToCompare, { type: T }> | undefined {
    return this.delivered.filter((m) => m.type === type).at(-1) as
      Extract<HostToCompare, { type: T }> | undefined;
  }
}

const silent: Logger = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };

function setup(
  options: {
    adapter?: AdapterRef | null;
    model?: ReturnType<typeof fakeModel>;
    excluded?: boolean;
    readFails?: boolean;
    seed?: number;
  } = {},
) {
  const model = options.model ?? fakeModel();
  const stored: JudgmentRecord[] = [];
  const channel = new WebviewChannel<HostToCompare>(silent);
  const port = new FakePort();
  channel.attach(port);
  channel.onReady();
  let seq = 0;
  let now = 5000;
  const inserted: string[] = [];
  const deps: CompareDeps = {
    generate: async () => {
      throw new Error('a blind comparison must not use the active policy generator');
    },
    generateWith: model.generateWith,
    adapter: () => (options.adapter === undefined ? ADAPTER : options.adapter),
    readRecords: async () => {
      if (options.readFails) throw new Error('judgments.jsonl:3: key "v": bad');
      // Through JSON and validation, as the store reads them.
      return stored.map((r) => validateRecord(JSON.parse(JSON.stringify(r))));
    },
    settings: () => DEFAULT_SETTINGS,
    documentVersion: () => 1,
    isExcluded: () => options.excluded ?? false,
    channel,
    revealPanel: () => {},
    pending: new PendingComparisons(new FakeMemento()),
    record: async (record) => {
      validateRecord(JSON.parse(JSON.stringify(record)));
      const written = !stored.some((r) => r.id === record.id);
      if (written) stored.push(record);
      return { written };
    },
    insert: async (_snapshot, text) => {
      inserted.push(text);
      return true;
    },
    focusEditor: async () => {},
    annotator: () => 'dev',
    log: silent,
    now: () => (now += 7),
    random: seeded(options.seed ?? 1),
    newId: () => `blind${++seq}`,
  };
  return { controller: new CompareController(deps), port, stored, model, inserted, deps };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

describe('blind A/B comparison', () => {
  it('generates one base (adapter off) and one tuned candidate with the same settings', async () => {
    const model = fakeModel();
    const pair = await generateBlindPair(
      model.generateWith,
      {
        prefix: 'p',
        suffix: 's',
        maxNewTokens: 9,
        maxLines: 2,
        temperature: 0.8,
        topK: 4,
        topP: 1,
      },
      ADAPTER,
      seeded(3),
      new AbortController().signal,
    );
    assert.ok(!('identical' in pair));
    assert.deepStrictEqual(
      model.calls.map((c) => c.adapter),
      [null, ADAPTER],
    );
    const [base, tuned] = model.calls.map((c) => c.request);
    assert.strictEqual(base.count, 1);
    assert.deepStrictEqual({ ...base, seed: 0 }, { ...tuned, seed: 0 });
    assert.notStrictEqual(base.seed, tuned.seed, 'independent seeds');
    assert.strictEqual(pair.base.text, `base-${base.seed}`);
    assert.strictEqual(pair.tuned.text, `tuned-${tuned.seed}`);
  });

  it('samples again when both sides say the same; twice the same is no comparison', async () => {
    const once = fakeModel({ same: 'x', sameTimes: 1 });
    const pair = await generateBlindPair(
      once.generateWith,
      { prefix: '', suffix: '', maxNewTokens: 1, maxLines: 1, temperature: 1, topK: 0, topP: 1 },
      ADAPTER,
      seeded(4),
      new AbortController().signal,
    );
    assert.strictEqual(once.calls.length, 4);
    assert.ok(!('identical' in pair) && pair.tuned.text.startsWith('tuned-'));
    const t = setup({ model: fakeModel({ same: 'return 1', sameTimes: 2 }) });
    assert.strictEqual(await t.controller.compareBlind(snapshot()), undefined);
    await tick();
    assert.match(
      t.port.last('status')!.text,
      /same completion here \(twice\).*nothing was recorded/,
    );
    assert.strictEqual(t.port.last('comparison'), undefined);
  });

  it('shows two unlabeled candidates in a random order that is recorded', async () => {
    const pair = {
      base: generated('B'),
      tuned: generated('T'),
      baseSeed: 1,
      tunedSeed: 2,
      model: 'tiny',
    };
    const sampling = { temperature: 0.8, topK: 40, topP: 0.95, maxNewTokens: 48 };
    const orders = new Map<string, number>();
    const random = seeded(11);
    for (let i = 0; i < 2000; i++) {
      const pending = buildBlindComparison(`b${i}`, snapshot(), pair, ADAPTER, sampling, 5, random);
      const key = pending.candidates.map((c) => c.text).join('');
      orders.set(key, (orders.get(key) ?? 0) + 1);
      assert.deepStrictEqual(
        pending.candidates.map((c) => c.position),
        [0, 1],
      );
      assert.deepStrictEqual(pending.blindAb, {
        kind: 'blind-ab',
        baseCandidate: BASE_ID,
        tunedCandidate: TUNED_ID,
        adapter: ADAPTER,
      });
    }
    // Both orders occur, each about half the time (binomial sd of 2000 draws is ~22).
    assert.deepStrictEqual([...orders.keys()].sort(), ['BT', 'TB']);
    assert.ok(Math.abs(orders.get('TB')! - 1000) < 100, JSON.stringify([...orders]));

    const pending = buildBlindComparison('b', snapshot(), pair, ADAPTER, sampling, 5, () => 0);
    const base = pending.candidates.find((c) => c.id === BASE_ID)!;
    const tuned = pending.candidates.find((c) => c.id === TUNED_ID)!;
    assert.strictEqual(base.adapter, null);
    assert.strictEqual(tuned.adapter, ADAPTER.name);
    assert.strictEqual(base.sampling?.seed, 1);
    assert.strictEqual(tuned.sampling?.seed, 2);
    assert.deepStrictEqual(sidesShown(pending), {
      base: base.position! + 1,
      tuned: tuned.position! + 1,
    });
    // The webview gets texts and the mode, nothing that tells the sides apart.
    const view = JSON.stringify(comparisonView(pending));
    for (const secret of [ADAPTER.name, ADAPTER.path, BASE_ID, TUNED_ID, 'base', 'tuned', 'tiny']) {
      assert.ok(!view.includes(secret), `the view leaks ${secret}: ${view}`);
    }
    assert.strictEqual(comparisonView(pending).mode, 'blind-ab');
  });

  it('without an active adapter it says so and generates nothing', async () => {
    const t = setup({ adapter: null });
    assert.strictEqual(await t.controller.compareBlind(snapshot()), undefined);
    await tick();
    assert.strictEqual(t.model.calls.length, 0);
    assert.match(t.port.last('status')!.text, /needs a tuned adapter, and none is active/);
  });

  it('records which side won, reveals the sides, and reports the score after each judgment', async () => {
    const t = setup({ seed: 5 });
    const expected: Array<Partial<BlindScoreView>> = [];
    const judge = async (key: 'tuned' | 'base' | 'tie' | 'none' | 'skip') => {
      const pending = await t.controller.compareBlind(snapshot());
      assert.ok(pending, 'a blind comparison');
      await tick();
      const shown = t.port.last('comparison')!.comparison;
      assert.strictEqual(shown.id, pending.id);
      assert.strictEqual(shown.mode, 'blind-ab');
      assert.strictEqual(shown.candidates.length, 2);
      const sides = sidesShown(pending);
      await t.controller.onRendered(pending.id);
      const view =
        key === 'tuned'
          ? { kind: 'pick' as const, best: sides.tuned - 1 }
          : key === 'base'
            ? { kind: 'pick' as const, best: sides.base - 1 }
            : key === 'tie'
              ? { kind: 'ranking' as const, groups: [[0, 1]] }
              : key === 'none'
                ? { kind: 'none-good' as const }
                : { kind: 'skipped' as const };
      await t.controller.onJudgment(pending.id, view);
      await tick();
      return { pending, sides };
    };

    const first = await judge('tuned');
    const record = t.stored[0];
    assert.deepStrictEqual(record.evaluation, {
      kind: 'blind-ab',
      baseCandidate: 'c0',
      tunedCandidate: 'c1',
      adapter: ADAPTER,
    });
    assert.strictEqual(record.judgment.kind, 'pick');
    assert.strictEqual((record.judgment as { best: string }).best, 'c1');
    assert.deepStrictEqual(
      (record.meta as { shownOrder: string[] }).shownOrder,
      first.pending.candidates.map((c) => c.id),
    );
    assert.strictEqual(record.candidates.find((c) => c.id === 'c1')!.adapter, ADAPTER.name);
    assert.strictEqual(record.candidates.find((c) => c.id === 'c0')!.adapter, null);
    const recorded = t.port.last('recorded')!.text;
    assert.match(recorded, /^Recorded \(best picked\)\. You preferred the tuned adapter\./);
    assert.ok(
      recorded.includes(`Candidate ${first.sides.tuned} was the tuned adapter (run-7 dpo)`),
      recorded,
    );
    // The chosen text is inserted like any comparison's (codeRlhf.insertChosen).
    assert.strictEqual(t.inserted[0], record.candidates.find((c) => c.id === 'c1')!.text);
    expected.push({ tunedWins: 1, baseWins: 0, ties: 0, rate: 1, lastOutcome: 'tuned' });

    await judge('base');
    expected.push({ tunedWins: 1, baseWins: 1, ties: 0, rate: 0.5, lastOutcome: 'base' });
    await judge('tie');
    expected.push({ tunedWins: 1, baseWins: 1, ties: 1, rate: 0.5, lastOutcome: 'tie' });
    await judge('none');
    expected.push({ tunedWins: 1, baseWins: 1, ties: 2, rate: 0.5, lastOutcome: 'tie' });
    await judge('skip');
    expected.push({ tunedWins: 1, baseWins: 1, ties: 2, rate: 0.5, lastOutcome: 'no-preference' });
    await judge('tuned');
    expected.push({ tunedWins: 2, baseWins: 1, ties: 2, rate: 0.6, lastOutcome: 'tuned' });

    const scores = t.port.delivered
      .filter((m): m is Extract<HostToCompare, { type: 'blindScore' }> => m.type === 'blindScore')
      .map((m) => m.score)
      .filter((s) => s.lastOutcome !== undefined);
    assert.strictEqual(scores.length, expected.length);
    scores.forEach((score, i) => {
      for (const [key, value] of Object.entries(expected[i])) {
        assert.deepStrictEqual(score[key as keyof BlindScoreView], value, `score ${i} ${key}`);
      }
      assert.strictEqual(score.adapter, ADAPTER.name);
    });
    const last = scores.at(-1)!;
    assert.strictEqual(last.skipped, 1);
    // 3 successes (2 wins + 2 half-wins) in 5: Wilson 95% interval.
    assert.ok(Math.abs(last.low! - 0.2307) < 1e-3 && Math.abs(last.high! - 0.8824) < 1e-3);
    assert.strictEqual(t.stored.length, 6);
    for (const r of t.stored)
      assert.doesNotThrow(() => validateRecord(JSON.parse(JSON.stringify(r))));
  });

  it('a file excluded from collection is neither recorded nor counted', async () => {
    const t = setup({ excluded: true });
    const pending = await t.controller.compareBlind(snapshot());
    await t.controller.onJudgment(pending!.id, { kind: 'pick', best: 0 });
    await tick();
    assert.strictEqual(t.stored.length, 0);
    assert.match(t.port.last('recorded')!.text, /Not recorded/);
    const score = t.port.last('blindScore')!.score;
    assert.strictEqual(score.tunedWins + score.baseWins + score.ties, 0);
    assert.strictEqual(score.rate, null);
  });

  it('an unreadable store shows why the score is missing; the judgment is still stored', async () => {
    const t = setup({ readFails: true });
    const pending = await t.controller.compareBlind(snapshot());
    await t.controller.onJudgment(pending!.id, { kind: 'pick', best: 1 });
    await tick();
    assert.strictEqual(t.stored.length, 1);
    assert.match(t.port.last('blindScoreError')!.text, /Could not compute .*judgments\.jsonl:3/);
  });

  it('a restored blind comparison comes back blind, with the score from the store', async () => {
    const t = setup();
    const pending = await t.controller.compareBlind(snapshot());
    await tick();
    t.port.delivered = [];
    t.controller.restore(pending!.id);
    await tick();
    assert.strictEqual(t.port.last('comparison')!.comparison.mode, 'blind-ab');
    assert.strictEqual(t.port.last('blindScore')!.score.adapter, ADAPTER.name);
  });
});
