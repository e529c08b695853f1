/**
 * The model host's generation methods: `load` (switch model folder), `complete` (sample K
 * candidates), `checkAdapter` (read an adapter over the loaded model) and `ping`. One generator
 * (one set of onnxruntime sessions) lives at a time; a switch disposes the old one exactly once,
 * after the new one has loaded.
 */
import type {
  AdapterSummary,
  CompletionGenerator,
  CompletionRequest,
  GeneratedCandidate,
  StopReason,
} from '../generation/api';
import type * as wire from '../protocol/generation';
import type { CheckAdapterResult } from '../protocol/modelHost';
import type { MessageLoop } from './loop';
import type { RpcServer } from './rpc';
import type { ModelScheduler } from './scheduler';

/**
 * `complete` hands the wire request to the generator and its candidates back unchanged, so the
 * protocol's copies of these types (src/protocol/generation.ts, declared apart because neither
 * module may import the other) must be exactly generation's. These fail to compile on any drift,
 * an added optional field included.
 */
type Identical<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Holds<T extends true> = T;
type _WireTypesMatchGeneration = [
  Holds<Identical<wire.CompletionRequest, CompletionRequest>>,
  Holds<Identical<wire.GeneratedCandidate, GeneratedCandidate>>,
  Holds<Identical<wire.StopReason, StopReason>>,
  Holds<Identical<CheckAdapterResult, AdapterSummary>>,
];

export type LoadGenerator = (modelDir: string) => Promise<CompletionGenerator>;

export class NoModelLoadedError extends Error {
  override name = 'NoModelLoadedError';
}

export interface GenerationState {
  /** The loaded generator, for other handlers (training) that share the sessions. */
  current(): { generator: CompletionGenerator; modelDir: string } | undefined;
}

export function registerGenerationHandlers(
  loop: MessageLoop,
  rpc: RpcServer,
  scheduler: ModelScheduler,
  loadGenerator: LoadGenerator,
): GenerationState {
  const log = loop.logger('generation');
  let loaded: { generator: CompletionGenerator; modelDir: string; model: string } | undefined;

  rpc.method('load', (params, signal) =>
    scheduler.run(
      'interactive',
      async () => {
        if (loaded?.modelDir === params.modelDir) return { model: loaded.model, loadMs: 0 };
        const started = performance.now();
        const generator = await loadGenerator(params.modelDir);
        const previous = loaded;
        loaded = { generator, modelDir: params.modelDir, model: generator.describe() };
        if (previous) await previous.generator.dispose();
        const loadMs = performance.now() - started;
        log.info(`loaded ${loaded.model} from ${params.modelDir} in ${loadMs.toFixed(0)} ms`);
        return { model: loaded.model, loadMs };
      },
      signal,
    ),
  );

  rpc.method('complete', (params, signal) => {
    const arrived = performance.now();
    return scheduler.run(
      'interactive',
      async () => {
        if (!loaded) throw new NoModelLoadedError('no model loaded; send "load" first');
        const { generator, model } = loaded;
        const candidates = await generator.complete(params, signal);
        return { candidates, latencyMs: performance.now() - arrived, model };
      },
      signal,
    );
  });

  rpc.method('checkAdapter', (params, signal) =>
    scheduler.run(
      'interactive',
      async () => {
        if (!loaded) throw new NoModelLoadedError('no model loaded; send "load" first');
        // An adapter fits only the weights it is read over: never answer for another model.
        if (loaded.modelDir !== params.modelDir) {
          throw new NoModelLoadedError(
            `checkAdapter: model ${params.modelDir} is not loaded (${loaded.modelDir} is); ` +
              'send "load" for it first',
          );
        }
        return loaded.generator.loadAdapter(params.adapterPath);
      },
      signal,
    ),
  );

  rpc.method('ping', async () => ({ pid: process.pid, model: loaded?.model ?? null }));

  return { current: () => loaded && { generator: loaded.generator, modelDir: loaded.modelDir } };
}
