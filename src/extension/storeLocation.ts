/**
 * Where judgments are stored, without `vscode` (paths are URIs joined with POSIX separators by
 * the caller's `join`, i.e. vscode.Uri.joinPath; never string-concatenated OS paths).
 *
 * - scope "global": `<globalStorageUri>/judgments.jsonl`.
 * - scope "workspace": `<folder>/.code-rlhf/judgments.jsonl` for the workspace folder that
 *   contains the document (the innermost one in a multi-root workspace); a document outside
 *   every folder (or untitled) falls back to the global store.
 */

export interface UriLike {
  scheme: string;
  authority: string;
  path: string;
}

export interface FolderLike<U extends UriLike> {
  name: string;
  uri: U;
}

export interface StoreLocation<U extends UriLike> {
  uri: U;
  scope: 'global' | 'workspace';
  /** Name of the workspace folder for scope "workspace". */
  folder: string | null;
}

export const STORE_FILE = 'judgments.jsonl';
export const WORKSPACE_STORE_DIR = '.code-rlhf';

/** The innermost folder containing `document`, on the same scheme and authority. */
export function folderOf<U extends UriLike>(
  folders: readonly FolderLike<U>[],
  document: UriLike,
): FolderLike<U> | undefined {
  let best: FolderLike<U> | undefined;
  for (const folder of folders) {
    const { uri } = folder;
    if (uri.scheme !== document.scheme || uri.authority !== document.authority) continue;
    const root = uri.path.endsWith('/') ? uri.path : `${uri.path}/`;
    if (document.path.startsWith(root) && (!best || uri.path.length > best.uri.path.length)) {
      best = folder;
    }
  }
  return best;
}

export function storeLocation<U extends UriLike>(
  scope: 'global' | 'workspace',
  folders: readonly FolderLike<U>[],
  document: UriLike | undefined,
  globalStorage: U,
  join: (base: U, ...segments: string[]) => U,
): StoreLocation<U> {
  if (scope === 'workspace' && document) {
    const folder = folderOf(folders, document);
    if (folder) {
      return {
        uri: join(folder.uri, WORKSPACE_STORE_DIR, STORE_FILE),
        scope: 'workspace',
        folder: folder.name,
      };
    }
  }
  return { uri: join(globalStorage, STORE_FILE), scope: 'global', folder: null };
}
