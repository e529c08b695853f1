// Model host process entry (dist/modelHost.js): forked by the extension host with
// an IPC channel. It owns every onnxruntime session; see src/host/modelHost.ts for the parts.
import { loadGenerator } from '../generation';
import { createModelHost, processTransport } from './modelHost';
import { registerTrainingHandlers } from './trainingHandlers';
import { EDITOR_ADVICE, createTrainingRunners } from './trainingRunners';

const host = createModelHost(processTransport(process), (modelDir) => loadGenerator(modelDir));
const log = host.loop.logger('host');
// Only the editor forks this process, so refusals word their advice for the editor (no flags).
registerTrainingHandlers(
  host.loop,
  host.scheduler,
  createTrainingRunners({ advice: EDITOR_ADVICE }),
);

// The parent is gone (editor closed or crashed): nothing can use our results any more.
process.on('disconnect', () => process.exit(0));
process.on('uncaughtException', (error) => {
  log.error(`uncaught exception, exiting: ${error.stack ?? error.message}`);
  // Exit after the log record had a chance to be flushed; the client restarts the process.
  setTimeout(() => process.exit(1), 50);
});
process.on('unhandledRejection', (reason) => {
  log.error(
    `unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`,
  );
});
log.info(`model host started (pid ${process.pid}, node ${process.versions.node})`);
