/**
 * Comparisons shown and not yet judged, kept in the workspace's memento so that a window reload
 * does not lose them: the revived webview asks for its comparison id and gets the same
 * candidates and the same prompt snapshot back. The extension side is the source of truth.
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
  constructor(private readonly memento: MementoLike) {}

  private all(): PendingComparison[] {
    const stored = this.memento.get<PendingComparison[]>(KEY);
    return Array.isArray(stored) ? stored : [];
  }

  get(id: string): PendingComparison | undefined {
    return this.all().find((p) => p.id === id);
  }

  /** The most recently added comparison, if any. */
  latest(): PendingComparison | undefined {
    const all = this.all();
    return all[all.length - 1];
  }

  async put(pending: PendingComparison): Promise<void> {
    const rest = this.all().filter((p) => p.id !== pending.id);
    await this.memento.update(KEY, [...rest, pending].slice(-MAX_PENDING));
  }

  async delete(id: string): Promise<void> {
    await this.memento.update(
      KEY,
      this.all().filter((p) => p.id !== id),
    );
  }
}
