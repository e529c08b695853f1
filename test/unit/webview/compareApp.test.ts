import * as assert from 'assert';
import { JSDOM } from 'jsdom';
import { htmlShell } from '../../../src/extension/htmlShell';
import type { CompareToHost, HostToCompare } from '../../../src/protocol/webviewMessages';
import { startCompareApp, type CompareApp } from '../../../webview/compare/app';

const NONCE = 'AAAAAAAAAAAAAAAAAAAAAA==';
const ATTACK =
  '</script><script>window.__p=1</script><img src=x onerror="window.__p=2">' +
  ' `${window.__p=3}` &lt;b&gt; <!-- x -->';

interface Harness {
  dom: JSDOM;
  app: CompareApp;
  posted: CompareToHost[];
  state: { value: unknown };
  send(message: HostToCompare | unknown): void;
  key(key: string, init?: KeyboardEventInit): void;
  candidateCode(position: number): string;
  flush(): Promise<void>;
}

function harness(): Harness {
  const html = htmlShell({
    cspSource: 'https://webview.test',
    nonce: NONCE,
    title: 'Compare',
    scriptUri: 'https://webview.test/compare.js',
    styleUris: ['https://webview.test/webview.css'],
    body: '<main id="app"></main>',
  });
  // runScripts "dangerously": if candidate text ever became a <script> or an event handler,
  // jsdom would run it and window.__p would change. The test must be able to fail.
  const dom = new JSDOM(html, { runScripts: 'dangerously', pretendToBeVisual: true });
  const posted: CompareToHost[] = [];
  const state = { value: undefined as unknown };
  const app = startCompareApp(dom.window as unknown as Window, {
    postMessage: (message) => posted.push(message),
    getState: () => state.value,
    setState: (value) => (state.value = value),
  });
  const win = dom.window;
  return {
    dom,
    app,
    posted,
    state,
    send: (message) => win.dispatchEvent(new win.MessageEvent('message', { data: message })),
    key: (key, init = {}) =>
      win.document.dispatchEvent(new win.KeyboardEvent('keydown', { key, bubbles: true, ...init })),
    candidateCode(position) {
      const code = win.document.querySelector(`.candidate[data-position="${position}"] code`)!;
      return Array.from(code.querySelectorAll('span.tok:not(.context)'))
        .map((s) => s.textContent)
        .join('');
    },
    flush: () => new Promise((resolve) => setTimeout(resolve, 40)),
  };
}

const comparison = (candidates: string[], id = 'cmp1', contextBefore = 'function f() {\n  ') => ({
  type: 'comparison' as const,
  comparison: { id, languageId: 'javascript', contextBefore, candidates },
});

describe('comparison webview', () => {
  it('posts ready first, renders every candidate, then reports rendered', async () => {
    const h = harness();
    assert.deepStrictEqual(h.posted[0], { type: 'ready' });
    h.send(comparison(['return 1;\n', 'return 2;\n', 'return a + b;\n']));
    assert.strictEqual(h.dom.window.document.querySelectorAll('.candidate').length, 3);
    assert.strictEqual(h.candidateCode(2), 'return a + b;\n');
    await h.flush();
    assert.deepStrictEqual(h.posted.at(-1), { type: 'rendered', comparisonId: 'cmp1' });
    assert.deepStrictEqual(h.state.value, { comparisonId: 'cmp1' });
  });

  it('V4: renders script-like candidate text literally and runs none of it', async () => {
    const h = harness();
    const doc = h.dom.window.document;
    const scriptsBefore = doc.querySelectorAll('script').length;
    h.send(comparison([ATTACK, 'x']));
    await h.flush();
    assert.strictEqual(h.candidateCode(0), ATTACK);
    assert.strictEqual(doc.querySelectorAll('script').length, scriptsBefore);
    assert.strictEqual(doc.querySelectorAll('img').length, 0);
    assert.strictEqual(doc.querySelectorAll('[onerror]').length, 0);
    assert.strictEqual((h.dom.window as unknown as { __p?: number }).__p, undefined);
    // Shown as text on screen, including the literal entity.
    assert.ok(doc.querySelector('.candidates')!.textContent!.includes('&lt;b&gt;'));
  });

  it('V4: the shell has a nonce CSP without unsafe-eval matching its only script', () => {
    const h = harness();
    const doc = h.dom.window.document;
    const csp = doc
      .querySelector('meta[http-equiv="Content-Security-Policy"]')!
      .getAttribute('content')!;
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, new RegExp(`script-src 'nonce-${NONCE.replace(/[+/=]/g, '\\$&')}'`));
    assert.doesNotMatch(csp, /unsafe-eval|unsafe-inline/);
    const scripts = doc.querySelectorAll('script');
    assert.strictEqual(scripts.length, 1);
    assert.strictEqual(scripts[0].getAttribute('nonce'), NONCE);
    // The panel still renders with the product's script (the app built its toolbar).
    assert.ok(doc.querySelector('.toolbar button'));
  });

  it('a number key picks; a repeated key or double click sends exactly one judgment', () => {
    const h = harness();
    h.send(comparison(['a', 'b', 'c', 'd']));
    h.key('3');
    h.key('3');
    h.key('2');
    const choose = h.dom.window.document.querySelectorAll<HTMLButtonElement>('button.choose')[0];
    choose.click();
    const judgments = h.posted.filter((m) => m.type === 'judgment');
    assert.deepStrictEqual(judgments, [
      { type: 'judgment', comparisonId: 'cmp1', judgment: { kind: 'pick', best: 2 } },
    ]);
  });

  it('ignores number keys beyond K and keys with modifiers', () => {
    const h = harness();
    h.send(comparison(['a', 'b']));
    h.key('5');
    h.key('1', { ctrlKey: true });
    assert.strictEqual(h.posted.filter((m) => m.type === 'judgment').length, 0);
  });

  it('ranking mode orders all candidates by number keys with a tie', () => {
    const h = harness();
    h.send(comparison(['a', 'b', 'c', 'd']));
    for (const key of ['r', '2', '4', '=', '1', '3']) h.key(key);
    assert.deepStrictEqual(h.posted.at(-1), {
      type: 'judgment',
      comparisonId: 'cmp1',
      judgment: { kind: 'ranking', groups: [[1], [3, 0], [2]] },
    });
  });

  it('ranking can be undone, cancelled and submitted early with Enter', () => {
    const h = harness();
    h.send(comparison(['a', 'b', 'c', 'd']));
    for (const key of ['r', '2', '4', 'Backspace', '3']) h.key(key);
    const badges = Array.from(h.dom.window.document.querySelectorAll('.rank')).map(
      (b) => b.textContent,
    );
    assert.deepStrictEqual(badges, ['', '#1', '#2', '']);
    h.key('Enter');
    assert.deepStrictEqual(h.posted.at(-1), {
      type: 'judgment',
      comparisonId: 'cmp1',
      judgment: { kind: 'ranking', groups: [[1], [2]] },
    });
  });

  it('keys and buttons for tie, none good and skip', () => {
    for (const [key, button, judgment] of [
      ['t', 'tie', { kind: 'ranking', groups: [[0, 1, 2]] }],
      ['n', 'none', { kind: 'none-good' }],
      ['s', 'skip', { kind: 'skipped' }],
    ] as const) {
      const byKey = harness();
      byKey.send(comparison(['a', 'b', 'c']));
      byKey.key(key);
      assert.deepStrictEqual(byKey.posted.at(-1), {
        type: 'judgment',
        comparisonId: 'cmp1',
        judgment,
      });
      const byMouse = harness();
      byMouse.send(comparison(['a', 'b', 'c']));
      byMouse.dom.window.document
        .querySelector<HTMLButtonElement>(`button[data-action="${button}"]`)!
        .click();
      assert.deepStrictEqual(byMouse.posted.at(-1), byKey.posted.at(-1));
    }
  });

  it('marks the tokens where candidates differ and not the shared ones', () => {
    const h = harness();
    h.send(comparison(['return a + b;\n', 'return a - b;\n']));
    const differing = (position: number) =>
      Array.from(
        h.dom.window.document.querySelectorAll(
          `.candidate[data-position="${position}"] span.differs`,
        ),
      ).map((s) => s.textContent);
    assert.deepStrictEqual(differing(0), ['+']);
    assert.deepStrictEqual(differing(1), ['-']);
  });

  it('colors a candidate that continues a string opened in the context as a string', () => {
    const h = harness();
    h.send(comparison(['world";\n', 'there";\n'], 'cmp1', 'const s = "hello '));
    const first = h.dom.window.document.querySelector(
      '.candidate[data-position="0"] span.tok:not(.context)',
    )!;
    assert.strictEqual(first.textContent, 'world"');
    assert.ok(first.classList.contains('tok-string'));
  });

  it('drops malformed messages and says so without rendering them', () => {
    const h = harness();
    h.send({ type: 'comparison', comparison: { id: '../x', languageId: 'js', candidates: [] } });
    h.send('<img src=x>');
    assert.strictEqual(h.dom.window.document.querySelectorAll('.candidate').length, 0);
    assert.match(h.dom.window.document.querySelector('.status')!.textContent!, /malformed/);
  });

  it('clears the comparison when the host confirms the record', () => {
    const h = harness();
    h.send(comparison(['a', 'b']));
    h.key('1');
    h.send({ type: 'recorded', comparisonId: 'cmp1', text: 'Recorded: picked 1 of 2.' });
    assert.strictEqual(h.dom.window.document.querySelectorAll('.candidate').length, 0);
    assert.strictEqual(h.state.value, undefined);
    assert.strictEqual(h.app.current, undefined);
  });
});
