import * as vscode from 'vscode';
import { parseDashboardToHost, type HostToDashboard } from '../protocol/webviewMessages';
import type { HostToTrainingDashboard } from '../protocol/trainingDashboard';
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
    /** Training messages of the current run, replayed when the webview (re)opens. */
    private readonly trainingReplay: () => readonly HostToTrainingDashboard[] = () => [],
  ) {}

  /** Sends the current state (model, judgments, training) again if the panel is open. */
  refreshState(): void {
    void this.panel?.webview.postMessage({ type: 'state', ...this.getState() });
  }

  /** Sends a live training message (charts, run config) if the panel is open. */
  post(message: HostToTrainingDashboard): void {
    void this.panel?.webview.postMessage(message);
  }

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
      styles: ['dashboard.css'],
      body: `<h1>Code RLHF</h1>
<dl>
<dt>Model</dt><dd id="model"></dd>
<dt>Judgments collected</dt><dd id="judgments"></dd>
<dt>Training</dt><dd id="training"></dd>
</dl>
<button id="refresh" type="button">Refresh</button>
<h2>Training run</h2>
<p id="run-status"></p>
<div id="charts"></div>
<h3>Run config</h3>
<table id="run-config"></table>`,
    });
    panel.webview.onDidReceiveMessage(
      (raw: unknown) => {
        try {
          const message = parseDashboardToHost(raw);
          this.received.push(message.type);
          this.log.info(`dashboard message: ${message.type}`);
          void panel.webview.postMessage({ type: 'state', ...this.getState() });
          if (message.type === 'ready') {
            for (const replayed of this.trainingReplay()) void panel.webview.postMessage(replayed);
          }
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
