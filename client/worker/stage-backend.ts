// What a stage worker computes in a pipeline round, whichever backend does it: the forward and
// backward of its own contiguous layers on one micro-batch at a time, and the parameter gradient
// those micro-batches add up to. It is the layer executor of either backend (the CPU one,
// shared/cpu/layer-executor.ts, or the WebGPU one, client/nn/layer-executor.ts) on the stage's
// range, adapted once here. The schedule, the relaying of activations and the wire format do not
// belong here (server/ and worker-client.ts).
//
// Shapes: m rows of one micro-batch (≤ maxMicroBatch), B = Σ m over the round's micro-batches;
// a micro-batch's input is [m, ...plan.inShape], its output [m, ...plan.outShape].
//
// @example GPipe on one stage worker (not the first, not the last):
//   stage.begin(sizes);
//   for (let mb = 0; mb < sizes.length; mb++) send(mb, await stage.forward(mb, received(mb)));
//   for (let mb = sizes.length - 1; mb >= 0; mb--) sendBack(mb, await stage.backward(mb, gradientOf(mb)));
//   const grads = await stage.gradients(); // f32[plan.paramCount]
import { CpuLayerExecutor } from '../../shared/cpu/layer-executor.ts';
import { labelsPerExample } from '../../shared/layers/head.ts';
import type { ModelDescription } from '../../shared/layers/sequence.ts';
import type { StagePlan } from '../../shared/stage.ts';

export interface StageBackend {
  readonly plan: StagePlan;
  /** The stage's parameters: the model's vector slice [plan.paramOffset, + plan.paramCount). Copied in. */
  setParams(params: Float32Array): void;
  /** Starts a round: zeroes the gradient sum. `sizes` = rows of each micro-batch; their sum is the replica's batch B. */
  begin(sizes: number[]): void;
  /** Not the last stage: forward of micro-batch `mb` on x [m, ...inShape] -> y [m, ...outShape]. Keeps what backward needs. */
  forward(mb: number, x: Float32Array): Promise<Float32Array>;
  /** Last stage only: forward, softmax cross-entropy against the micro-batch's labels (m × labels per example), and backward. The gradient is of the MEAN loss over the whole replica batch (summed over the micro-batches). Returns the micro-batch's mean loss and dL/dx [m, ...inShape] (null when the stage is also first). */
  forwardBackwardLast(mb: number, x: Float32Array, labels: ArrayLike<number>): Promise<{ loss: number; dx: Float32Array | null }>;
  /** Not the last stage: backward of micro-batch mb given dL/dy [m, ...outShape] (already scaled); adds to the parameter gradients; returns dL/dx [m, ...inShape], or null on the first stage. Micro-batches may come back in any order. */
  backward(mb: number, dy: Float32Array): Promise<Float32Array | null>;
  /** Summed parameter gradient of this round (the stage's slice, same order as setParams). */
  gradients(): Promise<Float32Array>;
  /** Bytes of the stage's parameters and of everything its executor allocated. */
  readonly parameterBytes: number;
  readonly allocatedBytes: number;
  dispose(): void;
}

/** The executor contract both backends keep (micro-batch slots, a gradient sum, the loss on the last range). */
export interface RangeExecutor {
  readonly maxBatch: number;
  readonly maxMicroBatches: number;
  setParams(dense: Float32Array): void;
  zeroGrads(): void;
  gradients(): Promise<Float32Array>;
  forward(x: Float32Array, batch: number, mb?: number): Promise<Float32Array>;
  backward(dy: Float32Array, batch: number, mb?: number): Promise<Float32Array | null>;
  forwardBackwardLoss(x: Float32Array, labels: ArrayLike<number>, batch: number, opts?: { mb?: number; gradRows?: number }): Promise<{ loss: number; dx: Float32Array | null }>;
  readonly parameterBytes: number;
  readonly allocatedBytes: number;
  destroy(): void;
}

type MicroBatchState = 'idle' | 'forwarded' | 'done';

/**
 * A stage on a layer executor built for the plan's range, which checks the round's order (each
 * micro-batch forwarded once, then backpropagated once).
 * @example new ExecutorStage(plan, new CpuLayerExecutor(model, { first: plan.firstLayer, end: plan.endLayer, maxBatch: 32, maxMicroBatches: 4 }))
 */
export class ExecutorStage implements StageBackend {
  private sizes: number[] = [];
  private states: MicroBatchState[] = [];
  private rows = 0;
  private disposed = false;

  constructor(
    readonly plan: StagePlan,
    readonly executor: RangeExecutor,
  ) {}

  get maxMicroBatch(): number {
    return this.executor.maxBatch;
  }

  get parameterBytes(): number {
    return this.executor.parameterBytes;
  }

  get allocatedBytes(): number {
    return this.executor.allocatedBytes;
  }

  setParams(params: Float32Array): void {
    this.live();
    this.executor.setParams(params);
  }

  begin(sizes: number[]): void {
    this.live();
    if (sizes.length < 1) throw new RangeError('stage.begin: a round needs at least one micro-batch');
    if (sizes.length > this.executor.maxMicroBatches) throw new RangeError(`stage.begin: ${sizes.length} micro-batches, this stage holds at most ${this.executor.maxMicroBatches}`);
    sizes.forEach((m, i) => {
      if (!Number.isInteger(m) || m < 1 || m > this.maxMicroBatch) throw new RangeError(`stage.begin: micro-batch ${i} has ${m} rows, expected an integer in [1, maxMicroBatch ${this.maxMicroBatch}]`);
    });
    this.sizes = [...sizes];
    this.states = sizes.map(() => 'idle');
    this.rows = sizes.reduce((a, b) => a + b, 0) * labelsPerExampleOf(this.plan);
    this.executor.zeroGrads();
  }

  async forward(mb: number, x: Float32Array): Promise<Float32Array> {
    if (this.plan.last) throw new Error(`stage.forward: stage ${this.plan.index} is the last; use forwardBackwardLast`);
    this.expect(mb, 'idle', 'forward');
    const y = await this.executor.forward(x, this.sizes[mb], mb);
    this.states[mb] = 'forwarded';
    return y;
  }

  async forwardBackwardLast(mb: number, x: Float32Array, labels: ArrayLike<number>): Promise<{ loss: number; dx: Float32Array | null }> {
    if (!this.plan.last) throw new Error(`stage.forwardBackwardLast: stage ${this.plan.index} is not the last; use forward`);
    this.expect(mb, 'idle', 'forwardBackwardLast');
    const out = await this.executor.forwardBackwardLoss(x, labels, this.sizes[mb], { mb, gradRows: this.rows });
    this.states[mb] = 'done';
    return out;
  }

  async backward(mb: number, dy: Float32Array): Promise<Float32Array | null> {
    if (this.plan.last) throw new Error(`stage.backward: stage ${this.plan.index} is the last; its backward runs in forwardBackwardLast`);
    this.expect(mb, 'forwarded', 'backward');
    const dx = await this.executor.backward(dy, this.sizes[mb], mb);
    this.states[mb] = 'done';
    return dx;
  }

  gradients(): Promise<Float32Array> {
    this.live();
    return this.executor.gradients();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.executor.destroy();
  }

  private live(): void {
    if (this.disposed) throw new Error('stage: used after dispose()');
  }

  private expect(mb: number, state: MicroBatchState, what: string): void {
    this.live();
    if (!Number.isInteger(mb) || mb < 0 || mb >= this.sizes.length) throw new RangeError(`stage.${what}: micro-batch ${mb} is not one of this round's ${this.sizes.length} (call begin first)`);
    const now = this.states[mb];
    if (now === state) return;
    if (state === 'idle') throw new Error(`stage.${what}: micro-batch ${mb} has already been forwarded this round`);
    throw new Error(`stage.${what}: micro-batch ${mb} ${now === 'done' ? 'has already been backpropagated' : 'has not been forwarded'} this round`);
  }
}

/** What a stage backend is built for: the model, the stage's part of it, and the largest round it takes. */
export interface StageSetup {
  model: ModelDescription;
  plan: StagePlan;
  /** Most rows in one micro-batch. */
  maxMicroBatch: number;
  /** Most micro-batches in one round. */
  maxMicroBatches: number;
}

/** The stage on the CPU layer executor. */
export function cpuStageBackend({ model, plan, maxMicroBatch, maxMicroBatches }: StageSetup): ExecutorStage {
  return new ExecutorStage(plan, new CpuLayerExecutor(model, { first: plan.firstLayer, end: plan.endLayer, maxBatch: maxMicroBatch, maxMicroBatches }));
}

/** Labels each example of the stage's output has (last stage), else 1. */
function labelsPerExampleOf(plan: StagePlan): number {
  return plan.last ? labelsPerExample(plan.outShape) : 1;
}
