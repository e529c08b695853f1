/**
 * What clicking the status bar item offers: the commands that act on what the item shows
 * (model, adapter, judgments, training), each with the current value beside it. Kept free of
 * `vscode` so the entries can be checked against package.json in unit tests.
 */

/** What the status bar item shows. */
export interface StatusInfo {
  model: string;
  adapter: string;
  judgments: number | undefined;
  training: string;
}

/** The command the status bar item runs on click: a quick pick of {@link statusMenuItems}. */
export const STATUS_MENU_COMMAND = 'codeRlhf.statusMenu';

export interface StatusMenuItem {
  /** Codicon id shown before the label. */
  icon: string;
  /** The command's title in package.json, so the menu and the palette use the same words. */
  label: string;
  /** The current value the command changes or acts on. */
  description: string;
  command: string;
}

/** The menu entries for the current status, in the order they are offered. */
export function statusMenuItems(info: StatusInfo): StatusMenuItem[] {
  const judgments =
    info.judgments === undefined
      ? 'judgments not counted yet'
      : `${info.judgments} judgment${info.judgments === 1 ? '' : 's'}`;
  const training = info.training === 'idle' ? judgments : `running: ${info.training}`;
  return [
    {
      icon: 'server',
      label: 'Select model',
      description: info.model,
      command: 'codeRlhf.selectModel',
    },
    {
      icon: 'layers',
      label: 'Select adapter',
      description: info.adapter,
      command: 'codeRlhf.selectAdapter',
    },
    {
      icon: 'beaker',
      label: 'Train on my judgments',
      description: training,
      command: 'codeRlhf.train',
    },
    {
      icon: 'graph',
      label: 'Show dashboard',
      description: `training ${info.training}`,
      command: 'codeRlhf.showDashboard',
    },
    {
      icon: 'eye-closed',
      label: 'Blind A/B test (base vs tuned)',
      description: info.adapter === 'base' ? 'needs an adapter' : `base vs ${info.adapter}`,
      command: 'codeRlhf.blindCompare',
    },
    { icon: 'output', label: 'Show log', description: '', command: 'codeRlhf.showLog' },
  ];
}
