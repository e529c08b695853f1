import * as path from 'path';
import * as vscode from 'vscode';
import { registerCompare } from './compareFeature';
import type { CompareTiming } from './compareController';
import { readSettings, type Settings } from './config';
import { DashboardPanel } from './dashboardPanel';
import { registerInline } from './inlineFeature';
import { componentLogger, createLogChannel } from './log';
import { ModelHostClient } from './modelHostClient';
import { ModelService } from './modelService';
import { RecordSink } from './recordSink';
import { selectModel } from './selectModel';
import { showStatusMenu, StatusBar } from './statusBar';
import { STATUS_MENU_COMMAND } from './statusMenu';
import { storeLocation } from './storeLocation';
import { followTraining } from './trainingStatus';
import { registerTrainCommand } from './trainCommand';
import { TrainingDashboardFeed } from './trainingDashboardFeed';

/** What `activate` returns: a small API used by the in-host integration tests. */
export interface CodeRlhfApi {
  dashboardMessages(): readonly string[];
  compareMessages(): readonly string[];
  /** Comparisons recorded in this session, by id. */
  recordedComparisons(): readonly string[];
  compareTimings(): readonly CompareTiming[];
}

export function activate(context: vscode.ExtensionContext): CodeRlhfApi {
  const channel = createLogChannel();
  context.subscriptions.push(channel);
  const log = componentLogger(channel, 'extension');

  let settings = loadSettings(log);
  const getSettings = () => settings;
  const defaultModelDir = path.join(context.extensionPath, 'models', 'default');
  const modelDir = () => settings.modelPath || defaultModelDir;

  const client = new ModelHostClient({
    modulePath: path.join(context.extensionPath, 'dist', 'modelHost.js'),
    log: componentLogger(channel, 'model-host'),
  });
  context.subscriptions.push({ dispose: () => client.dispose() });
  const model = new ModelService(client, componentLogger(channel, 'model'));
  const sink = new RecordSink();
  const status = new StatusBar();
  context.subscriptions.push(
    status,
    followTraining(client, componentLogger(channel, 'training'), (training) =>
      status.update({ training }),
    ),
  );

  /** The configured model, as the dashboard and the status bar name it. */
  const configuredModel = () =>
    settings.modelPath ? path.basename(settings.modelPath) : 'default (embedded)';
  const statusModel = () => {
    const state = model.current;
    if (state?.kind === 'loading') return `${configuredModel()} (loading)`;
    if (state?.kind === 'error') return `${configuredModel()} (unavailable)`;
    return configuredModel();
  };
  model.onDidChange(() =>
    status.update({ model: statusModel(), adapter: model.adapter?.name ?? 'base' }),
  );
  const useModel = (userAction: boolean) =>
    model.use(modelDir()).catch((error: Error) => {
      // At startup the status bar and the log say it; after a user action, say it out loud.
      if (!userAction) return;
      void vscode.window
        .showErrorMessage(
          `Code RLHF: the model could not be loaded. ${error.message}`,
          'Select model',
        )
        .then((choice) => choice && vscode.commands.executeCommand('codeRlhf.selectModel'));
    });

  /** The active preference store (JSONL) for the current settings and editor. */
  const storeFile = () => {
    const editor = vscode.window.activeTextEditor;
    const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => ({
      name: f.name,
      uri: f.uri,
    }));
    return storeLocation(
      settings.storeScope,
      folders,
      editor?.document.uri,
      context.globalStorageUri,
      vscode.Uri.joinPath,
    ).uri.fsPath;
  };
  const refreshCount = () => {
    sink.judgmentCount(storeFile()).then(
      (judgments) => status.update({ judgments }),
      (error: Error) => log.warn(`could not count judgments: ${error.message}`),
    );
  };
  sink.onDidAppend(refreshCount);

  const inline = registerInline(
    context,
    getSettings,
    model,
    sink,
    componentLogger(channel, 'inline'),
  );
  // The model host serves one request at a time: a comparison goes before ghost text.
  const compare = registerCompare(
    context,
    getSettings,
    model,
    sink,
    componentLogger(channel, 'compare'),
    () => inline.cancelRunning(),
  );

  const dashboard = new DashboardPanel(
    context.extensionUri,
    componentLogger(channel, 'dashboard'),
    () => ({
      judgments: status.current.judgments ?? 0,
      model: configuredModel(),
      training: status.current.training,
    }),
    // The panel replays the current training run's messages when it (re)opens.
    () => trainingFeed.replay(),
  );
  const trainingFeed = new TrainingDashboardFeed((message) => dashboard.post(message));
  context.subscriptions.push(
    dashboard,
    vscode.commands.registerCommand('codeRlhf.showDashboard', () => dashboard.show()),
    vscode.commands.registerCommand('codeRlhf.showLog', () => channel.show()),
    vscode.commands.registerCommand(STATUS_MENU_COMMAND, () => showStatusMenu(status.current)),
    registerTrainCommand(context, {
      client,
      model,
      status,
      dashboard,
      feed: trainingFeed,
      log: componentLogger(channel, 'train'),
      modelDir,
      dataFile: storeFile,
    }),
    vscode.commands.registerCommand('codeRlhf.selectModel', () =>
      selectModel(context, defaultModelDir, componentLogger(channel, 'select-model')),
    ),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (!event.affectsConfiguration('codeRlhf')) return;
      const previousDir = modelDir();
      settings = loadSettings(log);
      if (modelDir() !== previousDir) void useModel(true);
      refreshCount();
    }),
    vscode.window.onDidChangeActiveTextEditor(() => {
      if (settings.storeScope === 'workspace') refreshCount();
    }),
  );

  status.update({ model: statusModel() });
  refreshCount();
  // Load the model now so the first comparison does not wait for it.
  void useModel(false);
  log.info('activated');
  return {
    dashboardMessages: () => dashboard.received,
    compareMessages: () => compare.panel.received,
    recordedComparisons: () => compare.controller.recorded,
    compareTimings: () => compare.timings,
  };
}

function loadSettings(log: ReturnType<typeof componentLogger>): Settings {
  const config = vscode.workspace.getConfiguration('codeRlhf');
  const { settings, problems } = readSettings((key) => config.get(key));
  for (const problem of problems) {
    log.warn(problem);
    void vscode.window.showWarningMessage(`Code RLHF: ${problem}`);
  }
  return settings;
}

export function deactivate(): void {}
