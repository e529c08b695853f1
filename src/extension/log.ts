import * as vscode from 'vscode';

/** One log channel for the whole extension; each line carries a component tag. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug(message: string): void;
}

export function createLogChannel(): vscode.LogOutputChannel {
  return vscode.window.createOutputChannel('Code RLHF', { log: true });
}

export function componentLogger(channel: vscode.LogOutputChannel, component: string): Logger {
  const tag = `[${component}] `;
  return {
    info: (message) => channel.info(tag + message),
    warn: (message) => channel.warn(tag + message),
    error: (message) => channel.error(tag + message),
    debug: (message) => channel.debug(tag + message),
  };
}
