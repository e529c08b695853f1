/**
 * The comparison webview: renders candidates (as text nodes only: model output is never parsed
 * as HTML), takes the judgment by keyboard or mouse, and talks to the extension through typed,
 * validated messages. The extension is the source of truth for the pending comparison; this
 * view only keeps the comparison id in its webview state so a reload can ask for it again.
 */
import {
  parseHostToCompare,
  type BlindScoreView,
  type CompareToHost,
  type ComparisonView,
  type ViewJudgment,
} from '../../src/protocol/webviewMessages';
import { sharedTokens } from './diff';
import { tokenize, tokensFrom, type Token } from './highlight';
import { JudgmentInput, type InputResult } from './judgmentInput';

export interface VsCodeApi {
  postMessage(message: CompareToHost): void;
  getState(): unknown;
  setState(state: unknown): void;
}

/** Webview state kept across reloads and hide/show. */
export interface CompareViewState {
  comparisonId: string;
}

const CONTEXT_CHARS = 4000;

interface Elements {
  status: HTMLElement;
  /** Blind A/B score line; hidden outside blind A/B comparisons. */
  score: HTMLElement;
  toolbar: HTMLElement;
  candidates: HTMLElement;
  help: HTMLElement;
  buttons: Record<string, HTMLButtonElement>;
}

export class CompareApp {
  private comparison: ComparisonView | undefined;
  private input: JudgmentInput | undefined;
  private submitted = false;
  private readonly el: Elements;

  constructor(
    private readonly win: Window,
    private readonly api: VsCodeApi,
  ) {
    this.el = this.buildSkeleton();
    win.addEventListener('message', (event: MessageEvent<unknown>) => this.onMessage(event.data));
    win.document.addEventListener('keydown', (event) => this.onKey(event));
    this.api.postMessage({ type: 'ready' });
  }

  /** The comparison on screen, if any (for tests). */
  get current(): ComparisonView | undefined {
    return this.comparison;
  }

  private get doc(): Document {
    return this.win.document;
  }

  private make<K extends keyof HTMLElementTagNameMap>(
    tag: K,
    className?: string,
    text?: string,
  ): HTMLElementTagNameMap[K] {
    const element = this.doc.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined) element.textContent = text;
    return element;
  }

  private buildSkeleton(): Elements {
    const root = this.doc.getElementById('app') ?? this.doc.body;
    const status = this.make('div', 'status');
    status.setAttribute('role', 'status');
    status.setAttribute('aria-live', 'polite');
    status.textContent = 'Run "Compare completions at cursor" in an editor.';
    const score = this.make('div', 'blind-score');
    score.setAttribute('role', 'status');
    score.setAttribute('aria-live', 'polite');
    score.hidden = true;
    const toolbar = this.make('div', 'toolbar');
    toolbar.setAttribute('role', 'toolbar');
    const buttons: Record<string, HTMLButtonElement> = {};
    const button = (id: string, label: string, action: () => InputResult) => {
      const b = this.make('button', `action action-${id}`, label);
      b.type = 'button';
      b.dataset.action = id;
      b.addEventListener('click', () => this.apply(action()));
      toolbar.append(b);
      buttons[id] = b;
    };
    const withInput = (f: (input: JudgmentInput) => InputResult) => () =>
      this.input ? f(this.input) : { changed: false };
    button(
      'rank',
      'Rank all (R)',
      withInput((i) => i.startRanking()),
    );
    button(
      'tie',
      'All equal (T)',
      withInput((i) => i.allEqual()),
    );
    button(
      'none',
      'None good (N)',
      withInput((i) => i.noneGood()),
    );
    button(
      'skip',
      'Skip (S)',
      withInput((i) => i.skip()),
    );
    button(
      'tieNext',
      'Tie with previous (=)',
      withInput((i) => i.tieWithPrevious()),
    );
    button(
      'undo',
      'Undo (Backspace)',
      withInput((i) => i.undo()),
    );
    button(
      'submit',
      'Submit ranking (Enter)',
      withInput((i) => i.submitRanking()),
    );
    button(
      'cancel',
      'Cancel ranking (Esc)',
      withInput((i) => i.cancelRanking()),
    );
    const candidates = this.make('div', 'candidates');
    const help = this.make('p', 'help');
    root.append(status, score, toolbar, candidates, help);
    const el = { status, score, toolbar, candidates, help, buttons };
    this.updateControls(el);
    return el;
  }

  private onMessage(data: unknown): void {
    let message;
    try {
      message = parseHostToCompare(data);
    } catch (error) {
      this.setStatus(`Ignored a malformed message: ${(error as Error).message}`, false);
      return;
    }
    switch (message.type) {
      case 'comparison':
        this.show(message.comparison);
        break;
      case 'status':
        this.setStatus(message.text, message.busy);
        break;
      case 'recorded':
        if (this.comparison?.id === message.comparisonId) {
          this.comparison = undefined;
          this.input = undefined;
          this.submitted = false;
          this.el.candidates.replaceChildren();
          delete this.el.candidates.dataset.comparisonId;
          this.api.setState(undefined);
          this.updateControls();
        }
        this.setStatus(message.text, false);
        break;
      case 'blindScore':
        this.showScore(message.score);
        break;
      case 'blindScoreError':
        this.el.score.hidden = false;
        this.el.score.classList.add('error');
        this.el.score.textContent = message.text;
        break;
    }
  }

  private showScore(score: BlindScoreView): void {
    const el = this.el.score;
    el.hidden = false;
    el.classList.remove('error');
    const pct = (x: number | null) => (x === null ? '–' : `${(100 * x).toFixed(1)}%`);
    const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
    const counted = score.tunedWins + score.baseWins + score.ties;
    const head = this.make(
      'strong',
      'blind-score-title',
      `Tuned adapter ${score.adapter} vs base: `,
    );
    const counts = this.make(
      'span',
      'blind-score-counts',
      `${plural(score.tunedWins, 'tuned win', 'tuned wins')}, ` +
        `${plural(score.baseWins, 'base win', 'base wins')}, ${plural(score.ties, 'tie', 'ties')}` +
        (score.skipped ? `, ${score.skipped} skipped (not counted)` : '') +
        '. ',
    );
    counts.dataset.tuned = String(score.tunedWins);
    counts.dataset.base = String(score.baseWins);
    counts.dataset.ties = String(score.ties);
    const rate = this.make(
      'span',
      'blind-score-rate',
      counted === 0
        ? 'No counted judgment yet.'
        : `Tuned win rate ${pct(score.rate)} (95% Wilson interval ${pct(score.low)} to ` +
            `${pct(score.high)}, n = ${counted}).`,
    );
    const note = this.make(
      'span',
      'blind-score-note',
      ' Ties ("all equal", or "none good": both bad) count as half a win.',
    );
    el.replaceChildren(head, counts, rate, note);
  }

  private setStatus(text: string, busy: boolean): void {
    this.el.status.textContent = text;
    this.el.status.classList.toggle('busy', busy);
  }

  private show(comparison: ComparisonView): void {
    // The host sends a comparison again only when it wants a (new) judgment for it: after the
    // view was rebuilt, or when recording failed. Either way the input starts fresh.
    this.comparison = comparison;
    this.input = new JudgmentInput(comparison.candidates.length);
    this.submitted = false;
    const state: CompareViewState = { comparisonId: comparison.id };
    this.api.setState(state);
    this.renderCandidates(comparison);
    const blind = comparison.mode === 'blind-ab';
    this.el.candidates.classList.toggle('blind', blind);
    // The score belongs to blind A/B; an ordinary comparison hides it.
    if (!blind) this.el.score.hidden = true;
    this.setStatus(
      blind
        ? 'Blind A/B: one completion is from the base model and one from the tuned adapter, ' +
            'in random order. Which is better?'
        : `Which completion is best? ${comparison.candidates.length} candidates, in random order.`,
      false,
    );
    this.updateControls();
    const id = comparison.id;
    const announce = () => {
      if (this.comparison?.id === id) this.api.postMessage({ type: 'rendered', comparisonId: id });
    };
    // Report "rendered" once the frame holding the candidates has been laid out.
    if (typeof this.win.requestAnimationFrame === 'function') {
      this.win.requestAnimationFrame(() => this.win.setTimeout(announce, 0));
    } else {
      this.win.setTimeout(announce, 0);
    }
  }

  private renderCandidates(comparison: ComparisonView): void {
    const context = comparison.contextBefore.slice(-CONTEXT_CHARS);
    const contextLine = context.slice(context.lastIndexOf('\n') + 1);
    const tokenLists: Token[][] = comparison.candidates.map((text) =>
      tokensFrom(tokenize(context + text, comparison.languageId), context.length),
    );
    const shared = sharedTokens(tokenLists.map((tokens) => tokens.map((t) => t.text)));
    const contextTokens = tokensFrom(
      tokenize(context, comparison.languageId),
      context.length - contextLine.length,
    );
    const cards = comparison.candidates.map((text, position) => {
      const card = this.make('section', 'candidate');
      card.dataset.position = String(position);
      card.setAttribute('aria-label', `Candidate ${position + 1}`);
      const header = this.make('header', 'candidate-header');
      const label = this.make('span', 'label', String(position + 1));
      const rank = this.make('span', 'rank');
      const choose = this.make('button', 'choose', 'Best');
      choose.type = 'button';
      choose.title = `Pick candidate ${position + 1} as the best (key ${position + 1})`;
      choose.addEventListener('click', () => {
        if (!this.input) return;
        this.apply(
          this.input.mode === 'pick' ? this.input.pick(position) : this.input.rank(position),
        );
      });
      header.append(label, rank, choose);
      const pre = this.make('pre', 'code');
      const code = this.make('code');
      for (const token of contextTokens) code.append(this.span(token, 'context'));
      tokenLists[position].forEach((token, t) => {
        code.append(this.span(token, shared[position][t] ? undefined : 'differs'));
      });
      pre.append(code);
      card.append(header, pre);
      if (text.length === 0) card.append(this.make('p', 'empty', '(empty completion)'));
      return card;
    });
    this.el.candidates.replaceChildren(...cards);
    this.el.candidates.dataset.comparisonId = comparison.id;
  }

  private span(token: Token, extra?: string): HTMLSpanElement {
    const span = this.make('span', `tok tok-${token.kind}${extra ? ` ${extra}` : ''}`);
    // textContent, never innerHTML: the text is arbitrary model output or user code.
    span.textContent = token.text;
    return span;
  }

  private onKey(event: KeyboardEvent): void {
    if (!this.input || this.submitted) return;
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    const target = event.target as HTMLElement | null;
    // Enter on a focused button is that button's click; do not also submit a ranking.
    if (event.key === 'Enter' && target?.tagName === 'BUTTON') return;
    const result = this.input.key(event.key);
    if (result.changed || result.submit) event.preventDefault();
    this.apply(result);
  }

  private apply(result: InputResult): void {
    if (!this.comparison || !this.input || this.submitted) return;
    if (result.submit) this.submit(result.submit);
    else if (result.changed) this.updateControls();
  }

  private submit(judgment: ViewJudgment): void {
    if (!this.comparison || this.submitted) return;
    // One judgment per comparison: a double click or key repeat cannot send a second one.
    this.submitted = true;
    this.api.postMessage({ type: 'judgment', comparisonId: this.comparison.id, judgment });
    this.setStatus('Recording your judgment…', true);
    this.updateControls();
  }

  private updateControls(el: Elements = this.el): void {
    const input = this.input;
    const active = !!input && !this.submitted;
    const ranking = input?.mode === 'rank';
    const { buttons } = el;
    for (const id of ['rank', 'tie', 'none', 'skip']) {
      buttons[id].hidden = ranking;
      buttons[id].disabled = !active;
    }
    for (const id of ['tieNext', 'undo', 'submit', 'cancel']) {
      buttons[id].hidden = !ranking;
      buttons[id].disabled = !active;
    }
    if (input) {
      buttons.tieNext.setAttribute('aria-pressed', String(input.tieNext));
      buttons.submit.disabled = !active || input.placed < 2;
    }
    for (const card of Array.from(el.candidates.children) as HTMLElement[]) {
      const position = Number(card.dataset.position);
      const rank = input?.rankOf(position);
      const badge = card.querySelector('.rank');
      if (badge) badge.textContent = rank === undefined ? '' : `#${rank}`;
      card.classList.toggle('ranked', rank !== undefined);
      const choose = card.querySelector('button.choose') as HTMLButtonElement | null;
      if (choose) {
        choose.textContent = ranking ? 'Rank next' : 'Best';
        choose.disabled = !active || rank !== undefined;
      }
    }
    const count = input?.count ?? 0;
    el.help.textContent = !input
      ? ''
      : ranking
        ? `Ranking: press 1-${count} from best to worst. "=" ties the next one with the previous, ` +
          'Backspace undoes, Enter submits, Esc cancels.'
        : `Press 1-${count} to pick the best, R to rank all, T if all are equally good, ` +
          'N if none is good, S to skip.';
  }
}

/** Starts the app on `win`; `main.ts` calls this with the real webview globals. */
export function startCompareApp(win: Window, api: VsCodeApi): CompareApp {
  return new CompareApp(win, api);
}
