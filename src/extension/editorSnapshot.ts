import * as os from 'os';
import * as vscode from 'vscode';
import { isExcluded, toStoredPath } from '../data';
import { withLineEndings, type EditorSnapshot } from './comparison';
import { CONTEXT_WINDOW, type Settings } from './config';
import { storeLocation } from './storeLocation';

/**
 * Reads the text around the cursor of `document` at `position` into a snapshot: the exact
 * prompt (original line endings), the document version it belongs to, and where its records go.
 */
export function snapshotOf(
  document: vscode.TextDocument,
  position: vscode.Position,
  settings: Settings,
  globalStorageUri: vscode.Uri,
  now: number,
): EditorSnapshot {
  const text = document.getText();
  const offset = document.offsetAt(position);
  let start = Math.max(0, offset - CONTEXT_WINDOW.before);
  // Never start inside a surrogate pair or between \r and \n.
  if (start > 0 && /[\udc00-\udfff\n]/.test(text[start])) start++;
  let end = Math.min(text.length, offset + CONTEXT_WINDOW.after);
  if (end < text.length && /[\udc00-\udfff\n]/.test(text[end])) end--;
  const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => ({
    name: f.name,
    uri: f.uri,
  }));
  const location = storeLocation(
    settings.storeScope,
    folders,
    document.uri,
    globalStorageUri,
    vscode.Uri.joinPath,
  );
  const stored =
    document.uri.scheme === 'untitled'
      ? { workspace: null, file: null }
      : toStoredPath(
          document.uri.fsPath,
          folders.map((f) => ({ name: f.name, path: f.uri.fsPath })),
        );
  return {
    uri: document.uri.toString(),
    version: document.version,
    languageId: document.languageId,
    offset,
    prefix: text.slice(start, offset),
    suffix: text.slice(offset, Math.max(offset, end)),
    eol: document.eol === vscode.EndOfLine.CRLF ? '\r\n' : '\n',
    workspace: stored.workspace,
    file: stored.file,
    requestedAt: now,
    storePath: location.uri.fsPath,
  };
}

export function documentFor(uri: string): vscode.TextDocument | undefined {
  return vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri);
}

export function documentVersion(uri: string): number | undefined {
  return documentFor(uri)?.version;
}

/** Whether the snapshot's file matches `codeRlhf.excludeGlobs` (never collected). */
export function excluded(snapshot: EditorSnapshot, settings: Settings): boolean {
  if (snapshot.file === null) return false;
  return isExcluded(settings.excludeGlobs, snapshot.file);
}

export function annotatorId(settings: Settings): string {
  if (settings.annotatorId) return settings.annotatorId;
  try {
    return os.userInfo().username || 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Shows the snapshot's document in its editor column with the focus on it. */
export async function focusEditor(
  snapshot: EditorSnapshot,
): Promise<vscode.TextEditor | undefined> {
  const document = documentFor(snapshot.uri);
  if (!document) return undefined;
  const column = vscode.window.visibleTextEditors.find((e) => e.document === document)?.viewColumn;
  return vscode.window.showTextDocument(document, { viewColumn: column, preserveFocus: false });
}

/**
 * Inserts `text` at the snapshot's cursor, in the document's line endings, if the document is
 * still at the snapshot's version (otherwise the offset may point elsewhere). Leaves the cursor
 * after the inserted text.
 */
export async function insertAt(snapshot: EditorSnapshot, text: string): Promise<boolean> {
  const document = documentFor(snapshot.uri);
  if (!document || document.version !== snapshot.version) return false;
  const editor = await focusEditor(snapshot);
  if (!editor) return false;
  const eol = document.eol === vscode.EndOfLine.CRLF ? '\r\n' : '\n';
  const at = document.positionAt(snapshot.offset);
  const insertion = withLineEndings(text, eol);
  const ok = await editor.edit((edit) => edit.insert(at, insertion));
  if (ok) {
    const end = document.positionAt(snapshot.offset + insertion.length);
    editor.selection = new vscode.Selection(end, end);
    editor.revealRange(new vscode.Range(end, end));
  }
  return ok;
}
