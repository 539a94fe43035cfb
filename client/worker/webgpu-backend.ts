// The WebGPU worker backend: the layer executor (client/nn/layer-executor.ts) on the whole model,
// for either model form (the MLP form is its dense layers), behind GradientBackend; in local mode
// the inner optimizer steps in place on the executor's parameters (client/nn/executor-optimizer.ts).
import type { Gpu } from '../gpu/runtime.ts';
import { ExecutorOptimizer } from '../nn/executor-optimizer.ts';
import { LayerExecutor } from '../nn/layer-executor.ts';
import { describeModel, type ModelDescription } from '../../shared/layers/sequence.ts';
import type { NetInfo } from '../../shared/run-model.ts';
import type { OptimizerConfig } from '../../shared/reference/optimizer.ts';
import type { GradientBackend, GradientResult } from './backend.ts';

/** Executors kept at once (see LayerGpuBackend). */
const CACHED_EXECUTORS = 3;

/**
 * A model on the layer executor. One executor per batch size seen (tasks of a round may differ by
 * one example, and a task's last micro-batch is shorter); the three used most recently are kept,
 * older ones freed.
 *
 * The parameters are those of the last setParams until an inner step changes them on one
 * executor's GPU buffer; from then on that executor ("live") holds the only copy of the current
 * parameters, is never evicted, and another executor that is needed takes them from it by a GPU
 * copy, until the next setParams. So setParams(start), H inner steps and readParams work with any
 * batch sizes, and the inner optimizer's state (one for all executors: they share a padded layout)
 * outlives setParams.
 */
export class LayerGpuBackend implements GradientBackend {
  readonly kind = 'webgpu' as const;
  /** By batch size; the map's order is the use order. `version` is that of the parameters the executor holds. */
  private execs = new Map<number, { exec: LayerExecutor; version: number }>();
  private params?: Float32Array;
  /** Bumped by setParams and by each inner step: the parameters' version. */
  private version = 0;
  /** The executor whose buffer holds the parameters after inner steps since the last setParams. */
  private live?: LayerExecutor;
  private readonly inner: ExecutorOptimizer;

  constructor(
    private readonly gpu: Gpu,
    private readonly model: ModelDescription,
    readonly maxBatch: number,
  ) {
    this.inner = new ExecutorOptimizer(gpu, 'worker/inner');
  }

  setParams(params: Float32Array): void {
    if (params.length !== this.model.paramCount) throw new RangeError(`parameters have ${params.length} values, the model ${this.model.paramCount}`);
    this.params = params;
    this.version++;
    this.live = undefined;
  }

  async gradients(x: Float32Array, labels: ArrayLike<number>, batch: number): Promise<GradientResult> {
    return this.executor(batch).computeGradients(x, labels, batch);
  }

  async innerStep(x: Float32Array, labels: ArrayLike<number>, batch: number, optimizer: OptimizerConfig): Promise<number> {
    const exec = this.executor(batch);
    exec.zeroGrads();
    const { loss } = await exec.forwardBackwardLoss(x, labels, batch);
    this.inner.step(exec, optimizer);
    this.live = exec;
    this.execs.get(batch)!.version = ++this.version;
    return loss;
  }

  async readParams(): Promise<Float32Array> {
    if (this.live) return this.live.getParams();
    return this.params ? this.params.slice() : new Float32Array(this.model.paramCount);
  }

  resetOptimizer(): void {
    this.inner.reset();
  }

  get allocatedBytes(): number {
    let n = this.inner.allocatedBytes;
    for (const { exec } of this.execs.values()) n += exec.allocatedBytes;
    return n;
  }

  dispose(): void {
    for (const { exec } of this.execs.values()) exec.destroy();
    this.execs.clear();
    this.inner.destroy();
    this.live = undefined;
  }

  private executor(batch: number): LayerExecutor {
    if (batch > this.maxBatch) throw new RangeError(`batch of ${batch} examples exceeds this backend's ${this.maxBatch}`);
    let e = this.execs.get(batch);
    if (e) this.execs.delete(batch); // re-inserted below
    else {
      e = { exec: new LayerExecutor(this.gpu, this.model, { maxBatch: batch }), version: -1 };
      this.evict(CACHED_EXECUTORS - 1);
    }
    this.execs.set(batch, e);
    if (e.version !== this.version) {
      if (this.live) this.copyParams(this.live, e.exec);
      else if (this.params) e.exec.setParams(this.params);
      e.version = this.version;
    }
    return e.exec;
  }

  /** Frees the least recently used executors but the live one until at most `keep` remain. */
  private evict(keep: number): void {
    for (const [batch, { exec }] of this.execs) {
      if (this.execs.size <= keep) return;
      if (exec === this.live) continue;
      this.inner.forget(exec);
      exec.destroy();
      this.execs.delete(batch);
    }
  }

  /** Same model, same padded layout: a copy of the whole buffer on the GPU's queue. */
  private copyParams(from: LayerExecutor, to: LayerExecutor): void {
    const encoder = this.gpu.device.createCommandEncoder({ label: 'inner-params' });
    encoder.copyBufferToBuffer(from.params, 0, to.params, 0, from.params.size);
    this.gpu.device.queue.submit([encoder.finish()]);
  }
}

/** The WebGPU backend for a run's model (either form). */
export function webgpuBackendFor(gpu: Gpu, net: Pick<NetInfo, 'layers' | 'inputShape'>, maxBatch: number): GradientBackend {
  return new LayerGpuBackend(gpu, describeModel(net.layers, net.inputShape), maxBatch);
}
