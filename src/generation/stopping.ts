/**
 * Stopping rules for one candidate: stop ids (EOS and every control token), stop strings,
 * a line limit and a token limit. Text is checked after each token; the cut position is exact
 * even when a stop string or a newline sits in the middle of a token.
 */
import { SettingError } from '../model/settingError';
import type { StopReason } from './api';

export interface StopSettings {
  stopIds: ReadonlySet<number>;
  stopStrings: readonly string[];
  maxNewTokens: number;
  /** 0 = no line limit. */
  maxLines: number;
}

export interface StopDecision {
  reason: StopReason;
  /** Length (UTF-16 code units) of the text to keep. */
  keepChars: number;
}

/** Checks the settings and names the bad field. */
export function validateStopping(settings: Omit<StopSettings, 'stopIds'>): void {
  if (!(Number.isInteger(settings.maxNewTokens) && settings.maxNewTokens >= 1)) {
    throw new SettingError(`maxNewTokens must be an integer >= 1, got ${settings.maxNewTokens}`);
  }
  if (!(Number.isInteger(settings.maxLines) && settings.maxLines >= 0)) {
    throw new SettingError(
      `maxLines must be an integer >= 0 (0 = no limit), got ${settings.maxLines}`,
    );
  }
  settings.stopStrings.forEach((s, i) => {
    if (typeof s !== 'string' || s.length === 0) {
      throw new SettingError(
        `stopStrings[${i}] must be a non-empty string, got ${JSON.stringify(s)}`,
      );
    }
  });
}

/**
 * Decides whether to stop after `text` (all text emitted so far for this candidate), where
 * `searchFrom` is where text new since the last check begins. `tokenCount` counts generated
 * tokens including the latest; `lastId` is the latest id.
 */
export function checkStop(
  settings: StopSettings,
  text: string,
  searchFrom: number,
  tokenCount: number,
  lastId: number,
): StopDecision | undefined {
  if (settings.stopIds.has(lastId)) return { reason: 'stop-token', keepChars: text.length };
  let best: StopDecision | undefined;
  for (const stop of settings.stopStrings) {
    // A stop string can straddle the previous check, so look back by its length.
    const at = text.indexOf(stop, Math.max(0, searchFrom - stop.length + 1));
    if (at >= 0 && (!best || at < best.keepChars)) best = { reason: 'stop-string', keepChars: at };
  }
  if (settings.maxLines > 0) {
    let lines = 0;
    for (let i = 0; i < text.length; i++) {
      if (text.charCodeAt(i) !== 10) continue;
      if (++lines === settings.maxLines) {
        // Keep the line's own newline: a completed line ends with it.
        if (!best || i + 1 < best.keepChars) best = { reason: 'max-lines', keepChars: i + 1 };
        break;
      }
    }
  }
  if (best) return best;
  if (tokenCount >= settings.maxNewTokens) return { reason: 'max-tokens', keepChars: text.length };
  return undefined;
}
