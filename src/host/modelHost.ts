/**
 * Assembles the model host: the message loop, the request/response server, the scheduler that
 * serialises model work, and the handler modules. `main.ts` calls this with the process as
 * transport; tests call it with a fake transport and a test generator.
 */
import { MessageLoop, type HostTransport } from './loop';
import {
  registerGenerationHandlers,
  type GenerationState,
  type LoadGenerator,
} from './generationHandlers';
import { RpcServer } from './rpc';
import { ModelScheduler } from './scheduler';

export interface ModelHost {
  loop: MessageLoop;
  rpc: RpcServer;
  scheduler: ModelScheduler;
  generation: GenerationState;
}

export function createModelHost(transport: HostTransport, loadGenerator: LoadGenerator): ModelHost {
  const loop = new MessageLoop(transport);
  const rpc = new RpcServer(loop);
  const scheduler = new ModelScheduler();
  const generation = registerGenerationHandlers(loop, rpc, scheduler, loadGenerator);
  // Other handler modules (training jobs) register their message types on `loop` in main.ts.
  loop.start();
  return { loop, rpc, scheduler, generation };
}

/** The process as transport: IPC messages from the parent that forked this process. */
export function processTransport(proc: NodeJS.Process): HostTransport {
  if (!proc.send)
    throw new Error('model host must be started with an IPC channel (child_process.fork)');
  const send = proc.send.bind(proc);
  return {
    send: (message) => {
      // After the parent went away there is nobody to tell; the disconnect handler exits.
      if (proc.connected) send(message);
    },
    onMessage: (listener) => proc.on('message', listener),
  };
}
