/**
 * Request/response methods of the model host (`load`, `complete`, `ping`, ...): registers the
 * `request` and `cancel` message types on the loop, validates params with the protocol's
 * validators, runs the method's handler with an AbortSignal, and answers exactly once.
 */
import {
  isModelHostMethod,
  methodValidators,
  parseRpcToModelHost,
  type ModelHostMethod,
  type ParamsOf,
  type ResultOf,
  type RpcToModelHost,
  type TypedMessage,
} from '../protocol/modelHost';
import type { HostLogger, MessageLoop } from './loop';

export type MethodHandler<M extends ModelHostMethod> = (
  params: ParamsOf<M>,
  signal: AbortSignal,
) => Promise<ResultOf<M>>;

export class RpcServer {
  private readonly methods = new Map<string, MethodHandler<ModelHostMethod>>();
  private readonly inFlight = new Map<number, AbortController>();
  private readonly log: HostLogger;

  constructor(private readonly loop: MessageLoop) {
    this.log = loop.logger('rpc');
    loop.register('request', (message) => this.onRequest(message));
    loop.register('cancel', (message) => {
      const { id } = parseRpcToModelHost(message);
      this.inFlight.get(id)?.abort();
    });
  }

  /** Number of requests being served; 0 once every request has been answered. */
  get pending(): number {
    return this.inFlight.size;
  }

  method<M extends ModelHostMethod>(method: M, handler: MethodHandler<M>): void {
    if (this.methods.has(method))
      throw new Error(`model host: method "${method}" registered twice`);
    this.methods.set(method, handler as unknown as MethodHandler<ModelHostMethod>);
  }

  private async onRequest(message: TypedMessage): Promise<void> {
    let request: RpcToModelHost;
    try {
      request = parseRpcToModelHost(message);
    } catch (error) {
      this.log.warn(`dropped request: ${(error as Error).message}`);
      return;
    }
    if (request.type !== 'request') return;
    const { id, method } = request;
    const respondError = (name: string, text: string) =>
      this.loop.send({ type: 'response', id, ok: false, error: { name, message: text } });
    const handler = this.methods.get(method);
    if (!isModelHostMethod(method) || !handler) {
      respondError(
        'UnknownMethodError',
        `unknown method ${JSON.stringify(method)}; allowed: ${[...this.methods.keys()].join(', ')}`,
      );
      return;
    }
    if (this.inFlight.has(id)) {
      respondError('DuplicateRequestError', `request id ${id} is already in flight`);
      return;
    }
    const controller = new AbortController();
    this.inFlight.set(id, controller);
    try {
      const params = methodValidators[method].params(request.params);
      const result = await handler(params as never, controller.signal);
      if (controller.signal.aborted) respondError('AbortError', `request ${id} was cancelled`);
      else this.loop.send({ type: 'response', id, ok: true, result });
    } catch (error) {
      const err = error as Error;
      const name = controller.signal.aborted ? 'AbortError' : err.name || 'Error';
      if (name !== 'AbortError') this.log.warn(`${method} #${id} failed: ${err.message}`);
      respondError(name, err.message);
    } finally {
      this.inFlight.delete(id);
    }
  }
}
