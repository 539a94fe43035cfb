// How simulated workers get their gradients: the interface the simulator calls, and the real
// one (the CPU backend on this machine, one task after another, so tasks of workers that run
// "at the same time" in virtual time never share the backend's buffers). Compute time in
// virtual time is the worker profile's business, not this file's.
import { cpuBackendFor, type GradientBackend } from '../../client/worker/backend.ts';
import { taskGradient, type ExampleSource } from '../../client/worker/task-gradient.ts';
import { featuresAsFloat, type Dataset } from '../../shared/dataset.ts';
import type { NetInfo } from '../../shared/run-model.ts';

export interface TaskGradient {
  loss: number;
  /** Mean-loss gradient over the task's examples, dense layout; owned by the caller. */
  grads: Float32Array;
}

export interface GradientEngine {
  /** The mean gradient of the loss at `params` over the training examples `indices`. */
  compute(params: Float32Array, indices: Uint32Array): Promise<TaskGradient>;
}

/** Training examples by index, as a worker's shard store gives them (features as float32 in [0, 1]). */
export function datasetSource(train: Dataset): ExampleSource {
  const x = featuresAsFloat(train);
  const f = train.features;
  return {
    batch: async (indices) => {
      const out = new Float32Array(indices.length * f);
      const labels = new Uint8Array(indices.length);
      for (let i = 0; i < indices.length; i++) {
        out.set(x.subarray(indices[i] * f, (indices[i] + 1) * f), i * f);
        labels[i] = train.y[indices[i]];
      }
      return { x: out, labels };
    },
  };
}

/**
 * Real gradients: taskGradient on one CPU backend, tasks serialised.
 * @example const engine = new CpuGradients(run.net, microBatchOf(spec), datasetSource(ds.train));
 */
export class CpuGradients implements GradientEngine {
  private readonly backend: GradientBackend;
  private queue: Promise<unknown> = Promise.resolve();
  /** Examples computed (real work done on this machine). */
  examples = 0;

  constructor(
    net: Pick<NetInfo, 'layers' | 'inputShape'>,
    microBatch: number,
    private readonly source: ExampleSource,
  ) {
    this.backend = cpuBackendFor(net, microBatch);
  }

  compute(params: Float32Array, indices: Uint32Array): Promise<TaskGradient> {
    const next = this.queue.then(async () => {
      this.backend.setParams(params);
      const out = await taskGradient(this.backend, this.source, indices, () => true);
      this.examples += indices.length;
      // The backend's gradient buffer is overwritten by its next task: keep a copy.
      return { loss: out!.loss, grads: out!.grads.slice() };
    });
    this.queue = next.catch(() => undefined);
    return next;
  }
}
