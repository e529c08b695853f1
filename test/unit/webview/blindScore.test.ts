import * as assert from 'assert';
import { JSDOM } from 'jsdom';
import {
  MessageValidationError,
  parseHostToCompare,
  type CompareToHost,
  type HostToCompare,
} from '../../../src/protocol/webviewMessages';
import { startCompareApp } from '../../../webview/compare/app';

function harness() {
  const dom = new JSDOM('<!doctype html><main id="app"></main>', { pretendToBeVisual: true });
  const posted: CompareToHost[] = [];
  startCompareApp(dom.window as unknown as Window, {
    postMessage: (message) => posted.push(message),
    getState: () => undefined,
    setState: () => {},
  });
  const win = dom.window;
  const doc = win.document;
  return {
    doc,
    posted,
    send: (message: HostToCompare | unknown) =>
      win.dispatchEvent(new win.MessageEvent('message', { data: message })),
    key: (key: string) =>
      doc.dispatchEvent(new win.KeyboardEvent('keydown', { key, bubbles: true })),
    score: () => doc.querySelector<HTMLElement>('.blind-score')!,
    status: () => doc.querySelector('.status')!.textContent ?? '',
  };
}

const blind = (id = 'blind1') => ({
  type: 'comparison' as const,
  comparison: {
    id,
    languageId: 'typescript',
    contextBefore: 'const x = ',
    candidates: ['1;', '2;'],
    mode: 'blind-ab' as const,
  },
});

const score = {
  adapter: 'run-7 dpo',
  tunedWins: 2,
  baseWins: 1,
  ties: 2,
  skipped: 1,
  rate: 0.6,
  low: 0.2307,
  high: 0.8824,
  lastOutcome: 'tuned' as const,
};

describe('blind A/B in the comparison webview', () => {
  it('shows a blind comparison unlabeled, with the same keys, and sends positions only', () => {
    const h = harness();
    h.send(blind());
    assert.match(h.status(), /^Blind A\/B: one completion is from the base model and one/);
    const labels = Array.from(h.doc.querySelectorAll('.candidate .label')).map(
      (l) => l.textContent,
    );
    assert.deepStrictEqual(labels, ['1', '2']);
    assert.ok(!/tuned|base/i.test(h.doc.querySelector('.candidates')!.textContent!));
    h.key('t');
    assert.deepStrictEqual(h.posted.at(-1), {
      type: 'judgment',
      comparisonId: 'blind1',
      judgment: { kind: 'ranking', groups: [[0, 1]] },
    });
  });

  it('reports wins, ties and the win rate with its 95% interval; ties are said to be half', () => {
    const h = harness();
    h.send(blind());
    assert.strictEqual(h.score().hidden, true, 'no score before the host sends one');
    h.send({ type: 'blindScore', score });
    const el = h.score();
    assert.strictEqual(el.hidden, false);
    const counts = el.querySelector<HTMLElement>('.blind-score-counts')!;
    assert.deepStrictEqual({ ...counts.dataset }, { tuned: '2', base: '1', ties: '2' });
    assert.strictEqual(
      el.textContent,
      'Tuned adapter run-7 dpo vs base: 2 tuned wins, 1 base win, 2 ties, 1 skipped (not ' +
        'counted). Tuned win rate 60.0% (95% Wilson interval 23.1% to 88.2%, n = 5). Ties ' +
        '("all equal", or "none good": both bad) count as half a win.',
    );
    h.send({
      type: 'blindScore',
      score: {
        ...score,
        tunedWins: 0,
        baseWins: 0,
        ties: 0,
        skipped: 0,
        rate: null,
        low: null,
        high: null,
      },
    });
    assert.match(el.textContent!, /0 tuned wins, 0 base wins, 0 ties\. No counted judgment yet\./);
    h.send({ type: 'blindScoreError', text: 'Could not compute the blind A/B score: EACCES' });
    assert.ok(el.classList.contains('error'));
    assert.strictEqual(el.textContent, 'Could not compute the blind A/B score: EACCES');
  });

  it('an ordinary comparison hides the blind score', () => {
    const h = harness();
    h.send(blind());
    h.send({ type: 'blindScore', score });
    h.send({
      type: 'comparison',
      comparison: { id: 'cmp2', languageId: 'js', contextBefore: '', candidates: ['a', 'b', 'c'] },
    });
    assert.strictEqual(h.score().hidden, true);
    assert.match(h.status(), /^Which completion is best\? 3 candidates/);
  });

  it('rejects malformed blind messages, naming the field', () => {
    const bad = (message: unknown, pattern: RegExp) =>
      assert.throws(
        () => parseHostToCompare(message),
        (e: Error) => e instanceof MessageValidationError && pattern.test(e.message),
      );
    bad(
      { ...blind(), comparison: { ...blind().comparison, mode: 'ab' } },
      /"comparison.mode" must be "blind-ab" or absent, got "ab"/,
    );
    bad(
      { ...blind(), comparison: { ...blind().comparison, candidates: ['a', 'b', 'c'] } },
      /"comparison.candidates" must be 2 texts in a blind A\/B comparison/,
    );
    bad(
      { type: 'blindScore', score: { ...score, ties: -1 } },
      /"score.ties" must be a non-negative/,
    );
    bad({ type: 'blindScore', score: { ...score, rate: 1.5 } }, /"score.rate" must be a number in/);
    bad(
      { type: 'blindScore', score: { ...score, tunedWins: 0, baseWins: 0, ties: 0 } },
      /"score.rate" must be null exactly when no judgment is counted/,
    );
    bad(
      { type: 'blindScore', score: { ...score, lastOutcome: 'win' } },
      /"score.lastOutcome" must be one of tuned, base, tie, no-preference/,
    );
    // A malformed score changes nothing on screen and says it was ignored.
    const h = harness();
    h.send({ type: 'blindScore', score: { ...score, adapter: 7 } });
    assert.strictEqual(h.score().hidden, true);
    assert.match(h.status(), /Ignored a malformed message: .*"adapter"/);
  });
});
