/**
 * Delivery of messages to a webview that may not be listening: before its script has said
 * "ready", while the panel is hidden (without retainContextWhenHidden the content is torn down
 * and rebuilt on show), after a window reload (a new panel revived by the serializer), or when
 * `postMessage` reports failure. Messages wait in order and are delivered when the webview can
 * take them; the "replay" message (the current comparison) is sent again whenever the content
 * was rebuilt, so what the extension holds is what the webview shows.
 */
import type { Logger } from './log';

/** The part of a vscode.WebviewPanel the channel needs (a fake in unit tests). */
export interface WebviewPort<T> {
  readonly visible: boolean;
  postMessage(message: T): PromiseLike<boolean>;
}

const RETRY_MS = [20, 50, 100, 250, 500, 1000];

export class WebviewChannel<T> {
  private port: WebviewPort<T> | undefined;
  private ready = false;
  private readonly queue: T[] = [];
  private replay: T | undefined;
  private flushing = false;
  private retries = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly log: Logger) {}

  /** Messages waiting for delivery (for tests and diagnostics). */
  get pending(): readonly T[] {
    return this.queue;
  }

  /** A panel was created or revived; its script has not said "ready" yet. */
  attach(port: WebviewPort<T>): void {
    this.port = port;
    this.ready = false;
  }

  /** The panel was disposed; messages keep waiting for the next one. */
  detach(): void {
    this.port = undefined;
    this.ready = false;
    this.clearRetry();
  }

  /** The webview script loaded (first time, after show, or after reload). */
  onReady(): void {
    this.ready = true;
    if (this.replay !== undefined && !this.queue.includes(this.replay)) {
      this.queue.unshift(this.replay);
    }
    void this.flush();
  }

  /** The panel was hidden or shown. Hidden content is torn down; it says "ready" again. */
  onVisibilityChanged(visible: boolean): void {
    if (!visible) this.ready = false;
  }

  /** Sets the message that restores the view when its content is rebuilt (or clears it). */
  setReplay(message: T | undefined): void {
    this.replay = message;
  }

  post(message: T): void {
    this.queue.push(message);
    void this.flush();
  }

  /** Drops queued messages matching `predicate` (superseded ones). */
  drop(predicate: (message: T) => boolean): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (predicate(this.queue[i])) this.queue.splice(i, 1);
    }
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const port = this.port;
        if (!port || !this.ready || !port.visible) return;
        const message = this.queue[0];
        let delivered = false;
        try {
          delivered = await port.postMessage(message);
        } catch (error) {
          this.log.warn(`webview postMessage threw: ${(error as Error).message}`);
        }
        if (this.port !== port) continue;
        if (!delivered) {
          this.scheduleRetry();
          return;
        }
        if (this.queue[0] === message) this.queue.shift();
        this.retries = 0;
      }
    } finally {
      this.flushing = false;
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer) return;
    const delay = RETRY_MS[Math.min(this.retries, RETRY_MS.length - 1)];
    this.retries++;
    this.log.debug(`webview did not take a message; retrying in ${delay} ms`);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.flush();
    }, delay);
  }

  private clearRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  dispose(): void {
    this.detach();
    this.queue.length = 0;
  }
}
