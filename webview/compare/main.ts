// The comparison webview; built by the compare-completions work (issue 7).
export {};
