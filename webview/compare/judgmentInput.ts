/**
 * The keyboard- and mouse-driven judgment state of the comparison webview, without the DOM.
 *
 * Pick mode: a number picks the best candidate; T says all are equally good; N none good; S skip;
 * R starts ranking. Ranking mode: numbers append candidates from best to worst; "=" (or T) ties
 * the next number with the previous one; Backspace undoes; Enter submits (automatic once every
 * candidate is placed); Escape goes back to pick mode.
 */
import type { ViewJudgment } from '../../src/protocol/webviewMessages';

export type InputMode = 'pick' | 'rank';

export interface InputResult {
  /** A complete judgment to send, if this input finished one. */
  submit?: ViewJudgment;
  /** Whether the visible state changed (mode, ranking, tie flag). */
  changed: boolean;
}

const NOTHING: InputResult = { changed: false };

export class JudgmentInput {
  mode: InputMode = 'pick';
  /** Ranking so far: groups of positions, best first; positions in one group are tied. */
  groups: number[][] = [];
  /** The next ranked candidate joins the last group (a tie). */
  tieNext = false;

  constructor(readonly count: number) {}

  /** Rank (1-based) of `position` in the current ranking, or undefined when not placed. */
  rankOf(position: number): number | undefined {
    const index = this.groups.findIndex((group) => group.includes(position));
    return index < 0 ? undefined : index + 1;
  }

  get placed(): number {
    return this.groups.reduce((sum, group) => sum + group.length, 0);
  }

  /** Handles a KeyboardEvent.key value (modifier combinations are filtered by the caller). */
  key(key: string): InputResult {
    if (/^[1-9]$/.test(key)) {
      const position = Number(key) - 1;
      if (position >= this.count) return NOTHING;
      return this.mode === 'pick' ? this.pick(position) : this.rank(position);
    }
    switch (key.toLowerCase()) {
      case 'r':
        return this.mode === 'pick' ? this.startRanking() : NOTHING;
      case 't':
        return this.mode === 'pick' ? this.allEqual() : this.tieWithPrevious();
      case '=':
        return this.mode === 'rank' ? this.tieWithPrevious() : NOTHING;
      case 'n':
        return this.noneGood();
      case 's':
        return this.skip();
      case 'enter':
        return this.mode === 'rank' ? this.submitRanking() : NOTHING;
      case 'backspace':
        return this.mode === 'rank' ? this.undo() : NOTHING;
      case 'escape':
        return this.mode === 'rank' ? this.cancelRanking() : NOTHING;
      default:
        return NOTHING;
    }
  }

  pick(position: number): InputResult {
    if (position < 0 || position >= this.count) return NOTHING;
    return { submit: { kind: 'pick', best: position }, changed: true };
  }

  allEqual(): InputResult {
    const everyone = Array.from({ length: this.count }, (_, i) => i);
    return { submit: { kind: 'ranking', groups: [everyone] }, changed: true };
  }

  noneGood(): InputResult {
    return { submit: { kind: 'none-good' }, changed: true };
  }

  skip(): InputResult {
    return { submit: { kind: 'skipped' }, changed: true };
  }

  startRanking(): InputResult {
    this.mode = 'rank';
    this.groups = [];
    this.tieNext = false;
    return { changed: true };
  }

  cancelRanking(): InputResult {
    this.mode = 'pick';
    this.groups = [];
    this.tieNext = false;
    return { changed: true };
  }

  rank(position: number): InputResult {
    if (position < 0 || position >= this.count || this.rankOf(position) !== undefined) {
      return NOTHING;
    }
    if (this.tieNext && this.groups.length > 0) this.groups[this.groups.length - 1].push(position);
    else this.groups.push([position]);
    this.tieNext = false;
    if (this.placed === this.count) return this.submitRanking();
    return { changed: true };
  }

  tieWithPrevious(): InputResult {
    if (this.groups.length === 0 || this.placed === this.count) return NOTHING;
    this.tieNext = !this.tieNext;
    return { changed: true };
  }

  undo(): InputResult {
    if (this.tieNext) {
      this.tieNext = false;
      return { changed: true };
    }
    const last = this.groups[this.groups.length - 1];
    if (!last) return NOTHING;
    last.pop();
    if (last.length === 0) this.groups.pop();
    return { changed: true };
  }

  /** Submits the ranking so far; needs at least two candidates placed. */
  submitRanking(): InputResult {
    if (this.placed < 2) return NOTHING;
    const groups = this.groups.map((group) => [...group]);
    return { submit: { kind: 'ranking', groups }, changed: true };
  }
}
