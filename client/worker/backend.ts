// How a worker computes a task's gradient: the interface both backends implement, and the CPU
// one (the CPU layer executor; no GPU code, so Node workers can use it). The WebGPU one is in
// webgpu-backend.ts. Both give the mean-loss gradient, dense layout, for any model (the MLP form
// is its dense layers).
import { CpuLayerExecutor } from '../../shared/cpu/layer-executor.ts';
import type { LayerConfig } from '../../shared/layers/layer.ts';
import { describeModel, type ModelDescription } from '../../shared/layers/sequence.ts';
import type { Backend } from '../../shared/protocol.ts';

export interface GradientResult {
  loss: number;
  /** Dense layout; valid until the next call. */
  grads: Float32Array;
}

export interface GradientBackend {
  readonly kind: Backend;
  /** Most examples one gradients() call takes; a task larger than this is computed in micro-batches. */
  readonly maxBatch: number;
  setParams(params: Float32Array): void;
  gradients(x: Float32Array, labels: ArrayLike<number>, batch: number): Promise<GradientResult>;
  /** Bytes this backend holds for parameters, gradients and state. */
  readonly allocatedBytes: number;
  dispose(): void;
}

/** A model on the CPU: the fast CPU kernels (shared/cpu) through the one chain rule, on the whole model. */
export class LayerCpuBackend implements GradientBackend {
  readonly kind = 'cpu' as const;
  private readonly exec: CpuLayerExecutor;

  constructor(
    readonly model: ModelDescription,
    readonly maxBatch: number,
  ) {
    this.exec = new CpuLayerExecutor(model, { maxBatch });
  }

  setParams(params: Float32Array): void {
    if (params.length !== this.model.paramCount) throw new RangeError(`parameters have ${params.length} values, the model ${this.model.paramCount}`);
    this.exec.setParams(params);
  }

  gradients(x: Float32Array, labels: ArrayLike<number>, batch: number): Promise<GradientResult> {
    return this.exec.computeGradients(x, labels, batch);
  }

  get allocatedBytes(): number {
    return this.exec.allocatedBytes;
  }

  dispose(): void {
    this.exec.destroy();
  }
}

/** The CPU backend for a run's model (either form: the MLP form is its dense layers). */
export function cpuBackendFor(run: { layers: LayerConfig[]; inputShape: number[] }, maxBatch: number): GradientBackend {
  return new LayerCpuBackend(describeModel(run.layers, run.inputShape), maxBatch);
}
