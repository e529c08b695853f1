import {
  parseHostToDashboard,
  type DashboardToHost,
  type HostToDashboard,
} from '../../src/protocol/webviewMessages';
import { parseHostToTrainingDashboard } from '../../src/protocol/trainingDashboard';
import { TrainingView } from './charts';

interface VsCodeApi {
  postMessage(message: DashboardToHost): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const training = new TrainingView(document);
training.render();

function render(state: HostToDashboard): void {
  // textContent, never innerHTML: values come from outside the webview.
  const set = (id: string, text: string): void => {
    const element = document.getElementById(id);
    if (element) element.textContent = text;
  };
  set('judgments', String(state.judgments));
  set('model', state.model);
  set('training', state.training);
}

window.addEventListener('message', (event: MessageEvent<unknown>) => {
  try {
    const data = event.data as { type?: unknown } | null;
    if (data?.type === 'state') render(parseHostToDashboard(data));
    else training.apply(parseHostToTrainingDashboard(data));
  } catch {
    // A malformed message is dropped; the host is the only sender and logs its own errors.
  }
});

document.getElementById('refresh')?.addEventListener('click', () => {
  vscode.postMessage({ type: 'refresh' });
});
vscode.postMessage({ type: 'ready' });
