/**
 * The "Code RLHF: Train on my judgments" command: reward model, then PPO or DPO
 * (`codeRlhf.trainingAlgorithm`) on the active preference store, then the promotion gate, as
 * jobs in the model host. Progress shows in a cancellable notification and the status bar, live
 * charts in the dashboard; an adapter that passes the gate becomes the completion policy. Every
 * trained adapter goes into the adapter history, and "Code RLHF: Select adapter" switches the
 * completion policy to any of them or to the base model.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { DashboardPanel } from './dashboardPanel';
import type { Logger } from './log';
import type { ModelHostClient } from './modelHostClient';
import type { ModelService } from './modelService';
import type { StatusBar } from './statusBar';
import {
  adapterChoices,
  adapterName,
  appendAdapterEntry,
  modelFingerprint,
  readAdapterHistory,
  restorableAdapter,
  type AdapterEntry,
  type SavedAdapter,
} from './adapterHistory';
import { TrainingDashboardFeed } from './trainingDashboardFeed';
import {
  STAGE_NAMES,
  describeResult,
  readTrainingAlgorithm,
  runTrainPipeline,
  type PipelineResult,
  type TuneAlgorithm,
} from './trainPipeline';

/** Global-state key of the adapter completions use (restored at activation); unset = base. */
const ACTIVE_ADAPTER_KEY = 'codeRlhf.activeAdapter';

export interface TrainCommandDeps {
  client: ModelHostClient;
  model: ModelService;
  status: StatusBar;
  dashboard: DashboardPanel;
  feed: TrainingDashboardFeed;
  log: Logger;
  /** Absolute model folder used for completions. */
  modelDir(): string;
  /** The active preference store (JSONL). */
  dataFile(): string;
}

export function registerTrainCommand(
  context: vscode.ExtensionContext,
  deps: TrainCommandDeps,
): vscode.Disposable {
  let running: AbortController | undefined;
  const historyFile = path.join(context.globalStorageUri.fsPath, 'training', 'adapters.jsonl');
  // The chosen adapter stays the policy after a window reload, as long as the same model is
  // configured and its files exist; otherwise it is dropped with a warning (it only fits the
  // model it was trained on) and completions use the base model.
  let active: SavedAdapter | undefined;
  const use = async (adapter: SavedAdapter | undefined) => {
    active = adapter;
    deps.model.setAdapter(adapter ? { name: adapter.name, path: adapter.path } : null);
    await context.globalState.update(ACTIVE_ADAPTER_KEY, adapter);
  };
  const drop = (problem: string) => {
    deps.log.warn(problem);
    void vscode.window
      .showWarningMessage(`Code RLHF: ${problem}`, 'Select adapter')
      .then((choice) => choice && vscode.commands.executeCommand('codeRlhf.selectAdapter'));
    void use(undefined);
  };
  const restored = restorableAdapter(
    context.globalState.get(ACTIVE_ADAPTER_KEY),
    deps.modelDir(),
    (file) => fs.existsSync(file),
    modelFingerprint(deps.modelDir()),
  );
  if (restored.problem) drop(restored.problem);
  if (restored.adapter) {
    active = restored.adapter;
    deps.model.setAdapter({ name: active.name, path: active.path });
    deps.log.info(`using adapter ${active.name} (${active.path})`);
  }
  deps.model.onDidChange((state) => {
    if (active && state.dir !== active.modelDir) {
      drop(
        `the model changed to ${state.dir}: adapter ${active.name} (trained on ` +
          `${active.modelDir}) no longer applies; using the base model`,
      );
    }
  });

  /** Records the run's adapter in the history, promoted or not (`blocked`: why not used). */
  const remember = async (
    runId: string,
    algorithm: TuneAlgorithm,
    modelDir: string,
    fingerprint: string | undefined,
    result: PipelineResult,
    blocked: string | undefined,
  ) => {
    const promotion = result.promotion;
    if (!promotion) return;
    const e = promotion.evaluation ?? {};
    const entry: AdapterEntry = {
      runId,
      algorithm,
      time: new Date().toISOString(),
      path: promotion.adapterPath,
      modelDir,
      ...(fingerprint ? { modelFingerprint: fingerprint } : {}),
      promoted: promotion.promote && !blocked,
      reason: blocked ? `${promotion.reason}; not switched on: ${blocked}` : promotion.reason,
      ...(Number.isFinite(e.winRate)
        ? {
            winRate: e.winRate,
            winRateLow: e.winRateLow,
            winRateHigh: e.winRateHigh,
            comparisons: e.comparisons,
          }
        : {}),
      ...(Number.isFinite(e.meanKl) ? { meanKl: e.meanKl } : {}),
    };
    try {
      await appendAdapterEntry(historyFile, entry);
    } catch (error) {
      deps.log.error(
        `could not add ${adapterName(entry)} to the adapter history ${historyFile}: ` +
          `${(error as Error).message}`,
      );
    }
  };

  const train = async () => {
    if (running) {
      const choice = await vscode.window.showInformationMessage(
        'Code RLHF: a training run is already in progress.',
        'Cancel it',
        'Show dashboard',
      );
      if (choice === 'Cancel it') running?.abort();
      if (choice === 'Show dashboard') deps.dashboard.show();
      return;
    }
    const { algorithm, problem } = readTrainingAlgorithm(
      vscode.workspace.getConfiguration('codeRlhf').get('trainingAlgorithm'),
    );
    if (problem) {
      deps.log.warn(problem);
      void vscode.window.showWarningMessage(`Code RLHF: ${problem}`);
    }
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
    const runId = `run-${stamp}`;
    const runDir = path.join(context.globalStorageUri.fsPath, 'training', runId);
    const controller = new AbortController();
    const modelDir = deps.modelDir();
    // The weights the run trains on: an adapter never applies over other weights in the folder.
    const fingerprint = modelFingerprint(modelDir);
    running = controller;
    // The gate compares the tuned adapter with the policy in use when the run started.
    const baseline = active;
    deps.feed.runStarted(runId, algorithm, runDir);
    deps.dashboard.show();
    deps.log.info(`training run ${runId}: reward model, then ${algorithm} in ${runDir}`);
    try {
      const result = await vscode.window.withProgress(
        {
          location: vscode.ProgressLocation.Notification,
          title: `Code RLHF: training (reward model, then ${algorithm.toUpperCase()})`,
          cancellable: true,
        },
        async (progress, token) => {
          token.onCancellationRequested(() => controller.abort());
          const stages = 3;
          let stageIndex = -1;
          let reported = 0;
          return runTrainPipeline({
            client: deps.client,
            log: deps.log,
            algorithm,
            modelDir,
            dataFile: deps.dataFile(),
            runDir,
            runId,
            signal: controller.signal,
            ...(baseline ? { baseline: { name: baseline.name, path: baseline.path } } : {}),
            onStage: (kind, command) => {
              stageIndex++;
              deps.feed.stageStarted(runId, kind, command);
              deps.status.update({ training: `${STAGE_NAMES[kind]} starting` });
              deps.dashboard.refreshState();
              progress.report({ message: `${STAGE_NAMES[kind]}: starting` });
            },
            onEvent: (kind, event) => {
              deps.feed.event(runId, kind, event);
              if (event.type === 'train/progress') {
                const text = `${STAGE_NAMES[kind]}: ${event.phase} ${event.step}/${event.totalSteps}`;
                deps.status.update({ training: text });
                deps.dashboard.refreshState();
                const fraction = event.totalSteps > 0 ? event.step / event.totalSteps : 0;
                const total = (100 * (stageIndex + Math.min(1, fraction))) / stages;
                const increment = Math.max(0, total - reported);
                reported += increment;
                progress.report({ message: text, increment });
              } else if (
                event.type === 'train/log' &&
                (event.level === 'warn' || event.level === 'error')
              ) {
                deps.log[event.level](`[${kind}] ${event.message}`);
              }
            },
          });
        },
      );
      const text = describeResult(result);
      deps.dashboard.refreshState();
      deps.feed.runEnded(runId, result.status, text);
      deps.log.info(`training run ${runId} ended ${result.status}: ${text}`);
      const adapterPath = result.promotion?.adapterPath;
      // A verdict is only valid for the model and the policy the gate compared against.
      let blocked: string | undefined;
      if (result.promotion?.promote && deps.modelDir() !== modelDir) {
        blocked = `the model changed during training (the adapter was trained on ${modelDir})`;
      } else if (result.promotion?.promote && modelFingerprint(modelDir) !== fingerprint) {
        blocked = `the weights in ${modelDir} changed during training`;
      } else if (result.promotion?.promote && active?.path !== baseline?.path) {
        blocked =
          `the adapter in use changed during training; the gate compared with ` +
          `${baseline ? `adapter ${baseline.name}` : 'the base model'}`;
      }
      await remember(runId, algorithm, modelDir, fingerprint, result, blocked);
      if (result.promotion?.promote && adapterPath && blocked) {
        void vscode.window.showWarningMessage(
          `Code RLHF: the adapter of ${runId} passed the gate but is not switched on: ${blocked}. ` +
            `"Select adapter" can pick it. ${text}`,
        );
      } else if (result.promotion?.promote && adapterPath) {
        await use({
          name: `${runId} ${algorithm}`,
          path: adapterPath,
          modelDir,
          ...(fingerprint ? { modelFingerprint: fingerprint } : {}),
        });
        void vscode.window.showInformationMessage(
          `Code RLHF: completions now use the adapter of ${runId}. ${text}`,
        );
      } else if (result.status === 'failed') {
        void vscode.window
          .showErrorMessage(`Code RLHF: training failed. ${text}`, 'Show log')
          .then((choice) => choice && vscode.commands.executeCommand('codeRlhf.showLog'));
      } else {
        void vscode.window.showInformationMessage(
          `Code RLHF: training ${result.status}. ${text}` +
            (adapterPath ? ' The adapter stays selectable with "Select adapter".' : ''),
        );
      }
    } catch (error) {
      const message = (error as Error).message;
      deps.log.error(`training run ${runId} failed: ${message}`);
      deps.feed.runEnded(runId, 'failed', message);
      void vscode.window.showErrorMessage(`Code RLHF: training failed. ${message}`);
    } finally {
      if (running === controller) running = undefined;
    }
  };

  const selectAdapter = async () => {
    const modelDir = deps.modelDir();
    const { entries, problems } = await readAdapterHistory(historyFile);
    for (const problem of problems) deps.log.warn(`adapter history: ${problem}`);
    if (problems.length > 0) {
      void vscode.window.showWarningMessage(
        `Code RLHF: ${problems.length} line${problems.length === 1 ? '' : 's'} of the adapter ` +
          `history could not be read and ${problems.length === 1 ? 'is' : 'are'} not listed ` +
          `(the file is left as it is): ${problems[0]}`,
      );
    }
    const { choices, otherModels } = adapterChoices(
      entries,
      modelDir,
      active,
      (file) => fs.existsSync(file),
      modelFingerprint(modelDir),
    );
    const picked = await vscode.window.showQuickPick(
      choices.map((choice) => ({
        label: `${choice.active ? '$(check) ' : ''}${choice.label}`,
        description: choice.description,
        ...(choice.detail ? { detail: choice.detail } : {}),
        choice,
      })),
      {
        title: 'Code RLHF: Select adapter',
        placeHolder:
          `Completion policy for ${path.basename(modelDir)}` +
          (otherModels > 0
            ? ` (${otherModels} adapter${otherModels === 1 ? '' : 's'} of other models not listed)`
            : ''),
        matchOnDescription: true,
        matchOnDetail: true,
      },
    );
    if (!picked) return;
    const { choice } = picked;
    if (choice.problem) {
      deps.log.warn(choice.problem);
      void vscode.window.showWarningMessage(`Code RLHF: ${choice.problem}; nothing changed.`);
      return;
    }
    await use(choice.target ?? undefined);
    const now = choice.target ? `adapter ${choice.target.name}` : 'the base model';
    deps.log.info(`completions now use ${now}${choice.target ? ` (${choice.target.path})` : ''}`);
    void vscode.window.showInformationMessage(`Code RLHF: completions now use ${now}.`);
  };

  const commands = [
    vscode.commands.registerCommand('codeRlhf.train', train),
    vscode.commands.registerCommand('codeRlhf.selectAdapter', selectAdapter),
  ];
  return {
    dispose: () => {
      // The model host outlives nothing of ours, but say so to a job still running.
      running?.abort();
      commands.forEach((c) => c.dispose());
    },
  };
}
