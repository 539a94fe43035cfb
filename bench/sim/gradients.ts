// How simulated workers get their results: the interface the simulator calls, and the real
// one (the CPU backend on this machine, one task after another, so tasks of workers that run
// "at the same time" in virtual time never share the backend's buffers). A gradient task runs
// on one shared backend; a local-mode task runs on the worker's own backend, whose inner
// optimizer state carries over between rounds as a real worker's does. Compute time in
// virtual time is the worker profile's business, and coding the result the worker's.
import { cpuBackendFor, type GradientBackend } from '../../client/worker/backend.ts';
import { taskInnerSteps } from '../../client/worker/task-local.ts';
import { taskGradient, type ExampleSource } from '../../client/worker/task-gradient.ts';
import { featuresAsFloat, labelWidthOf, type Dataset } from '../../shared/dataset.ts';
import type { OptimizerConfig } from '../../shared/reference/optimizer.ts';
import type { NetInfo } from '../../shared/run-model.ts';

export interface TaskGradient {
  loss: number;
  /** Mean-loss gradient over the task's examples, dense layout; owned by the caller. */
  grads: Float32Array;
}

export interface LocalSteps {
  /** Mean of the inner steps' batch losses. */
  loss: number;
  /** Parameters at the start minus after the steps, dense layout; owned by the caller. */
  pseudo: Float32Array;
}

export interface GradientEngine {
  /** The mean gradient of the loss at `params` over the training examples `indices`. */
  compute(params: Float32Array, indices: Uint32Array): Promise<TaskGradient>;
  /**
   * Local mode: `steps` inner steps of `optimizer` from `params` on batches of `batch` of `indices`,
   * with worker `workerId`'s own inner optimizer state (kept between its tasks until `forget`).
   */
  innerSteps(workerId: string, params: Float32Array, indices: Uint32Array, steps: number, batch: number, optimizer: OptimizerConfig): Promise<LocalSteps>;
  /** The worker is gone, or starts afresh: its inner optimizer state is dropped. */
  forget(workerId: string): void;
}

/**
 * Training examples by index, as a worker's shard store gives them: features as float32 (pixels
 * in [0, 1], token ids as they are), labels [n, labelWidth] (one per position for a text).
 */
export function datasetSource(train: Dataset): ExampleSource {
  const x = featuresAsFloat(train);
  const f = train.features;
  const width = labelWidthOf(train);
  return {
    batch: async (indices) => {
      const out = new Float32Array(indices.length * f);
      const labels = new Uint8Array(indices.length * width);
      for (let i = 0; i < indices.length; i++) {
        out.set(x.subarray(indices[i] * f, (indices[i] + 1) * f), i * f);
        labels.set(train.y.subarray(indices[i] * width, (indices[i] + 1) * width), i * width);
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
  /** Each local-mode worker's own backend: its parameters during a task and its inner optimizer state. */
  private readonly own = new Map<string, GradientBackend>();
  private queue: Promise<unknown> = Promise.resolve();
  /** Examples computed (real work done on this machine). */
  examples = 0;

  constructor(
    private readonly net: Pick<NetInfo, 'layers' | 'inputShape'>,
    private readonly microBatch: number,
    private readonly source: ExampleSource,
  ) {
    this.backend = cpuBackendFor(net, microBatch);
  }

  compute(params: Float32Array, indices: Uint32Array): Promise<TaskGradient> {
    return this.serial(async () => {
      this.backend.setParams(params);
      const out = await taskGradient(this.backend, this.source, indices, () => true);
      this.examples += indices.length;
      // The backend's gradient buffer is overwritten by its next task: keep a copy.
      return { loss: out!.loss, grads: out!.grads.slice() };
    });
  }

  innerSteps(workerId: string, params: Float32Array, indices: Uint32Array, steps: number, batch: number, optimizer: OptimizerConfig): Promise<LocalSteps> {
    return this.serial(async () => {
      let backend = this.own.get(workerId);
      if (!backend) this.own.set(workerId, (backend = cpuBackendFor(this.net, Math.max(this.microBatch, batch))));
      const out = await taskInnerSteps(backend, params, this.source, indices, steps, batch, optimizer, () => true);
      this.examples += indices.length;
      return out!;
    });
  }

  forget(workerId: string): void {
    const backend = this.own.get(workerId);
    if (!backend) return;
    this.own.delete(workerId);
    // A task of this worker may still be queued: dispose of the backend after it.
    void this.serial(async () => backend.dispose());
  }

  /** Runs `work` after every task queued before it: one task at a time on this machine. */
  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work);
    this.queue = next.catch(() => undefined);
    return next;
  }
}
