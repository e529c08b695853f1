import * as crypto from 'crypto';
import * as vscode from 'vscode';

/**
 * HTML shell for a webview. The Content-Security-Policy allows only our bundled script, marked
 * with a fresh nonce, and styles from the extension; no inline event handlers, no eval. Content
 * rendered from model output is set as text by the script, never parsed as HTML.
 */
export function webviewHtml(
  webview: vscode.Webview,
  extensionUri: vscode.Uri,
  options: { title: string; script: string; body: string },
): string {
  const nonce = crypto.randomBytes(16).toString('base64');
  const scriptUri = webview.asWebviewUri(
    vscode.Uri.joinPath(extensionUri, 'dist', 'webview', options.script),
  );
  const styleUri = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', 'webview.css'));
  const csp = [
    "default-src 'none'",
    `style-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}'`,
    `img-src ${webview.cspSource}`,
    `font-src ${webview.cspSource}`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${styleUri}">
<title>${options.title}</title>
</head>
<body>
${options.body}
<script nonce="${nonce}" src="${scriptUri}"></script>
</body>
</html>`;
}
