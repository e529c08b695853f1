import * as crypto from 'crypto';
import * as vscode from 'vscode';
import type { HostToCompare } from '../protocol/webviewMessages';
import { CompareController, type CompareTiming } from './compareController';
import { COMPARE_VIEW_TYPE, ComparePanel } from './comparePanel';
import type { Settings } from './config';
import {
  annotatorId,
  documentVersion,
  excluded,
  focusEditor,
  insertAt,
  snapshotOf,
} from './editorSnapshot';
import type { Logger } from './log';
import type { ModelService } from './modelService';
import { PendingComparisons } from './pendingComparisons';
import type { RecordSink } from './recordSink';
import { WebviewChannel } from './webviewChannel';

export interface CompareFeature {
  controller: CompareController;
  panel: ComparePanel;
  timings: CompareTiming[];
}

/**
 * Registers "Compare completions at cursor" and "Blind A/B test (base vs tuned)", their shared
 * panel, its serializer and its listeners.
 */
export function registerCompare(
  context: vscode.ExtensionContext,
  settings: () => Settings,
  model: ModelService,
  sink: RecordSink,
  log: Logger,
  /** Called when a comparison starts, e.g. to cancel a running inline request. */
  beforeCompare: () => void = () => {},
): CompareFeature {
  const channel = new WebviewChannel<HostToCompare>(log);
  const panel = new ComparePanel(context.extensionUri, channel, log);
  const controller = new CompareController({
    generate: (request, signal) => model.generate(request, signal),
    generateWith: (request, adapter, signal) => model.generateWith(request, adapter, signal),
    adapter: () => model.adapter,
    readRecords: (storePath) => sink.readAll(storePath),
    settings,
    documentVersion,
    isExcluded: (snapshot) => excluded(snapshot, settings()),
    channel,
    revealPanel: () => panel.reveal(),
    pending: new PendingComparisons(context.workspaceState),
    record: (record, snapshot) => sink.append(record, snapshot.storePath),
    insert: insertAt,
    focusEditor: async (snapshot) => {
      await focusEditor(snapshot);
    },
    annotator: () => annotatorId(settings()),
    log,
    now: () => Date.now(),
    random: () => crypto.randomInt(0, 2 ** 32) / 2 ** 32,
    newId: () => `cmp-${crypto.randomUUID()}`,
  });
  const cursorSnapshot = () => {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage(
        'Code RLHF: open a file and put the cursor where a completion should go.',
      );
      return undefined;
    }
    return snapshotOf(
      editor.document,
      editor.selection.active,
      settings(),
      context.globalStorageUri,
      Date.now(),
    );
  };
  const timings: CompareTiming[] = [];
  controller.onTiming((timing) => timings.push(timing));
  panel.setController(controller);

  context.subscriptions.push(
    panel,
    vscode.window.registerWebviewPanelSerializer(COMPARE_VIEW_TYPE, panel),
    vscode.commands.registerCommand('codeRlhf.compareCompletions', async () => {
      const snapshot = cursorSnapshot();
      if (!snapshot) return;
      beforeCompare();
      await controller.compare(snapshot);
    }),
    vscode.commands.registerCommand('codeRlhf.blindCompare', async () => {
      if (!model.adapter) {
        // Said out loud, not only in the panel: comparing the base with itself measures nothing.
        log.info('blind A/B comparison not started: no tuned adapter is active');
        void vscode.window.showWarningMessage(
          'Code RLHF: Blind A/B compares the base model with the active tuned adapter, and no ' +
            'adapter is active (completions use the base model). Train on your judgments ' +
            'first; a promoted adapter becomes active.',
        );
        return;
      }
      const snapshot = cursorSnapshot();
      if (!snapshot) return;
      beforeCompare();
      await controller.compareBlind(snapshot);
    }),
    vscode.workspace.onDidChangeTextDocument((event) => {
      if (event.contentChanges.length === 0) return;
      controller.onDocumentChanged(event.document.uri.toString(), event.document.version);
    }),
  );
  // After a window reload VS Code normally revives the panel through the serializer. When it
  // did not (its layout was not saved in time, e.g. a browser reload), bring the unfinished
  // comparison back anyway, without taking the focus.
  const reopen = setTimeout(() => {
    const unfinished = controller.unfinished(30 * 60_000);
    if (panel.isOpen || !unfinished) return;
    log.info(`reopening the panel for unfinished comparison ${unfinished.id}`);
    panel.reveal(true);
    controller.restore(unfinished.id);
  }, 3_000);
  context.subscriptions.push({ dispose: () => clearTimeout(reopen) });
  return { controller, panel, timings };
}
