import * as vscode from 'vscode';
import { DashboardPanel } from './dashboardPanel';
import { componentLogger, createLogChannel } from './log';

/** What `activate` returns: a small API used by the in-host integration tests. */
export interface CodeRlhfApi {
  dashboardMessages(): readonly string[];
}

export function activate(context: vscode.ExtensionContext): CodeRlhfApi {
  const channel = createLogChannel();
  context.subscriptions.push(channel);
  const log = componentLogger(channel, 'extension');

  const dashboard = new DashboardPanel(
    context.extensionUri,
    componentLogger(channel, 'dashboard'),
    () => ({
      judgments: 0,
      model: 'default (embedded)',
      training: 'idle',
    }),
  );
  context.subscriptions.push(
    dashboard,
    vscode.commands.registerCommand('codeRlhf.showDashboard', () => dashboard.show()),
    vscode.commands.registerCommand('codeRlhf.showLog', () => channel.show()),
  );
  log.info('activated');
  return { dashboardMessages: () => dashboard.received };
}

export function deactivate(): void {}
