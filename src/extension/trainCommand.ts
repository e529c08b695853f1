/**
 * The "Code RLHF: Train on my judgments" command: reward model, then PPO or DPO
 * (`codeRlhf.trainingAlgorithm`) on the active preference store, then the promotion gate, as
 * jobs in the model host. Progress shows in a cancellable notification and the status bar, live
 * charts in the dashboard; an adapter that passes the gate becomes the completion policy. Every
 * trained adapter goes into the adapter history, and "Code RLHF: Select adapter" switches the
 * completion policy to any of them or to the base model, or loads an adapter folder trained
 * elsewhere (its "Load adapter from folder…" row, or a folder path as the command's argument,
 * for keybindings and scripts; src/extension/adapterImport.ts).
 *
 * A run the editor lost (a window reload, the editor closed, the model host crashed) is offered
 * for resuming the next time the command runs: the stages it finished are not run again, and the
 * lost stage continues from its last checkpoint, on the judgments snapshot the run started with
 * (src/extension/editorRun.ts). `codeRlhf.trainingSettings` sets trainer config keys per run,
 * checked before any work (src/extension/trainingSettings.ts).
 *
 * The choice is the active adapter pointer (`<global storage>/training/active-adapter.json`,
 * src/data/activeAdapter.ts), shared by every window: the last window to choose wins. A window
 * re-reads the pointer when it gains focus (a choice is made in a focused window, so the
 * others hear of it as soon as the user turns to them) and before "Select adapter" or a
 * training run rely on it. A window whose model the pointed adapter does not fit (another
 * model, changed weights, files gone) uses the base model and says so, but leaves the pointer
 * as it is: it is the user's choice, and a window with the right model may be using it.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { ADAPTER_POINTER_FILE, AdapterPointerFile, type PointerRead } from '../data/activeAdapter';
import type { DashboardPanel } from './dashboardPanel';
import type { Logger } from './log';
import type { ModelHostClient } from './modelHostClient';
import type { ModelService } from './modelService';
import type { StatusBar } from './statusBar';
import {
  adapterChoices,
  adapterName,
  appendAdapterEntry,
  readAdapterHistory,
  restorableAdapter,
  type AdapterEntry,
  type SavedAdapter,
} from './adapterHistory';
import { modelFingerprint } from '../data/modelFingerprint';
import { adapterFolderPath, describeLoadedEntry, importAdapter } from './adapterImport';
import { TrainingDashboardFeed } from './trainingDashboardFeed';
import {
  JUDGMENTS_SNAPSHOT,
  chooseEditorRun,
  findResumableRun,
  refuseResume,
  runEditorTraining,
  snapshotProblem,
  startEditorRun,
  type EditorRun,
  type ResumableRun,
} from './editorRun';
import {
  STAGE_NAMES,
  describeResult,
  readTrainingAlgorithm,
  type PipelineResult,
  type TuneAlgorithm,
} from './trainPipeline';
import { TRAINING_SETTINGS_KEY, readTrainingSettings } from './trainingSettings';

/**
 * Global-state key where versions before the pointer file kept the active adapter: moved to the
 * pointer once (when there is none yet), then cleared.
 */
const LEGACY_ACTIVE_ADAPTER_KEY = 'codeRlhf.activeAdapter';

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
  /** Set while the extension is being disposed: an abort then is the window closing. */
  let closing = false;
  const trainingDir = path.join(context.globalStorageUri.fsPath, 'training');
  const historyFile = path.join(trainingDir, 'adapters.jsonl');
  const pointer = new AdapterPointerFile(path.join(trainingDir, ADAPTER_POINTER_FILE));
  /** What the pointer names (null: the base model); `active`: what this window uses of it. */
  let pointed: SavedAdapter | null = null;
  let active: SavedAdapter | undefined;
  let modelDirInUse = deps.modelDir();
  const warn = (problem: string) => {
    deps.log.warn(problem);
    void vscode.window
      .showWarningMessage(`Code RLHF: ${problem}`, 'Select adapter')
      .then((choice) => choice && vscode.commands.executeCommand('codeRlhf.selectAdapter'));
  };
  const setActive = (adapter: SavedAdapter | undefined) => {
    active = adapter;
    deps.model.setAdapter(adapter ? { name: adapter.name, path: adapter.path } : null);
  };
  /** Uses the pointed adapter if it fits `modelDir` (and its files exist), else the base model. */
  const applyPointed = (modelDir: string, origin: string) => {
    const before = active?.path;
    if (pointed && pointed.modelDir !== modelDir) {
      // Expected where windows use different models (a workspace modelPath): no pop-up.
      deps.log.info(
        `the active adapter ${pointed.name} is for ${pointed.modelDir}, not ${modelDir}; ` +
          'this window uses the base model',
      );
      setActive(undefined);
      return;
    }
    const restored = restorableAdapter(
      pointed ?? undefined,
      modelDir,
      (file) => fs.existsSync(file),
      pointed ? modelFingerprint(modelDir) : undefined,
    );
    if (restored.problem) warn(restored.problem);
    setActive(restored.adapter);
    if (active?.path !== before || origin === 'at start') {
      const now = active ? `adapter ${active.name} (${active.path})` : 'the base model';
      deps.log.info(`${origin}: completions use ${now}`);
    }
  };
  const applyRead = (read: PointerRead, origin: string) => {
    if (read.kind === 'corrupt' || read.kind === 'unreadable') warn(read.problem);
    pointed = read.adapter;
    applyPointed(modelDirInUse, origin);
  };
  /** Picks up a choice another window wrote since this one last looked. */
  const refresh = async () => {
    const read = await pointer.refresh();
    if (read) applyRead(read, 'chosen in another window');
  };
  /** This window's choice: used at once, and written for the other windows and the next start. */
  const choose = async (adapter: SavedAdapter | undefined) => {
    pointed = adapter ?? null;
    setActive(adapter);
    try {
      await pointer.write(pointed);
    } catch (error) {
      const message =
        `could not save the active adapter to ${pointer.file} (${(error as Error).message}); ` +
        'other windows and the next start keep the previous choice';
      deps.log.error(message);
      void vscode.window.showErrorMessage(`Code RLHF: ${message}`);
    }
  };

  const opened = pointer.open(context.globalState.get(LEGACY_ACTIVE_ADAPTER_KEY));
  applyRead(opened.read, 'at start');
  opened.migration
    ?.then(async ({ done, problem }) => {
      if (problem) warn(problem);
      if (!done) return;
      await context.globalState.update(LEGACY_ACTIVE_ADAPTER_KEY, undefined);
      deps.log.info(`the active adapter is now kept in ${pointer.file}, not in global state`);
    })
    .catch((error: Error) =>
      deps.log.error(`could not move the active adapter out of global state: ${error.message}`),
    );
  deps.model.onDidChange((state) => {
    if (state.dir === modelDirInUse) return;
    modelDirInUse = state.dir;
    if (active && state.dir !== active.modelDir) {
      warn(
        `the model changed to ${state.dir}: adapter ${active.name} (trained on ` +
          `${active.modelDir}) no longer applies; using the base model`,
      );
    }
    applyPointed(state.dir, 'model changed');
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

  /**
   * Whether to resume `lost`, the latest run of this model that the editor lost: "resume",
   * "fresh", or undefined when the user dismissed the question. A run that cannot be resumed
   * (its model's weights changed, its judgments snapshot is gone) is said so, with "Start fresh".
   */
  const askResume = async (
    lost: ResumableRun,
    fingerprint: string | undefined,
  ): Promise<'resume' | 'fresh' | undefined> => {
    const { record } = lost;
    let problem: string | undefined;
    if (record.modelFingerprint && fingerprint && record.modelFingerprint !== fingerprint) {
      problem = `the weights in ${record.modelDir} changed since it started`;
    } else {
      problem = snapshotProblem(lost);
      // The snapshot does not come back: the run is not offered again. (Weights put back do.)
      if (problem) {
        await refuseResume(lost, problem).catch((error: Error) =>
          deps.log.error(`could not record ${lost.runId} as not resumable: ${error.message}`),
        );
      }
    }
    if (problem) {
      deps.log.warn(`training run ${lost.runId} cannot be resumed: ${problem}`);
      const choice = await vscode.window.showWarningMessage(
        `Code RLHF: the interrupted training run ${lost.runId} cannot be resumed: ${problem}.`,
        { modal: true },
        'Start fresh',
      );
      return choice === 'Start fresh' ? 'fresh' : undefined;
    }
    const started = new Date(record.startedAt).toLocaleString();
    const picked = await vscode.window.showQuickPick(
      [
        {
          label: `$(debug-continue) Resume ${lost.runId}`,
          description: `(${lost.progress})`,
          detail:
            `${record.algorithm.toUpperCase()}, started ${started}, on the ${record.judgments} ` +
            'judgments stored then (later ones wait for the next run)',
          answer: 'resume' as const,
        },
        {
          label: '$(refresh) Start fresh',
          description: 'a new run on every judgment stored now',
          detail: `The folder of ${lost.runId} stays as it is (its checkpoints too).`,
          answer: 'fresh' as const,
        },
      ],
      {
        title: 'Code RLHF: a training run was interrupted',
        placeHolder: `Resume ${lost.runId} where it stopped, or start a new run?`,
        ignoreFocusOut: true,
      },
    );
    return picked?.answer;
  };

  const train = async (fresh = false) => {
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
    const read = readTrainingSettings(
      vscode.workspace.getConfiguration('codeRlhf').get('trainingSettings'),
    );
    if ('problem' in read) {
      deps.log.error(`training not started: ${read.problem}`);
      void vscode.window
        .showErrorMessage(`Code RLHF: training not started. ${read.problem}`, 'Open settings')
        .then(
          (choice) =>
            choice &&
            vscode.commands.executeCommand('workbench.action.openSettings', TRAINING_SETTINGS_KEY),
        );
      return;
    }
    const { settings } = read;
    const modelDir = deps.modelDir();
    // The weights the run trains on: an adapter never applies over other weights in the folder.
    const fingerprint = modelFingerprint(modelDir);
    const controller = new AbortController();
    // Taken before the questions below, so that a second command waits for this one.
    running = controller;
    let run: EditorRun;
    let resumed = false;
    try {
      const chosen = await chooseEditorRun({
        lost: fresh
          ? undefined
          : findResumableRun(trainingDir, modelDir, (message) => deps.log.warn(message)),
        ask: (lost) => askResume(lost, fingerprint),
        signal: controller.signal,
        start: () =>
          startEditorRun({
            trainingDir,
            algorithm,
            modelDir,
            ...(fingerprint ? { modelFingerprint: fingerprint } : {}),
            store: deps.dataFile(),
            settings,
          }),
      });
      if (!chosen) {
        running = undefined;
        // "Cancel it" while the question was open: nothing was started.
        if (controller.signal.aborted) deps.log.info('training not started: cancelled');
        return;
      }
      ({ run, resumed } = chosen);
      if (resumed && run.record.algorithm !== algorithm) {
        deps.log.info(
          `resuming ${run.runId} with ${run.record.algorithm}, the algorithm it started with ` +
            `(codeRlhf.trainingAlgorithm is now ${algorithm})`,
        );
      }
    } catch (error) {
      running = undefined;
      const message = (error as Error).message;
      deps.log.error(`training not started: ${message}`);
      void vscode.window.showErrorMessage(`Code RLHF: training not started. ${message}`);
      return;
    }
    const { runId, runDir } = run;
    const runAlgorithm = run.record.algorithm;
    // The gate compares the tuned adapter with the policy in use when the run started.
    await refresh();
    const baseline = active;
    deps.feed.runStarted(runId, runAlgorithm, runDir);
    deps.dashboard.show();
    deps.log.info(
      resumed
        ? `training run ${runId}: resuming (${(run as ResumableRun).progress}) in ${runDir}`
        : // The folder comes last: scripts and the e2e test read it from the line's end.
          `training run ${runId}: reward model, then ${runAlgorithm}, on ` +
            `${run.record.judgments} judgments (a snapshot of the store: ${JUDGMENTS_SNAPSHOT}) ` +
            `in ${runDir}`,
    );
    try {
      const result = await vscode.window.withProgress(
        {
          location: vscode.ProgressLocation.Notification,
          title: resumed
            ? `Code RLHF: resuming ${runId} (${runAlgorithm.toUpperCase()})`
            : `Code RLHF: training (reward model, then ${runAlgorithm.toUpperCase()})`,
          cancellable: true,
        },
        async (progress, token) => {
          token.onCancellationRequested(() => controller.abort());
          const stages = 3;
          // A resumed run starts after the stages it finished.
          const done = resumed ? Object.keys(run.record.finished).length : 0;
          let stageIndex = done - 1;
          let reported = (100 * done) / stages;
          if (done > 0) progress.report({ increment: reported });
          return runEditorTraining({
            client: deps.client,
            log: deps.log,
            run,
            resumed,
            settings,
            signal: controller.signal,
            closing: () => closing,
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
      await refresh();
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
      await remember(runId, runAlgorithm, modelDir, fingerprint, result, blocked);
      if (result.promotion?.promote && adapterPath && blocked) {
        void vscode.window.showWarningMessage(
          `Code RLHF: the adapter of ${runId} passed the gate but is not switched on: ${blocked}. ` +
            `"Select adapter" can pick it. ${text}`,
        );
      } else if (result.promotion?.promote && adapterPath) {
        await choose({
          name: `${runId} ${runAlgorithm}`,
          path: adapterPath,
          modelDir,
          ...(fingerprint ? { modelFingerprint: fingerprint } : {}),
        });
        void vscode.window.showInformationMessage(
          `Code RLHF: completions now use the adapter of ${runId}. ${text}`,
        );
      } else if (result.resumeRefused) {
        void vscode.window
          // The refusal ends with the advice (the values to put back, or "Start fresh").
          .showErrorMessage(
            `Code RLHF: ${runId} was not resumed: ${result.resumeRefused}`,
            'Start fresh',
            'Show log',
          )
          .then((choice) => {
            if (choice === 'Show log') void vscode.commands.executeCommand('codeRlhf.showLog');
            if (choice === 'Start fresh') void train(true);
          });
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

  /** Checks an adapter folder trained elsewhere, records it and makes it the active adapter. */
  const loadFolder = async (folder: string) => {
    const result = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Window,
        title: `Code RLHF: checking adapter ${path.basename(folder)}`,
      },
      () =>
        importAdapter(folder, {
          historyFile,
          modelDir: () => deps.modelDir(),
          check: (adapterDir, dir) => deps.model.checkAdapter(adapterDir, dir),
          fingerprint: modelFingerprint,
        }),
    );
    if ('problem' in result) {
      deps.log.warn(`adapter not loaded: ${result.problem}`);
      void vscode.window.showErrorMessage(
        `Code RLHF: adapter not loaded; nothing changed. ${result.problem}`,
      );
      return;
    }
    const { entry } = result;
    await choose({
      name: adapterName(entry),
      path: entry.path,
      modelDir: entry.modelDir,
      ...(entry.modelFingerprint ? { modelFingerprint: entry.modelFingerprint } : {}),
    });
    const origin = describeLoadedEntry(entry);
    // An imported entry's reason says "imported, not gated" itself.
    const why = entry.algorithm === 'imported' ? entry.reason : `${origin}: ${entry.reason}`;
    deps.log.info(`completions now use adapter ${adapterName(entry)} (${entry.path}; ${why})`);
    void vscode.window.showInformationMessage(
      `Code RLHF: completions now use adapter ${adapterName(entry)}, loaded from ${entry.path} ` +
        `(${origin}).`,
    );
  };

  /**
   * The list, or with `folder` (a path or a file URI: a keybinding's or a script's argument)
   * that adapter folder loaded at once, without a dialog.
   */
  const selectAdapter = async (folder?: unknown) => {
    if (folder !== undefined) {
      const dir = folderArgument(folder);
      if (typeof dir === 'string') return loadFolder(dir);
      deps.log.warn(dir.problem);
      void vscode.window.showErrorMessage(`Code RLHF: ${dir.problem}`);
      return;
    }
    await refresh();
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
    if (choice.loadFolder) {
      const uris = await vscode.window.showOpenDialog({
        canSelectFolders: true,
        canSelectFiles: false,
        canSelectMany: false,
        openLabel: 'Load adapter',
        title: 'Code RLHF: PEFT adapter folder (adapter_config.json + adapter_model.safetensors)',
      });
      if (!uris || uris.length === 0) return;
      const dir = folderArgument(uris[0]);
      if (typeof dir === 'string') return loadFolder(dir);
      deps.log.warn(dir.problem);
      void vscode.window.showErrorMessage(`Code RLHF: ${dir.problem}`);
      return;
    }
    if (choice.problem) {
      deps.log.warn(choice.problem);
      void vscode.window.showWarningMessage(`Code RLHF: ${choice.problem}; nothing changed.`);
      return;
    }
    await choose(choice.target ?? undefined);
    const now = choice.target ? `adapter ${choice.target.name}` : 'the base model';
    deps.log.info(`completions now use ${now}${choice.target ? ` (${choice.target.path})` : ''}`);
    void vscode.window.showInformationMessage(`Code RLHF: completions now use ${now}.`);
  };

  const commands = [
    vscode.commands.registerCommand('codeRlhf.train', () => train()),
    vscode.commands.registerCommand('codeRlhf.selectAdapter', selectAdapter),
    vscode.window.onDidChangeWindowState((state) => {
      if (!state.focused) return;
      refresh().catch((error: Error) =>
        deps.log.error(`could not re-read ${pointer.file}: ${error.message}`),
      );
    }),
  ];
  return {
    dispose: () => {
      // The model host outlives nothing of ours, but say so to a job still running. The run is
      // then interrupted, not cancelled: the next window offers to resume it.
      closing = true;
      running?.abort();
      commands.forEach((c) => c.dispose());
    },
  };
}

/**
 * The adapter folder a command argument names: an absolute path, or a `file:` URI (a Uri, or a
 * string as a keybinding's args must be).
 */
function folderArgument(value: unknown): string | { problem: string } {
  if (typeof value === 'string') return adapterFolderPath(value);
  if (value instanceof vscode.Uri && value.scheme === 'file') return value.fsPath;
  const shown =
    value instanceof vscode.Uri ? value.toString() : (JSON.stringify(value) ?? String(value));
  return {
    problem:
      `"Select adapter" got ${shown.slice(0, 120)} as its argument; allowed: an adapter ` +
      "folder's absolute path or file: URI, or none (to choose from the list)",
  };
}
