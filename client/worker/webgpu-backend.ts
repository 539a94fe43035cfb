// The WebGPU gradient backend: the WGSL executor (client/nn/mlp.ts) behind GradientBackend.
import type { Gpu } from '../gpu/runtime.ts';
import { LayerExecutor } from '../nn/layer-executor.ts';
import { MlpExecutor } from '../nn/mlp.ts';
import { describeModel, type ModelDescription } from '../../shared/layers/sequence.ts';
import type { MlpSpec } from '../../shared/model.ts';
import type { NetInfo } from '../../shared/run-model.ts';
import type { GradientBackend, GradientResult } from './backend.ts';

/**
 * One executor per batch size seen (tasks of a round may differ by one example, and a task's last
 * micro-batch is shorter); the three used most recently are kept, older ones freed.
 */
export class WebGpuBackend implements GradientBackend {
  readonly kind = 'webgpu' as const;
  private execs = new Map<number, { exec: MlpExecutor; version: number }>();
  private params?: Float32Array;
  private version = 0;

  constructor(
    private readonly gpu: Gpu,
    private readonly spec: MlpSpec,
    readonly maxBatch: number,
  ) {}

  setParams(params: Float32Array): void {
    this.params = params;
    this.version++;
  }

  private executor(batch: number): MlpExecutor {
    if (batch > this.maxBatch) throw new RangeError(`batch of ${batch} examples exceeds this backend's ${this.maxBatch}`);
    let e = this.execs.get(batch);
    if (e) this.execs.delete(batch); // re-inserted below: the map's order is the use order
    else {
      e = { exec: new MlpExecutor(this.gpu, { spec: this.spec, batch, optimizer: { kind: 'sgd', lr: 0 } }), version: -1 };
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

/** A layer-list model on WebGPU: the layer executor (client/nn/layer-executor.ts), one per batch size seen (three kept). */
export class LayerGpuBackend implements GradientBackend {
  readonly kind = 'webgpu' as const;
  private execs = new Map<number, { exec: LayerExecutor; version: number }>();
  private params?: Float32Array;
  private version = 0;

  constructor(
    private readonly gpu: Gpu,
    private readonly model: ModelDescription,
    readonly maxBatch: number,
  ) {}

  setParams(params: Float32Array): void {
    this.params = params;
    this.version++;
  }

  private executor(batch: number): LayerExecutor {
    if (batch > this.maxBatch) throw new RangeError(`batch of ${batch} examples exceeds this backend's ${this.maxBatch}`);
    let e = this.execs.get(batch);
    if (e) this.execs.delete(batch);
    else {
      e = { exec: new LayerExecutor(this.gpu, this.model, { maxBatch: batch }), version: -1 };
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

  async gradients(x: Float32Array, labels: ArrayLike<number>, batch: number): Promise<GradientResult> {
    return this.executor(batch).computeGradients(x, labels, batch);
  }

  get allocatedBytes(): number {
    let n = 0;
    for (const { exec } of this.execs.values()) n += exec.allocatedBytes;
    return n;
  }

  dispose(): void {
    for (const { exec } of this.execs.values()) exec.destroy();
    this.execs.clear();
  }
}

/** The WebGPU backend for a run's model: the MLP executor for the MLP form, the layer executor otherwise. */
export function webgpuBackendFor(gpu: Gpu, net: NetInfo, maxBatch: number): GradientBackend {
  return net.model ? new WebGpuBackend(gpu, net.model, maxBatch) : new LayerGpuBackend(gpu, describeModel(net.layers, net.inputShape), maxBatch);
}
