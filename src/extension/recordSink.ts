/**
 * Writes records through the preference store of `src/data` (one durable JSONL file per
 * scope), opening each store file once, and keeps the judgment count for the status bar.
 */
import { openStore, type AppendResult, type PreferenceStore } from '../data';
import type { PreferenceRecord } from '../protocol/records';

export class RecordSink {
  private readonly stores = new Map<string, Promise<PreferenceStore>>();
  private readonly listeners: Array<(storePath: string) => void> = [];

  private store(storePath: string): Promise<PreferenceStore> {
    let store = this.stores.get(storePath);
    if (!store) {
      store = openStore(storePath);
      // A failed open (e.g. permissions) is retried on the next call instead of cached.
      store.catch(() => this.stores.delete(storePath));
      this.stores.set(storePath, store);
    }
    return store;
  }

  /** Appends one record (validated, redacted, flushed); resolves once it is on disk. */
  async append(record: PreferenceRecord, storePath: string): Promise<AppendResult> {
    const result = await (await this.store(storePath)).append(record);
    for (const listener of this.listeners) listener(storePath);
    return result;
  }

  /** Every record in the store, validated; [] when the store has no file yet. */
  async readAll(storePath: string): Promise<PreferenceRecord[]> {
    return (await this.store(storePath)).readAll().catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [];
      throw error;
    });
  }

  /** Number of judgment records in the store (implicit signals are not judgments). */
  async judgmentCount(storePath: string): Promise<number> {
    const records = await this.readAll(storePath);
    return records.filter((r) => r.type === 'judgment').length;
  }

  onDidAppend(listener: (storePath: string) => void): void {
    this.listeners.push(listener);
  }
}
