// The CPU backend's lanes in Node: one worker_threads thread each (node/cpu-lane.ts), sharing the
// parameters through a SharedArrayBuffer (client/worker/lane-pool.ts does the messaging).
import type { LayerConfig } from '../shared/layers/layer.ts';
import { startTsThread } from '../server/ts-thread.ts';
import { MessageLanePool, type LaneEndpoint } from '../client/worker/lane-pool.ts';

const ENTRY = new URL('./cpu-lane.ts', import.meta.url);

/**
 * `threads` lanes for a model, sharing one copy of its parameters.
 * @example const backend = new ThreadedCpuBackend(model, 64, new CpuThreadPool(3, run.layers, run.inputShape, 64, model.paramCount));
 */
export class CpuThreadPool extends MessageLanePool {
  constructor(threads: number, layers: LayerConfig[], inputShape: number[], maxBatch: number, paramCount: number) {
    if (!(Number.isInteger(threads) && threads >= 1)) throw new RangeError(`threads must be a whole number ≥ 1, got ${threads}`);
    const lanes = Array.from({ length: threads }, (): LaneEndpoint => {
      const worker = startTsThread(ENTRY);
      return {
        post: (msg, transfer) => worker.postMessage(msg, (transfer ?? []) as ArrayBuffer[]),
        listen: (onMessage, onFail) => {
          worker.on('message', onMessage);
          worker.on('error', onFail);
          worker.on('exit', (code) => onFail(new Error(`a CPU thread exited with code ${code}`)));
        },
        terminate: () => void worker.terminate(),
      };
    });
    super(lanes, { layers, inputShape, maxBatch, paramCount }, true);
  }
}
