// One headless worker process for the pipeline benchmark: the CPU backends (whole model and
// stage) behind the same WorkerClient the tabs use. Usage: pipeline-worker.ts <coordinator URL>
import { microBatchOf } from '../shared/run-spec.ts';
import { cpuBackendFor } from '../client/worker/backend.ts';
import { cpuStageBackend } from '../client/worker/stage-backend.ts';
import { WorkerClient } from '../client/worker/worker-client.ts';

const url = process.argv[2];
if (!url) {
  console.error('usage: pipeline-worker.ts <coordinator URL>');
  process.exit(2);
}
const w = new WorkerClient({
  url,
  backend: 'cpu',
  makeBackend: async (run) => cpuBackendFor(run, microBatchOf(run.spec)),
  makeStageBackend: async (_run, setup) => cpuStageBackend(setup),
});
w.start();
process.on('SIGTERM', () => {
  w.stop();
  process.exit(0);
});
