import * as crypto from 'crypto';
import * as vscode from 'vscode';
import { htmlShell } from './htmlShell';

/**
 * HTML for a webview: our bundled script with a fresh nonce under a strict CSP (see htmlShell),
 * the shared stylesheet plus any extra ones from `media/`.
 */
export function webviewHtml(
  webview: vscode.Webview,
  extensionUri: vscode.Uri,
  options: { title: string; script: string; body: string; styles?: string[] },
): string {
  const asUri = (...segments: string[]) =>
    webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, ...segments)).toString();
  return htmlShell({
    cspSource: webview.cspSource,
    nonce: crypto.randomBytes(16).toString('base64'),
    title: options.title,
    scriptUri: asUri('dist', 'webview', options.script),
    styleUris: ['webview.css', ...(options.styles ?? [])].map((name) => asUri('media', name)),
    body: options.body,
  });
}
