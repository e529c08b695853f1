/**
 * The "Code RLHF: Train on my judgments" command: reward model, then PPO or DPO
 * (`codeRlhf.trainingAlgorithm`) on the active preference store, as jobs in the model host.
 * Progress shows in a cancellable notification and the status bar, live charts in the
 * dashboard; a promoted adapter becomes the completion policy.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { DashboardPanel } from './dashboardPanel';
import type { Logger } from './log';
import type { ModelHostClient } from './modelHostClient';
import type { ModelService } from './modelService';
import type { StatusBar } from './statusBar';
import { TrainingDashboardFeed } from './trainingDashboardFeed';
import {
  STAGE_NAMES,
  describeResult,
  readTrainingAlgorithm,
  restorableAdapter,
  runTrainPipeline,
  type SavedAdapter,
} from './trainPipeline';

/** Global-state key of the promoted adapter (restored at activation). */
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
  // The adapter promoted by an earlier run stays the policy after a window reload, as long as
  // the same model is configured; a model change drops it (it only fits the model it was
  // trained on).
  let active: SavedAdapter | undefined;
  const restored = restorableAdapter(
    context.globalState.get(ACTIVE_ADAPTER_KEY),
    deps.modelDir(),
    (file) => fs.existsSync(file),
  );
  if (restored.problem) deps.log.warn(restored.problem);
  if (restored.adapter) {
    active = restored.adapter;
    deps.model.setAdapter({ name: active.name, path: active.path });
    deps.log.info(`using adapter ${active.name} (${active.path})`);
  }
  deps.model.onDidChange((state) => {
    if (active && state.dir !== active.modelDir) {
      deps.log.info(`model changed to ${state.dir}: adapter ${active.name} no longer applies`);
      active = undefined;
      deps.model.setAdapter(null);
    }
  });

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
    running = controller;
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
          const stages = 2;
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
      if (
        result.promotion?.promote &&
        result.promotion.adapterPath &&
        deps.modelDir() !== modelDir
      ) {
        void vscode.window.showWarningMessage(
          `Code RLHF: the model changed during training; the adapter of ${runId} (trained on ` +
            `${modelDir}) is not used. ${text}`,
        );
      } else if (result.promotion?.promote && result.promotion.adapterPath) {
        active = { name: `${runId} ${algorithm}`, path: result.promotion.adapterPath, modelDir };
        deps.model.setAdapter({ name: active.name, path: active.path });
        await context.globalState.update(ACTIVE_ADAPTER_KEY, active);
        void vscode.window.showInformationMessage(
          `Code RLHF: completions now use the adapter of ${runId}. ${text}`,
        );
      } else if (result.status === 'failed') {
        void vscode.window
          .showErrorMessage(`Code RLHF: training failed. ${text}`, 'Show log')
          .then((choice) => choice && vscode.commands.executeCommand('codeRlhf.showLog'));
      } else {
        void vscode.window.showInformationMessage(`Code RLHF: training ${result.status}. ${text}`);
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

  const command = vscode.commands.registerCommand('codeRlhf.train', train);
  return {
    dispose: () => {
      // The model host outlives nothing of ours, but say so to a job still running.
      running?.abort();
      command.dispose();
    },
  };
}
