// How a worker computes a task's gradient: on the GPU (WGSL kernels through the executor) or
// on the CPU (the fast blocked-loop backend). Both give the mean-loss gradient, dense layout.
import { CpuMlp } from '../cpu/mlp-cpu.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { MlpExecutor } from '../nn/mlp.ts';
import type { MlpSpec } from '../../shared/model.ts';
import type { Backend } from '../../shared/protocol.ts';

export interface GradientResult {
  loss: number;
  /** Dense layout; valid until the next call. */
  grads: Float32Array;
}

export interface GradientBackend {
  readonly kind: Backend;
  setParams(params: Float32Array): void;
  gradients(x: Float32Array, labels: ArrayLike<number>, batch: number): Promise<GradientResult>;
  /** Bytes this backend holds for parameters, gradients and state. */
  readonly allocatedBytes: number;
  dispose(): void;
}

export class CpuBackend implements GradientBackend {
  readonly kind = 'cpu' as const;
  private net: CpuMlp;

  constructor(spec: MlpSpec, maxBatch: number) {
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

/** One executor per batch size seen (tasks of a round may differ by one example). */
export class WebGpuBackend implements GradientBackend {
  readonly kind = 'webgpu' as const;
  private execs = new Map<number, { exec: MlpExecutor; version: number }>();
  private params?: Float32Array;
  private version = 0;

  constructor(
    private readonly gpu: Gpu,
    private readonly spec: MlpSpec,
  ) {}

  setParams(params: Float32Array): void {
    this.params = params;
    this.version++;
  }

  private executor(batch: number): MlpExecutor {
    let e = this.execs.get(batch);
    if (!e) {
      e = { exec: new MlpExecutor(this.gpu, { spec: this.spec, batch, optimizer: { kind: 'sgd', lr: 0 } }), version: -1 };
      this.execs.set(batch, e);
    }
    if (e.version !== this.version && this.params) {
      e.exec.setParams(this.params);
      e.version = this.version;
    }
    return e.exec;
  }

  async gradients(x: Float32Array, labels: ArrayLike<number>, batch: number): Promise<GradientResult> {
    const exec = this.executor(batch);
    exec.setBatch(x, labels);
    exec.computeGradients();
    const grads = await exec.getGrads();
    return { loss: await exec.readLoss(), grads };
  }

  get allocatedBytes(): number {
    let n = 0;
    for (const { exec } of this.execs.values()) n += exec.parameterBytes;
    return n;
  }

  dispose(): void {
    for (const { exec } of this.execs.values()) exec.destroy();
    this.execs.clear();
  }
}
