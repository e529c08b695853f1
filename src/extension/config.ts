/**
 * Typed settings of the comparison and inline-completion features, with defaults. VS Code
 * settings map onto them in one place (`readSettings`); a bad value falls back to its default
 * and is reported by key, value and what is allowed.
 */

export interface Settings {
  /** Candidates generated for one comparison (`codeRlhf.candidateCount`, 2 to 8). */
  candidateCount: number;
  /** Model folder (`codeRlhf.modelPath`); empty means the bundled default model. */
  modelPath: string;
  /** Insert the chosen candidate at the cursor after a judgment (`codeRlhf.insertChosen`). */
  insertChosen: boolean;
  /** Serve inline ghost-text completions (`codeRlhf.inlineSuggestions`). */
  inlineSuggestions: boolean;
  /** Annotator id stored in records (`codeRlhf.annotatorId`); empty means the OS user. */
  annotatorId: string;
  /** One global store or one per workspace folder (`codeRlhf.storeScope`). */
  storeScope: 'global' | 'workspace';
  /** Files never collected (`codeRlhf.excludeGlobs`). */
  excludeGlobs: string[];
}

export const DEFAULT_SETTINGS: Settings = {
  candidateCount: 4,
  modelPath: '',
  insertChosen: true,
  inlineSuggestions: true,
  annotatorId: '',
  storeScope: 'global',
  excludeGlobs: ['**/.env', '**/*.pem', '**/*.key'],
};

/** Sampling for comparison candidates: varied enough to be worth comparing. */
export const COMPARE_SAMPLING = {
  maxNewTokens: 48,
  maxLines: 8,
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
};

/** Sampling for inline ghost text: the policy's most likely short continuation. */
export const INLINE_SAMPLING = {
  maxNewTokens: 32,
  maxLines: 1,
  temperature: 0,
  topK: 0,
  topP: 1,
};

/** Inline requests wait this long after the last keystroke before generating. */
export const INLINE_DEBOUNCE_MS = 200;

/**
 * Characters of context around the cursor sent to the model (and stored as the prompt
 * snapshot). Limitation: a fixed character window, not a token budget; the generator truncates
 * further to the model's context length.
 */
export const CONTEXT_WINDOW = { before: 6000, after: 2000 };

export interface SettingsResult {
  settings: Settings;
  /** One line per bad value, naming the key, the value and what is allowed. */
  problems: string[];
}

/** Reads every setting through `get(key)` (key without the `codeRlhf.` prefix). */
export function readSettings(get: (key: string) => unknown): SettingsResult {
  const problems: string[] = [];
  const bad = (key: string, value: unknown, allowed: string) =>
    problems.push(
      `codeRlhf.${key} is ${JSON.stringify(value)}; allowed: ${allowed}. Using the default.`,
    );
  const settings: Settings = {
    ...DEFAULT_SETTINGS,
    excludeGlobs: [...DEFAULT_SETTINGS.excludeGlobs],
  };

  const count = get('candidateCount');
  if (count !== undefined) {
    if (typeof count === 'number' && Number.isInteger(count) && count >= 2 && count <= 8) {
      settings.candidateCount = count;
    } else bad('candidateCount', count, 'an integer from 2 to 8');
  }
  for (const key of ['modelPath', 'annotatorId'] as const) {
    const value = get(key);
    if (value === undefined) continue;
    if (typeof value === 'string') settings[key] = value.trim();
    else bad(key, value, 'a string');
  }
  for (const key of ['insertChosen', 'inlineSuggestions'] as const) {
    const value = get(key);
    if (value === undefined) continue;
    if (typeof value === 'boolean') settings[key] = value;
    else bad(key, value, 'true or false');
  }
  const scope = get('storeScope');
  if (scope !== undefined) {
    if (scope === 'global' || scope === 'workspace') settings.storeScope = scope;
    else bad('storeScope', scope, '"global" or "workspace"');
  }
  const globs = get('excludeGlobs');
  if (globs !== undefined) {
    if (Array.isArray(globs) && globs.every((g) => typeof g === 'string')) {
      settings.excludeGlobs = globs as string[];
    } else bad('excludeGlobs', globs, 'an array of glob strings');
  }
  return { settings, problems };
}
