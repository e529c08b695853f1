import * as vscode from 'vscode';
import { parseCompareToHost, type HostToCompare } from '../protocol/webviewMessages';
import type { CompareController } from './compareController';
import type { Logger } from './log';
import type { WebviewChannel } from './webviewChannel';
import { webviewHtml } from './webviewHtml';

export const COMPARE_VIEW_TYPE = 'codeRlhf.compare';

/**
 * The comparison webview panel beside the editor. Messages go through a WebviewChannel (queued
 * until ready and while hidden); a serializer revives the panel after a window reload, and the
 * controller re-sends the pending comparison it held.
 */
export class ComparePanel implements vscode.Disposable, vscode.WebviewPanelSerializer {
  private panel: vscode.WebviewPanel | undefined;
  private controller: CompareController | undefined;
  /** Validated message types received from the webview, in order (read by e2e tests). */
  readonly received: string[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly channel: WebviewChannel<HostToCompare>,
    private readonly log: Logger,
  ) {}

  setController(controller: CompareController): void {
    this.controller = controller;
  }

  /** Whether a panel is open (created or revived). */
  get isOpen(): boolean {
    return this.panel !== undefined;
  }

  /** Shows the panel beside the editor; with focus (default) so number keys reach it. */
  reveal(preserveFocus = false): void {
    if (this.panel) {
      this.panel.reveal(this.panel.viewColumn ?? vscode.ViewColumn.Beside, preserveFocus);
      return;
    }
    const panel = vscode.window.createWebviewPanel(
      COMPARE_VIEW_TYPE,
      'Compare completions',
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus },
      {},
    );
    this.attach(panel);
  }

  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
    const comparisonId =
      typeof state === 'object' && state !== null && 'comparisonId' in state
        ? String((state as { comparisonId: unknown }).comparisonId)
        : undefined;
    this.log.info(`reviving the comparison panel (comparison ${comparisonId ?? 'none'})`);
    const previous = this.panel;
    // Replaced, not closed by the user: its comparison lives on in the revived panel.
    this.panel = undefined;
    previous?.dispose();
    this.attach(panel);
    this.controller?.restore(comparisonId);
  }

  private attach(panel: vscode.WebviewPanel): void {
    this.panel = panel;
    const webview = panel.webview;
    webview.options = {
      enableScripts: true,
      localResourceRoots: [
        vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview'),
        vscode.Uri.joinPath(this.extensionUri, 'media'),
      ],
    };
    this.channel.attach({
      get visible() {
        return panel.visible;
      },
      postMessage: (message) => webview.postMessage(message),
    });
    const disposables: vscode.Disposable[] = [];
    webview.onDidReceiveMessage((raw: unknown) => this.onMessage(raw), undefined, disposables);
    panel.onDidChangeViewState(
      () => this.channel.onVisibilityChanged(panel.visible),
      undefined,
      disposables,
    );
    panel.onDidDispose(
      () => {
        if (this.panel !== panel) return;
        this.panel = undefined;
        // Closed by the user (a window reload does not dispose panels in the extension host):
        // the comparison on it is abandoned, not brought back later.
        this.controller?.onPanelClosed();
        this.channel.detach();
        for (const d of disposables.splice(0)) d.dispose();
      },
      undefined,
      disposables,
    );
    webview.html = webviewHtml(webview, this.extensionUri, {
      title: 'Compare completions',
      script: 'compare.js',
      styles: ['compare.css'],
      body: '<main id="app"></main>',
    });
  }

  private onMessage(raw: unknown): void {
    let message;
    try {
      message = parseCompareToHost(raw);
    } catch (error) {
      this.log.warn(`dropped compare message: ${(error as Error).message}`);
      return;
    }
    this.received.push(message.type);
    const controller = this.controller;
    switch (message.type) {
      case 'ready':
        this.channel.onReady();
        break;
      case 'rendered':
        void controller?.onRendered(message.comparisonId);
        break;
      case 'judgment':
        controller
          ?.onJudgment(message.comparisonId, message.judgment)
          .catch((error: Error) =>
            this.log.error(`judgment handling failed: ${error.stack ?? error.message}`),
          );
        break;
    }
  }

  dispose(): void {
    this.panel?.dispose();
    this.channel.dispose();
  }
}
