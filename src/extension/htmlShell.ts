/**
 * The HTML shell of a webview, without `vscode` (unit tests render it in jsdom).
 *
 * The Content-Security-Policy allows only our bundled script, marked with a fresh nonce, and
 * styles from the extension: no inline scripts or event handlers, no eval. If model output ever
 * reached the DOM as markup, the browser would still refuse to run it; the webview scripts
 * additionally set such content with textContent only, so it is never parsed as HTML.
 */

export interface HtmlShellOptions {
  /** `webview.cspSource`: the origin allowed for styles, images and fonts. */
  cspSource: string;
  nonce: string;
  title: string;
  scriptUri: string;
  styleUris: string[];
  /** Static markup written by us; never interpolate data into it. */
  body: string;
}

function escapeAttribute(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/"/g, '&quot;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `style-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
    `img-src ${cspSource}`,
    `font-src ${cspSource}`,
  ].join('; ');
}

export function htmlShell(options: HtmlShellOptions): string {
  if (!/^[A-Za-z0-9+/=]{16,}$/.test(options.nonce)) {
    throw new Error(
      `webview nonce must be 16+ base64 characters, got ${JSON.stringify(options.nonce)}`,
    );
  }
  const csp = contentSecurityPolicy(options.cspSource, options.nonce);
  const styles = options.styleUris
    .map((uri) => `<link rel="stylesheet" href="${escapeAttribute(uri)}">`)
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeAttribute(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
${styles}
<title>${escapeAttribute(options.title)}</title>
</head>
<body>
${options.body}
<script nonce="${options.nonce}" src="${escapeAttribute(options.scriptUri)}"></script>
</body>
</html>`;
}
