// How a worker computes a task's gradient: the interface both backends implement, and the CPU
// one (the fast blocked-loop backend; no GPU code, so Node workers can use it). The WebGPU one
// is in webgpu-backend.ts. Both give the mean-loss gradient, dense layout, for the MLP form and for
// layer-list models.
import { CpuMlp } from '../cpu/mlp-cpu.ts';
import { cpuKernels } from '../../shared/cpu/index.ts';
import { lossAndGradient } from '../../shared/layers/head.ts';
import type { LayerConfig } from '../../shared/layers/layer.ts';
import { backwardRange, describeModel, forwardRange, type ModelDescription } from '../../shared/layers/sequence.ts';
import type { MlpSpec } from '../../shared/model.ts';
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

export class CpuBackend implements GradientBackend {
  readonly kind = 'cpu' as const;
  private net: CpuMlp;

  constructor(
    spec: MlpSpec,
    readonly maxBatch: number,
  ) {
    this.net = new CpuMlp(spec, maxBatch);
  }

  setParams(params: Float32Array): void {
    this.net.setParams(params);
  }

  async gradients(x: Float32Array, labels: ArrayLike<number>, batch: number): Promise<GradientResult> {
    return this.net.computeGradients(x, labels, batch);
  }

  get allocatedBytes(): number {
    return this.net.getParams().byteLength * 2;
  }

  dispose(): void {}
}

/** A layer-list model on the CPU: the fast CPU kernels (shared/cpu) through the one chain rule. */
export class LayerCpuBackend implements GradientBackend {
  readonly kind = 'cpu' as const;
  private params: Float32Array;
  private readonly grads: Float32Array;

  constructor(
    private readonly model: ModelDescription,
    readonly maxBatch: number,
  ) {
    this.params = new Float32Array(model.paramCount);
    this.grads = new Float32Array(model.paramCount);
  }

  setParams(params: Float32Array): void {
    if (params.length !== this.model.paramCount) throw new RangeError(`parameters have ${params.length} values, the model ${this.model.paramCount}`);
    this.params = params;
  }

  async gradients(x: Float32Array, labels: ArrayLike<number>, batch: number): Promise<GradientResult> {
    const f = forwardRange(this.model, this.params, x, batch, { kernels: cpuKernels });
    const head = lossAndGradient(this.model.outShape, f.y, labels, batch);
    this.grads.fill(0);
    backwardRange(this.model, this.params, f.caches, head.dlogits, batch, this.grads, { kernels: cpuKernels });
    return { loss: head.loss, grads: this.grads };
  }

  get allocatedBytes(): number {
    return this.model.paramCount * 8;
  }

  dispose(): void {}
}

/** The CPU backend for a run's model: the MLP's sparse-input path for the MLP form, the layer kernels otherwise. */
export function cpuBackendFor(run: { model: MlpSpec | null; layers: LayerConfig[]; inputShape: number[] }, maxBatch: number): GradientBackend {
  return run.model ? new CpuBackend(run.model, maxBatch) : new LayerCpuBackend(describeModel(run.layers, run.inputShape), maxBatch);
}
