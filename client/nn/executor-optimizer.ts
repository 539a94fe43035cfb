// The optimizer's step on the GPU in place on a layer executor's parameter buffer, with that
// executor's gradients (shaders/optimizer.wgsl through client/gpu/ops/optimizer.ts), and the state
// kept between steps: the moments and the step counter t. One state can step several executors of
// the same model (a worker keeps one per batch size): they share one padded buffer layout. What
// the steps are for (a tab's epochs, a worker's inner steps in local mode) does not belong here.
//
// @example
//   const opt = new ExecutorOptimizer(gpu, 'trainer');
//   exec.zeroGrads(); await exec.forwardBackwardLoss(x, labels, batch);
//   opt.step(exec, { kind: 'adamw', lr: 1e-3 }); // queued after the backward, nothing awaited
import { optimizerStateCount, optimizerStep, setOptimizerStep, type OptimizerConfig, type OptimizerKind } from '../gpu/ops/optimizer.ts';
import type { Dispatch, Gpu } from '../gpu/runtime.ts';

/** What a step reads and writes: f32[N] each, in the executor's padded layout (padding has zero gradient, so it stays zero). */
export interface SteppedBuffers {
  readonly params: GPUBuffer;
  readonly grads: GPUBuffer;
}

export class ExecutorOptimizer {
  private m?: GPUBuffer;
  private v?: GPUBuffer;
  /** Floats of the buffers stepped (fixed by the first step). */
  private floats = 0;
  /** Kind of the state held (null before the first step). */
  private kind: OptimizerKind | null = null;
  private t = 0;
  /** One prepared dispatch per executor stepped, for the state's kind. */
  private readonly dispatches = new Map<SteppedBuffers, Dispatch>();

  constructor(
    private readonly gpu: Gpu,
    private readonly label: string,
  ) {}

  /** Steps taken since the state was last fresh: the last step's t. */
  get steps(): number {
    return this.t;
  }

  /**
   * Queues step t + 1 of `config` on exec.params with exec.grads (whose gradients must already be
   * queued). A config of another kind than the state's starts the state afresh (t = 1).
   */
  step(exec: SteppedBuffers, config: OptimizerConfig): void {
    const floats = exec.params.size / 4;
    if (this.floats === 0) this.floats = floats;
    if (floats !== this.floats || exec.grads.size !== exec.params.size) {
      throw new RangeError(`ExecutorOptimizer(${this.label}): buffers of ${floats} floats, the state's ${this.floats}`);
    }
    // optimizer.wgsl has momentum in PyTorch's plain form only: refuse rather than step another.
    if ((config as { nesterov?: boolean }).nesterov) throw new Error(`ExecutorOptimizer(${this.label}): Nesterov momentum has no GPU kernel`);
    if (config.kind !== this.kind) {
      this.dropDispatches();
      this.kind = config.kind;
      this.t = 0;
    }
    // Zero-filled once; afterwards step 1 ignores whatever the moments hold, so a reset needs no clear.
    const states = optimizerStateCount(config.kind);
    if (states >= 1) this.m ??= this.gpu.buffer(floats * 4, `${this.label}/m`);
    if (states >= 2) this.v ??= this.gpu.buffer(floats * 4, `${this.label}/v`);
    let d = this.dispatches.get(exec);
    if (!d) {
      d = optimizerStep(this.gpu, { params: exec.params, grads: exec.grads, m: this.m, v: this.v, count: floats, config });
      this.dispatches.set(exec, d);
    }
    setOptimizerStep(this.gpu, d, config, ++this.t);
    this.gpu.submit([d]);
  }

  /** Forgets the moments and the step count: the next step is t = 1. */
  reset(): void {
    this.t = 0;
  }

  /** Frees what was prepared for `exec` (call before destroying it). */
  forget(exec: SteppedBuffers): void {
    this.dispatches.get(exec)?.uniforms?.destroy();
    this.dispatches.delete(exec);
  }

  get allocatedBytes(): number {
    let n = (this.m?.size ?? 0) + (this.v?.size ?? 0);
    for (const d of this.dispatches.values()) n += d.uniforms?.size ?? 0;
    return n;
  }

  destroy(): void {
    this.dropDispatches();
    this.m?.destroy();
    this.v?.destroy();
    this.m = this.v = undefined;
    this.floats = 0;
    this.kind = null;
    this.t = 0;
  }

  private dropDispatches(): void {
    for (const d of this.dispatches.values()) d.uniforms?.destroy();
    this.dispatches.clear();
  }
}
