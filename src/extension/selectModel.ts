import * as vscode from 'vscode';
import type { Logger } from './log';
import { modelFolderProblems } from './modelFolder';

const RECENT_KEY = 'codeRlhf.recentModelFolders';

interface ModelPick extends vscode.QuickPickItem {
  value: 'default' | 'browse' | string;
}

/**
 * "Code RLHF: Select model": the bundled default model, a recently used folder, or any local
 * Hugging Face model folder. Writes `codeRlhf.modelPath` (user settings); the extension reacts
 * to the setting change and loads the model in the model host.
 */
export async function selectModel(
  context: vscode.ExtensionContext,
  defaultModelDir: string,
  log: Logger,
): Promise<void> {
  const config = vscode.workspace.getConfiguration('codeRlhf');
  const current = config.get<string>('modelPath', '');
  const recent = context.globalState.get<string[]>(RECENT_KEY, []);
  const items: ModelPick[] = [
    {
      label: '$(package) Default model',
      description: current === '' ? 'active' : undefined,
      detail: defaultModelDir,
      value: 'default',
    },
    ...recent.map((dir) => ({
      label: `$(folder) ${dir.split(/[\\/]/).filter(Boolean).pop() ?? dir}`,
      description: dir === current ? 'active' : undefined,
      detail: dir,
      value: dir,
    })),
    { label: '$(folder-opened) Choose a Hugging Face model folder…', value: 'browse' },
  ];
  const pick = await vscode.window.showQuickPick(items, {
    title: 'Code RLHF: Select model',
    placeHolder: 'Model used for comparisons and inline completions',
  });
  if (!pick) return;
  let dir: string;
  if (pick.value === 'default') {
    await config.update('modelPath', '', vscode.ConfigurationTarget.Global);
    log.info('model set to the default model');
    return;
  } else if (pick.value === 'browse') {
    const chosen = await vscode.window.showOpenDialog({
      canSelectFolders: true,
      canSelectFiles: false,
      canSelectMany: false,
      openLabel: 'Use this model',
      title: 'Folder with config.json, tokenizer.json and model.safetensors',
    });
    if (!chosen?.[0]) return;
    dir = chosen[0].fsPath;
  } else {
    dir = pick.value;
  }
  const problems = modelFolderProblems(dir);
  if (problems.length > 0) {
    log.warn(`not a usable model folder: ${problems.join('; ')}`);
    void vscode.window.showErrorMessage(`Code RLHF: ${problems.join('. ')}`);
    return;
  }
  await context.globalState.update(
    RECENT_KEY,
    [dir, ...recent.filter((d) => d !== dir)].slice(0, 8),
  );
  await config.update('modelPath', dir, vscode.ConfigurationTarget.Global);
  log.info(`model set to ${dir}`);
}
