/**
 * Paths stored in records are workspace-relative with POSIX separators, so absolute paths (user
 * names, folder layouts) never leave the machine unless the user configures it.
 */

/**
 * True for POSIX absolute paths, Windows drive or UNC paths, `/C:/`-style URI paths, and URIs
 * with a scheme (`file:///home/...`, `vscode-remote://...`), which hold an absolute path too.
 */
export function isAbsolutePathLike(p: string): boolean {
  return (
    p.startsWith('/') ||
    p.startsWith('\\') ||
    /^[A-Za-z]:[\\/]/.test(p) ||
    /^~[\\/]/.test(p) ||
    /^[A-Za-z][A-Za-z0-9+.-]+:\/\//.test(p)
  );
}

function toPosix(p: string): string {
  return p.replace(/\\/g, '/');
}

function trimSlashes(p: string): string {
  return p.replace(/\/+$/, '');
}

/**
 * Maps an absolute file path to `{ workspace, file }` for storage: the name of the innermost
 * workspace folder that contains it and the path relative to that folder. A file outside every
 * folder is stored by its base name only (workspace null), unless `allowAbsolute` is set.
 * Windows paths are compared case-insensitively.
 */
export function toStoredPath(
  absoluteFile: string,
  workspaceFolders: readonly { name: string; path: string }[],
  allowAbsolute = false,
): { workspace: string | null; file: string } {
  const file = toPosix(absoluteFile);
  const windows = /^[A-Za-z]:\//.test(file);
  const norm = (p: string) => (windows ? p.toLowerCase() : p);
  let best: { name: string; root: string } | undefined;
  for (const folder of workspaceFolders) {
    const root = trimSlashes(toPosix(folder.path));
    if (norm(file).startsWith(norm(root) + '/') && (!best || root.length > best.root.length)) {
      best = { name: folder.name, root };
    }
  }
  if (best) return { workspace: best.name, file: file.slice(best.root.length + 1) };
  if (allowAbsolute) return { workspace: null, file };
  const base = file.slice(file.lastIndexOf('/') + 1);
  return { workspace: null, file: base };
}
