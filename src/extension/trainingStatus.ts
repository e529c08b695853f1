/**
 * The training state shown in the status bar, from the model host's training events: which job
 * runs, its phase and step, and how the last one ended. No `vscode` here.
 */
import { parseTrainingEvent, type TrainingEvent } from '../protocol/training';
import type { Logger } from './log';
import type { ModelHostClient } from './modelHostClient';

const EVENT_TYPES = ['train/progress', 'train/done'] as const;

/** One-line description of the training state after `event`. */
export function trainingStateText(event: TrainingEvent): string | undefined {
  switch (event.type) {
    case 'train/progress':
      return `${event.phase} ${event.step}/${event.totalSteps}`;
    case 'train/done':
      return event.status === 'completed' ? 'idle' : `idle (last run ${event.status})`;
    default:
      return undefined;
  }
}

/** Calls `update` with the new state text on every progress or completion event. */
export function followTraining(
  client: Pick<ModelHostClient, 'on'>,
  log: Logger,
  update: (text: string) => void,
): { dispose(): void } {
  const subscriptions = EVENT_TYPES.map((type) =>
    client.on(type, (message) => {
      let event: TrainingEvent;
      try {
        event = parseTrainingEvent(message);
      } catch (error) {
        log.warn(`dropped training event: ${(error as Error).message}`);
        return;
      }
      const text = trainingStateText(event);
      if (text !== undefined) update(text);
    }),
  );
  return { dispose: () => subscriptions.forEach((s) => s.dispose()) };
}
