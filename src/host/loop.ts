/**
 * The model host's message loop: every message that arrives has a `type`, and the loop hands it
 * to the handler registered for that type. Handler modules (generation RPC, training jobs)
 * register themselves in `main.ts`; the loop knows none of them.
 */
import { parseTypedMessage, type LogLevel, type TypedMessage } from '../protocol/modelHost';

/** Where messages come from and go to: `process` in the model host, a fake in tests. */
export interface HostTransport {
  send(message: TypedMessage): void;
  onMessage(listener: (raw: unknown) => void): void;
}

/** Leveled log records sent to the extension's log channel, tagged with a component. */
export interface HostLogger {
  log(level: LogLevel, message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug(message: string): void;
}

export interface HostServices {
  send(message: TypedMessage): void;
  logger(component: string): HostLogger;
}

/** Handles one message type. A rejected promise is logged; it never stops the loop. */
export type MessageHandler = (message: TypedMessage) => void | Promise<void>;

export class MessageLoop implements HostServices {
  private readonly handlers = new Map<string, MessageHandler>();
  private readonly log: HostLogger;

  constructor(private readonly transport: HostTransport) {
    this.log = this.logger('host');
  }

  /** Registers the handler for `type`; registering a type twice is a programming error. */
  register(type: string, handler: MessageHandler): void {
    if (this.handlers.has(type))
      throw new Error(`model host: handler for "${type}" registered twice`);
    this.handlers.set(type, handler);
  }

  registeredTypes(): string[] {
    return [...this.handlers.keys()].sort();
  }

  send(message: TypedMessage): void {
    this.transport.send(message);
  }

  logger(component: string): HostLogger {
    const log = (level: LogLevel, message: string) =>
      this.transport.send({ type: 'log', level, component, message });
    return {
      log,
      info: (message) => log('info', message),
      warn: (message) => log('warn', message),
      error: (message) => log('error', message),
      debug: (message) => log('debug', message),
    };
  }

  start(): void {
    this.transport.onMessage((raw) => this.dispatch(raw));
  }

  /** Dispatches one raw message; exported for tests through `start` with a fake transport. */
  private dispatch(raw: unknown): void {
    let message: TypedMessage;
    try {
      message = parseTypedMessage(raw, 'message to model host');
    } catch (error) {
      this.log.warn(`dropped message: ${(error as Error).message}`);
      return;
    }
    const handler = this.handlers.get(message.type);
    if (!handler) {
      this.log.warn(
        `dropped message of unknown type ${JSON.stringify(message.type)}; ` +
          `registered: ${this.registeredTypes().join(', ')}`,
      );
      return;
    }
    try {
      const result = handler(message);
      if (result) {
        result.catch((error: Error) =>
          this.log.error(`handler for "${message.type}" failed: ${error.stack ?? error.message}`),
        );
      }
    } catch (error) {
      const err = error as Error;
      this.log.error(`handler for "${message.type}" failed: ${err.stack ?? err.message}`);
    }
  }
}
