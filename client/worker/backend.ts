// How a worker computes a task: the interface both backends implement, and the CPU one (the CPU
// layer executor; no GPU code, so Node workers can use it). The WebGPU one is in
// webgpu-backend.ts. Both give the mean-loss gradient, dense layout, for any model (the MLP form
// is its dense layers), and in local mode take the run's inner optimizer steps on their own copy
// of the parameters (task-local.ts turns those into a pseudo-gradient).
import { CpuLayerExecutor } from '../../shared/cpu/layer-executor.ts';
import type { LayerConfig } from '../../shared/layers/layer.ts';
import { describeModel, type ModelDescription } from '../../shared/layers/sequence.ts';
import type { Backend } from '../../shared/protocol.ts';
import type { OptimizerConfig } from '../../shared/reference/optimizer.ts';
import { InnerOptimizer } from './inner-optimizer.ts';

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
  /**
   * Local mode: one optimizer step of `optimizer` in place on this backend's own parameters (set
   * by setParams), on x/labels of `batch` examples; resolves with the batch's mean loss. The
   * optimizer state persists across calls (and across setParams: DiLoCo keeps each replica's
   * inner state between outer rounds) until resetOptimizer(), and a step of another kind of
   * optimizer than the state's starts it afresh. Its step counter t counts from 1.
   */
  innerStep(x: Float32Array, labels: ArrayLike<number>, batch: number, optimizer: OptimizerConfig): Promise<number>;
  /** The parameters as they are now (after inner steps), dense layout; owned by the caller. */
  readParams(): Promise<Float32Array>;
  /** Forgets the inner optimizer's state (moments and step count): the next innerStep is t = 1. */
  resetOptimizer(): void;
  /** Bytes this backend holds for parameters, gradients and state. */
  readonly allocatedBytes: number;
  dispose(): void;
}

/** A model on the CPU: the fast CPU kernels (shared/cpu) through the one chain rule, on the whole model. */
export class LayerCpuBackend implements GradientBackend {
  readonly kind = 'cpu' as const;
  private readonly exec: CpuLayerExecutor;
  /** The inner optimizer's state (local mode). */
  private readonly inner = new InnerOptimizer();

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

  async innerStep(x: Float32Array, labels: ArrayLike<number>, batch: number, optimizer: OptimizerConfig): Promise<number> {
    if (batch > this.maxBatch) throw new RangeError(`batch of ${batch} examples exceeds this backend's ${this.maxBatch}`);
    const { loss, grads } = await this.exec.computeGradients(x, labels, batch);
    this.inner.step(this.exec.paramBuffer, grads, optimizer);
    return loss;
  }

  readParams(): Promise<Float32Array> {
    return this.exec.getParams();
  }

  resetOptimizer(): void {
    this.inner.reset();
  }

  get allocatedBytes(): number {
    return this.exec.allocatedBytes + this.inner.bytes;
  }

  dispose(): void {
    this.exec.destroy();
  }
}

/** The CPU backend for a run's model (either form: the MLP form is its dense layers). */
export function cpuBackendFor(run: { layers: LayerConfig[]; inputShape: number[] }, maxBatch: number): GradientBackend {
  return new LayerCpuBackend(describeModel(run.layers, run.inputShape), maxBatch);
}
