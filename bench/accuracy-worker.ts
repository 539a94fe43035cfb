// One real worker for the accuracy benchmark (bench/accuracy.node.ts forks one per core): the
// same WorkerClient and CPU backend a tab's CPU path uses, over a real socket, computing real
// gradients on the shards it fetches. Stops when its parent disconnects.
import { cpuBackendFor } from '../client/worker/backend.ts';
import { WorkerClient } from '../client/worker/worker-client.ts';
import { microBatchOf } from '../shared/run-spec.ts';

const url = process.argv[2];
if (!url) throw new Error('usage: accuracy-worker.ts URL');
const worker = new WorkerClient({ url, backend: 'cpu', makeBackend: async (run) => cpuBackendFor(run, microBatchOf(run.spec)), hello: { nickname: `bench-${process.pid}` } });
worker.start();
process.on('disconnect', () => process.exit(0));
