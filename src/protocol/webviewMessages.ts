/**
 * Messages between the extension host and its webviews. Every message crossing the boundary is
 * validated on arrival: a webview is a separate origin and its messages are untrusted input.
 */

/** Dashboard webview -> extension host. */
export type DashboardToHost = { type: 'ready' } | { type: 'refresh' };

/** Extension host -> dashboard webview. */
export type HostToDashboard = {
  type: 'state';
  /** Number of judgments in the active preference store. */
  judgments: number;
  /** Human-readable model description, e.g. "default (embedded)". */
  model: string;
  /** Training state shown to the user, e.g. "idle". */
  training: string;
};

export class MessageValidationError extends Error {}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Validates a message from the dashboard webview; throws naming the bad field. */
export function parseDashboardToHost(value: unknown): DashboardToHost {
  if (!isRecord(value)) {
    throw new MessageValidationError(`dashboard message must be an object, got ${typeof value}`);
  }
  if (value.type === 'ready' || value.type === 'refresh') {
    return { type: value.type };
  }
  throw new MessageValidationError(
    `dashboard message has unknown type ${JSON.stringify(value.type)}; allowed: "ready", "refresh"`,
  );
}

/** Validates a message from the extension host to the dashboard; throws naming the bad field. */
export function parseHostToDashboard(value: unknown): HostToDashboard {
  if (!isRecord(value) || value.type !== 'state') {
    throw new MessageValidationError('host message must be an object with type "state"');
  }
  const { judgments, model, training } = value;
  if (typeof judgments !== 'number' || !Number.isInteger(judgments) || judgments < 0) {
    throw new MessageValidationError(
      `"judgments" must be a non-negative integer, got ${judgments}`,
    );
  }
  if (typeof model !== 'string') {
    throw new MessageValidationError(`"model" must be a string, got ${typeof model}`);
  }
  if (typeof training !== 'string') {
    throw new MessageValidationError(`"training" must be a string, got ${typeof training}`);
  }
  return { type: 'state', judgments, model, training };
}
