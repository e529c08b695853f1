import * as vscode from 'vscode';

export interface StatusInfo {
  model: string;
  adapter: string;
  judgments: number | undefined;
  training: string;
}

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
    this.item.command = 'codeRlhf.selectModel';
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
        'Click to select the model.',
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

function escape(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');
}
