import { EngineSession } from '../../../src/engine';

/**
 * Counts the engine sessions created and not yet released while it is installed, and can make
 * the `failAt`-th `EngineSession.create` throw (1-based), to test that code releasing its
 * sessions on errors releases exactly those that exist. `uninstall` restores the engine.
 */
export interface SessionTracker {
  /** Sessions created since `trackSessions` and not released. */
  readonly live: number;
  /** Sessions created since `trackSessions` (including the one made to fail). */
  readonly created: number;
  uninstall(): void;
}

export function trackSessions(options: { failAt?: number } = {}): SessionTracker {
  const create = EngineSession.create;
  const release = Object.getOwnPropertyDescriptor(EngineSession.prototype, 'release')!;
  const open = new Set<EngineSession>();
  let created = 0;
  EngineSession.create = async (...args: Parameters<typeof create>) => {
    created++;
    if (created === options.failAt) {
      throw new Error(`session ${created}: creation failed (injected by the test)`);
    }
    const session = await create.apply(EngineSession, args);
    open.add(session);
    return session;
  };
  Object.defineProperty(EngineSession.prototype, 'release', {
    ...release,
    value: async function (this: EngineSession) {
      open.delete(this);
      return (release.value as () => Promise<void>).call(this);
    },
  });
  return {
    get live() {
      return open.size;
    },
    get created() {
      return created;
    },
    uninstall() {
      EngineSession.create = create;
      Object.defineProperty(EngineSession.prototype, 'release', release);
    },
  };
}
