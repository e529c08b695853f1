import * as crypto from 'crypto';
import * as vscode from 'vscode';
import type { Settings } from './config';
import { annotatorId, documentVersion, excluded, snapshotOf } from './editorSnapshot';
import { InlineCompletions } from './inlineCompletions';
import type { Logger } from './log';
import type { ModelService } from './modelService';
import type { RecordSink } from './recordSink';

const ACCEPT_COMMAND = 'codeRlhf.inlineAccepted';

/** Registers the inline completion provider (ghost text) and its acceptance command. */
export function registerInline(
  context: vscode.ExtensionContext,
  settings: () => Settings,
  model: ModelService,
  sink: RecordSink,
  log: Logger,
): InlineCompletions {
  const inline = new InlineCompletions({
    generate: (request, signal) => model.generate(request, signal),
    settings,
    documentVersion,
    isExcluded: (snapshot) => excluded(snapshot, settings()),
    record: (record, snapshot) => sink.append(record, snapshot.storePath),
    adapter: () => model.adapter?.name ?? null,
    annotator: () => annotatorId(settings()),
    log,
    now: () => Date.now(),
    newId: () => `inl-${crypto.randomUUID()}`,
  });
  const provider: vscode.InlineCompletionItemProvider = {
    async provideInlineCompletionItems(document, position, _context, token) {
      if (!settings().inlineSuggestions || model.current?.kind !== 'ready') return undefined;
      const snapshot = snapshotOf(
        document,
        position,
        settings(),
        context.globalStorageUri,
        Date.now(),
      );
      const suggestion = await inline.provide(snapshot, token);
      if (!suggestion) return undefined;
      const item = new vscode.InlineCompletionItem(
        suggestion.text,
        new vscode.Range(position, position),
        { title: 'Accept', command: ACCEPT_COMMAND, arguments: [suggestion.id] },
      );
      return [item];
    },
  };
  context.subscriptions.push(
    vscode.languages.registerInlineCompletionItemProvider({ pattern: '**' }, provider),
    vscode.commands.registerCommand(ACCEPT_COMMAND, (id: unknown) => {
      if (typeof id === 'string') void inline.accepted(id);
    }),
  );
  return inline;
}
