/**
 * Comparisons shown and not yet judged, kept in the workspace's memento so that a window reload
 * does not lose them: the revived webview asks for its comparison id and gets the same
 * candidates and the same prompt snapshot back. The extension side is the source of truth.
 *
 * Reads come from memory; writes go through to the memento in order, off the path from the
 * command to the candidates on screen (the write has resolved long before a user can reload).
 */
import type { PendingComparison } from './comparison';

/** The part of vscode.Memento used here. */
export interface MementoLike {
  get<T>(key: string): T | undefined;
  update(key: string, value: unknown): PromiseLike<void>;
}

const KEY = 'codeRlhf.pendingComparisons';
/** Older unjudged comparisons (abandoned panels) are forgotten beyond this many. */
const MAX_PENDING = 10;

export class PendingComparisons {
  private items: PendingComparison[];
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly memento: MementoLike) {
    const stored = memento.get<PendingComparison[]>(KEY);
    this.items = Array.isArray(stored) ? stored : [];
  }

  get(id: string): PendingComparison | undefined {
    return this.items.find((p) => p.id === id);
  }

  /** The most recently added comparison, if any. */
  latest(): PendingComparison | undefined {
    return this.items[this.items.length - 1];
  }

  /** Adds or replaces `pending`; resolves when the memento holds it. */
  put(pending: PendingComparison): Promise<void> {
    const rest = this.items.filter((p) => p.id !== pending.id);
    this.items = [...rest, pending].slice(-MAX_PENDING);
    return this.persist();
  }

  delete(id: string): Promise<void> {
    this.items = this.items.filter((p) => p.id !== id);
    return this.persist();
  }

  /** Resolves when every write so far has reached the memento. */
  flushed(): Promise<void> {
    return this.writing;
  }

  private persist(): Promise<void> {
    const snapshot = this.items;
    this.writing = this.writing.then(() => this.memento.update(KEY, snapshot));
    return this.writing;
  }
}
