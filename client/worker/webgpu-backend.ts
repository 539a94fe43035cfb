// The WebGPU gradient backend: the layer executor (client/nn/layer-executor.ts) on the whole model,
// for either model form (the MLP form is its dense layers), behind GradientBackend.
import type { Gpu } from '../gpu/runtime.ts';
import { LayerExecutor } from '../nn/layer-executor.ts';
import { describeModel, type ModelDescription } from '../../shared/layers/sequence.ts';
import type { NetInfo } from '../../shared/run-model.ts';
import type { GradientBackend, GradientResult } from './backend.ts';

interface Executor {
  setParams(params: Float32Array): void;
  destroy(): void;
}

/**
 * One executor per batch size seen (tasks of a round may differ by one example, and a task's last
 * micro-batch is shorter); the three used most recently are kept, older ones freed.
 */
abstract class ExecutorCacheBackend<E extends Executor> implements GradientBackend {
  readonly kind = 'webgpu' as const;
  private execs = new Map<number, { exec: E; version: number }>();
  private params?: Float32Array;
  private version = 0;

  constructor(readonly maxBatch: number) {}

  protected abstract create(batch: number): E;
  /** Bytes an executor holds on the GPU (what the page and the coordinator are told). */
  protected abstract bytesOf(exec: E): number;
  abstract gradients(x: Float32Array, labels: ArrayLike<number>, batch: number): Promise<GradientResult>;

  setParams(params: Float32Array): void {
    this.params = params;
    this.version++;
  }

  protected executor(batch: number): E {
    if (batch > this.maxBatch) throw new RangeError(`batch of ${batch} examples exceeds this backend's ${this.maxBatch}`);
    let e = this.execs.get(batch);
    if (e) this.execs.delete(batch); // re-inserted below: the map's order is the use order
    else {
      e = { exec: this.create(batch), version: -1 };
      while (this.execs.size >= 3) {
        const [oldest, old] = this.execs.entries().next().value!;
        old.exec.destroy();
        this.execs.delete(oldest);
      }
    }
    this.execs.set(batch, e);
    if (e.version !== this.version && this.params) {
      e.exec.setParams(this.params);
      e.version = this.version;
    }
    return e.exec;
  }

  get allocatedBytes(): number {
    let n = 0;
    for (const { exec } of this.execs.values()) n += this.bytesOf(exec);
    return n;
  }

  dispose(): void {
    for (const { exec } of this.execs.values()) exec.destroy();
    this.execs.clear();
  }
}

/** A model on the layer executor. */
export class LayerGpuBackend extends ExecutorCacheBackend<LayerExecutor> {
  constructor(
    private readonly gpu: Gpu,
    private readonly model: ModelDescription,
    maxBatch: number,
  ) {
    super(maxBatch);
  }

  protected create(batch: number): LayerExecutor {
    return new LayerExecutor(this.gpu, this.model, { maxBatch: batch });
  }

  protected bytesOf(exec: LayerExecutor): number {
    return exec.allocatedBytes;
  }

  async gradients(x: Float32Array, labels: ArrayLike<number>, batch: number): Promise<GradientResult> {
    return this.executor(batch).computeGradients(x, labels, batch);
  }
}

/** The WebGPU backend for a run's model (either form). */
export function webgpuBackendFor(gpu: Gpu, net: Pick<NetInfo, 'layers' | 'inputShape'>, maxBatch: number): GradientBackend {
  return new LayerGpuBackend(gpu, describeModel(net.layers, net.inputShape), maxBatch);
}
