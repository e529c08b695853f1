import * as vscode from 'vscode';
import { parseDashboardToHost, type HostToDashboard } from '../protocol/webviewMessages';
import type { Logger } from './log';
import { webviewHtml } from './webviewHtml';

/** State the dashboard shows; supplied by the extension on each refresh. */
export type DashboardState = Omit<HostToDashboard, 'type'>;

/** The "Code RLHF: Show dashboard" panel: model, judgments collected, training state. */
export class DashboardPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  /** Messages received from the webview, by type; read by the end-to-end tests. */
  readonly received: string[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly log: Logger,
    private readonly getState: () => DashboardState,
  ) {}

  show(): void {
    if (this.panel) {
      this.panel.reveal();
      return;
    }
    const panel = vscode.window.createWebviewPanel(
      'codeRlhf.dashboard',
      'Code RLHF',
      vscode.ViewColumn.Beside,
      {
        enableScripts: true,
        localResourceRoots: [
          vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview'),
          vscode.Uri.joinPath(this.extensionUri, 'media'),
        ],
      },
    );
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, {
      title: 'Code RLHF',
      script: 'dashboard.js',
      body: `<h1>Code RLHF</h1>
<dl>
<dt>Model</dt><dd id="model"></dd>
<dt>Judgments collected</dt><dd id="judgments"></dd>
<dt>Training</dt><dd id="training"></dd>
</dl>
<button id="refresh" type="button">Refresh</button>`,
    });
    panel.webview.onDidReceiveMessage(
      (raw: unknown) => {
        try {
          const message = parseDashboardToHost(raw);
          this.received.push(message.type);
          this.log.info(`dashboard message: ${message.type}`);
          void panel.webview.postMessage({ type: 'state', ...this.getState() });
        } catch (error) {
          this.log.warn(`dropped dashboard message: ${(error as Error).message}`);
        }
      },
      undefined,
      this.disposables,
    );
    panel.onDidDispose(() => (this.panel = undefined), undefined, this.disposables);
    this.panel = panel;
  }

  dispose(): void {
    this.panel?.dispose();
    for (const disposable of this.disposables) disposable.dispose();
  }
}
