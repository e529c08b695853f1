/**
 * Turns the training pipeline's events into dashboard messages, sends them to the open panel,
 * and keeps the current run's messages so a dashboard opened mid-run (or reopened) replays
 * them. No `vscode` here.
 */
import type { TrainStartCommand, TrainingEvent, TrainingKind } from '../protocol/training';
import type { HostToTrainingDashboard } from '../protocol/trainingDashboard';

/** Messages kept for replay; the oldest metrics rows are dropped first beyond this. */
export const MAX_REPLAY = 5000;

export class TrainingDashboardFeed {
  private messages: HostToTrainingDashboard[] = [];

  constructor(private readonly post: (message: HostToTrainingDashboard) => void) {}

  /** The current run's messages, oldest first. */
  replay(): readonly HostToTrainingDashboard[] {
    return this.messages;
  }

  runStarted(runId: string, algorithm: 'ppo' | 'dpo', runDir: string): void {
    this.messages = [];
    this.emit({ type: 'trainingRun', runId, algorithm, runDir });
  }

  stageStarted(runId: string, kind: TrainingKind, command: TrainStartCommand): void {
    const config: Record<string, string | number | boolean> = {};
    for (const [name, value] of Object.entries(command.config)) {
      if (typeof value === 'string' || typeof value === 'boolean') config[name] = value;
      else if (typeof value === 'number' && Number.isFinite(value)) config[name] = value;
    }
    this.emit({ type: 'trainingStage', runId, stage: kind, config });
  }

  event(runId: string, kind: TrainingKind, event: TrainingEvent): void {
    if (event.type === 'train/metrics') {
      const metrics: Record<string, number | null> = {};
      for (const [name, value] of Object.entries(event.metrics)) {
        // NaN does not survive JSON: a diverged value is sent as null and drawn as a gap.
        metrics[name] = Number.isFinite(value) ? value : null;
      }
      this.emit({ type: 'trainingMetrics', runId, stage: kind, step: event.step, metrics });
    } else if (event.type === 'train/progress') {
      this.emit({
        type: 'trainingProgress',
        runId,
        stage: kind,
        phase: event.phase,
        step: event.step,
        totalSteps: event.totalSteps,
      });
    }
  }

  runEnded(
    runId: string,
    status: 'completed' | 'cancelled' | 'failed' | 'early-stopped',
    text: string,
  ): void {
    this.emit({ type: 'trainingEnded', runId, status, text });
  }

  private emit(message: HostToTrainingDashboard): void {
    // Only the latest progress line matters on replay.
    if (message.type === 'trainingProgress') {
      this.messages = this.messages.filter((m) => m.type !== 'trainingProgress');
    }
    this.messages.push(message);
    if (this.messages.length > MAX_REPLAY) {
      const index = this.messages.findIndex((m) => m.type === 'trainingMetrics');
      this.messages.splice(index >= 0 ? index : 1, 1);
    }
    this.post(message);
  }
}
