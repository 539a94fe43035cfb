// How a worker computes a task's gradient: the interface both backends implement, and the CPU
// one (the fast blocked-loop backend; no GPU code, so Node workers can use it). The WebGPU one
// is in webgpu-backend.ts. Both give the mean-loss gradient, dense layout.
import { CpuMlp } from '../cpu/mlp-cpu.ts';
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
