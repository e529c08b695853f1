import * as vscode from 'vscode';
import { STATUS_MENU_COMMAND, statusMenuItems, type StatusInfo } from './statusMenu';

export type { StatusInfo } from './statusMenu';

/** The status bar item: active model and adapter, judgments collected, training state. */
export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem(
    'codeRlhf.status',
    vscode.StatusBarAlignment.Right,
    100,
  );
  private info: StatusInfo = {
    model: '…',
    adapter: 'base',
    judgments: undefined,
    training: 'idle',
  };

  constructor() {
    this.item.name = 'Code RLHF';
    this.item.command = STATUS_MENU_COMMAND;
    this.render();
    this.item.show();
  }

  get current(): StatusInfo {
    return { ...this.info };
  }

  update(change: Partial<StatusInfo>): void {
    this.info = { ...this.info, ...change };
    this.render();
  }

  private render(): void {
    const { model, adapter, judgments, training } = this.info;
    const count = judgments === undefined ? '?' : String(judgments);
    const busy = training !== 'idle' ? '$(sync~spin) ' : '';
    const noun = judgments === 1 ? 'judgment' : 'judgments';
    this.item.text = `${busy}$(beaker) ${model} · ${adapter} · ${count} ${noun}`;
    this.item.tooltip = new vscode.MarkdownString(
      [
        '**Code RLHF**',
        '',
        `- Model: ${escape(model)}`,
        `- Adapter: ${escape(adapter)}`,
        `- Judgments collected: ${count}`,
        `- Training: ${escape(training)}`,
        '',
        'Click to choose the model or adapter, train, or open the dashboard.',
      ].join('\n'),
    );
    this.item.accessibilityInformation = {
      label: `Code RLHF: model ${model}, adapter ${adapter}, ${count} judgments, training ${training}`,
    };
  }

  dispose(): void {
    this.item.dispose();
  }
}

/** The status bar item's click: a quick pick of the commands for what it shows. */
export async function showStatusMenu(info: StatusInfo): Promise<void> {
  const items = statusMenuItems(info).map((item) => ({
    label: `$(${item.icon}) ${item.label}`,
    description: item.description,
    command: item.command,
  }));
  const choice = await vscode.window.showQuickPick(items, {
    title: 'Code RLHF',
    placeHolder: `${info.model} · ${info.adapter}`,
  });
  if (choice) await vscode.commands.executeCommand(choice.command);
}

function escape(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');
}
