// The page's CPU lanes: Web Workers (cpu-lane.worker.ts), as many as the machine's cores and the
// person's work cap allow. Parameters are shared where the page is cross-origin isolated, else
// copied to each lane once per version.
import type { LayerConfig } from '../../shared/layers/layer.ts';
import { describeModel } from '../../shared/layers/sequence.ts';
import type { GradientBackend } from './backend.ts';
import { MessageLanePool, type LaneEndpoint } from './lane-pool.ts';
import { ThreadedCpuBackend } from './threaded-backend.ts';

/**
 * Threads for a cap in (0, 1]: the share of navigator.hardwareConcurrency the cap allows, at
 * least one. The rest of the cap (a fraction of a thread) is the duty cycle `dutyFor` gives.
 */
export function pageThreads(cap: number, cores = globalThis.navigator?.hardwareConcurrency ?? 1): number {
  return Math.max(1, Math.floor(Math.max(1, cores) * Math.min(1, Math.max(0, cap))));
}

/** The fraction of the time `threads` threads may compute so that they use at most `cap` of `cores`. */
export function dutyFor(cap: number, threads: number, cores = globalThis.navigator?.hardwareConcurrency ?? 1): number {
  return Math.min(1, (cap * Math.max(1, cores)) / threads);
}

export class WebWorkerPool extends MessageLanePool {
  constructor(threads: number, layers: LayerConfig[], inputShape: number[], maxBatch: number, paramCount: number) {
    const lanes = Array.from({ length: threads }, (): LaneEndpoint => {
      const worker = new Worker(new URL('./cpu-lane.worker.ts', import.meta.url), { type: 'module', name: 'crowdtrain-cpu-lane' });
      return {
        post: (msg, transfer) => worker.postMessage(msg, transfer ?? []),
        listen: (onMessage, onFail) => {
          worker.onmessage = (e) => onMessage(e.data);
          worker.onerror = (e) => onFail(new Error(`a CPU lane failed: ${e.message}`));
        },
        terminate: () => worker.terminate(),
      };
    });
    const share = typeof SharedArrayBuffer !== 'undefined' && (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
    super(lanes, { layers, inputShape, maxBatch, paramCount }, share);
  }
}

/** The page's CPU backend for a run's model on `threads` Web Workers. */
export function pageCpuBackend(net: { layers: LayerConfig[]; inputShape: number[] }, maxBatch: number, threads: number): GradientBackend {
  const model = describeModel(net.layers, net.inputShape);
  return new ThreadedCpuBackend(model, maxBatch, new WebWorkerPool(threads, net.layers, net.inputShape, maxBatch, model.paramCount));
}
