// The CPU executor of a layer list: any contiguous range [first, end) of a model described by
// shared/layers (the whole model for a data-parallel task, a stage's range for a pipeline task),
// with the fast CPU kernels (./index.ts) through the one chain rule (forwardRange/backwardRange).
// The same contract as the WebGPU executor (client/nn/layer-executor.ts), so a worker adapts
// either one to tasks and stages the same way. Pure TS: the coordinator can use it too.
//
// Shapes: B examples of the range's input [B, ...inShape] and output [B, ...outShape] (shapes of
// one example, as shared/layers). Parameters and gradients are the range's slice of the model's
// flat vector, [paramOffset, paramOffset + paramCount).
//
// @example a pipeline stage (not the last), two micro-batches of 32
//   const stage = new CpuLayerExecutor(model, { first: 0, end: 4, maxBatch: 32, maxMicroBatches: 2 });
//   stage.setParams(params.subarray(stage.paramOffset, stage.paramOffset + stage.paramCount));
//   stage.zeroGrads();
//   const h0 = await stage.forward(x0, 32, 0), h1 = await stage.forward(x1, 32, 1);
//   await stage.backward(dh1, 32, 1); await stage.backward(dh0, 32, 0);
//   const grads = await stage.gradients(); // summed over both micro-batches
import { labelsPerExample, lossAndGradient } from '../layers/head.ts';
import { sizeOf } from '../layers/layer.ts';
import { LayerRange, type LayerRangeOptions } from '../layers/layer-range.ts';
import { backwardRange, forwardRange, type ModelDescription, type RangeOptions } from '../layers/sequence.ts';
import { cpuKernels } from './index.ts';

export type CpuLayerExecutorOptions = LayerRangeOptions;

export interface CpuForwardBackwardOptions {
  /** Micro-batch slot (default 0). */
  mb?: number;
  /** Denominator of the mean the gradient is of (default: this batch's labelled rows); see client/nn/layer-executor.ts. */
  gradRows?: number;
}

export class CpuLayerExecutor extends LayerRange {
  private readonly params: Float32Array;
  private readonly grads: Float32Array;
  /** Per micro-batch slot: what its backward needs, and the batch it was forwarded with (0: nothing pending). */
  private readonly slots: { caches: unknown[]; pending: number }[] = [];
  private readonly range: RangeOptions;
  private destroyed = false;

  constructor(model: ModelDescription, opts: CpuLayerExecutorOptions) {
    super(model, opts, 'CpuLayerExecutor');
    const { first, end } = this;
    this.params = new Float32Array(this.paramCount);
    this.grads = new Float32Array(this.paramCount);
    // The model's input (images, token ids) needs no gradient; a later stage's input does.
    this.range = { first, end, base: this.paramOffset, kernels: cpuKernels, inputGrad: first > 0 };
  }

  /** Copies in the range's parameters, the model's dense slice [paramOffset, + paramCount). */
  setParams(dense: Float32Array): void {
    this.live();
    if (dense.length !== this.paramCount) throw new RangeError(`CpuLayerExecutor.setParams: expected ${this.paramCount} parameters, got ${dense.length}`);
    this.params.set(dense);
  }

  async getParams(): Promise<Float32Array> {
    return this.params.slice();
  }

  /**
   * The range's parameters themselves, not a copy (as the WebGPU executor's `params` buffer): a
   * local-mode worker's optimizer steps them in place between gradients.
   */
  get paramBuffer(): Float32Array {
    this.live();
    return this.params;
  }

  /** Starts a sum of gradients (a round): every gradient to zero. */
  zeroGrads(): void {
    this.live();
    this.grads.fill(0);
  }

  /** The gradients summed since zeroGrads(), the range's slice (a copy). */
  async gradients(): Promise<Float32Array> {
    this.live();
    return this.grads.slice();
  }

  /** Forward of micro-batch `mb`: x [batch, ...inShape] → y [batch, ...outShape], keeping what its backward needs. */
  async forward(x: Float32Array, batch: number, mb = 0): Promise<Float32Array> {
    this.checkInput(x, batch, 'forward');
    const s = this.slot(mb, 'forward');
    const f = forwardRange(this.model, this.params, x, batch, this.range);
    s.caches = f.caches;
    s.pending = batch;
    return f.y;
  }

  /**
   * Backward of micro-batch `mb` given dL/dy [batch, ...outShape]: ADDS the parameter gradients
   * into the sum and returns dL/dx [batch, ...inShape], or null on a range that starts at the
   * model's input. Micro-batches may come back in any order.
   */
  async backward(dy: Float32Array, batch: number, mb = 0): Promise<Float32Array | null> {
    const s = this.slot(mb, 'backward');
    if (s.pending !== batch) throw new Error(`CpuLayerExecutor.backward: micro-batch ${mb} ${s.pending ? `was forwarded with ${s.pending} examples, not ${batch}` : 'has not been forwarded since its last backward'}`);
    const n = batch * sizeOf(this.outShape);
    if (dy.length !== n) throw new RangeError(`CpuLayerExecutor.backward: dy has ${dy.length} values, expected ${batch} × ${sizeOf(this.outShape)} = ${n}`);
    return this.backwardOf(s, dy, batch);
  }

  /**
   * The range's last layer is the model's: forward, softmax cross-entropy against labels
   * ([batch] classes, or [batch, T] tokens) and backward, adding into the gradient sum. Returns
   * the mean loss of these rows and dL/dx (null on a range that starts at the model's input).
   */
  async forwardBackwardLoss(x: Float32Array, labels: ArrayLike<number>, batch: number, opts: CpuForwardBackwardOptions = {}): Promise<{ loss: number; dx: Float32Array | null }> {
    if (!this.last) throw new Error(`CpuLayerExecutor.forwardBackwardLoss: layers [${this.first}, ${this.end}) do not end the model; use forward and backward`);
    this.checkInput(x, batch, 'forwardBackwardLoss');
    const s = this.slot(opts.mb ?? 0, 'forwardBackwardLoss');
    const rows = batch * labelsPerExample(this.outShape);
    const classes = this.outShape[this.outShape.length - 1];
    if (labels.length !== rows) throw new RangeError(`CpuLayerExecutor.forwardBackwardLoss: ${labels.length} labels, expected ${rows}`);
    for (let r = 0; r < rows; r++) {
      const label = labels[r];
      if (!Number.isInteger(label) || label < 0 || label >= classes) throw new RangeError(`CpuLayerExecutor.forwardBackwardLoss: label ${r} is ${label}, expected an integer in [0, ${classes})`);
    }
    const f = forwardRange(this.model, this.params, x, batch, this.range);
    s.caches = f.caches;
    const head = lossAndGradient(this.outShape, f.y, labels, batch);
    const gradRows = opts.gradRows ?? rows;
    if (gradRows !== rows) {
      const scale = rows / gradRows;
      for (let i = 0; i < head.dlogits.length; i++) head.dlogits[i] *= scale;
    }
    return { loss: head.loss, dx: this.backwardOf(s, head.dlogits, batch) };
  }

  /** The whole model's data-parallel step: the gradient of the mean loss over the batch (an internal buffer, valid until the next call). */
  async computeGradients(x: Float32Array, labels: ArrayLike<number>, batch: number): Promise<{ loss: number; grads: Float32Array }> {
    this.zeroGrads();
    const { loss } = await this.forwardBackwardLoss(x, labels, batch);
    return { loss, grads: this.grads };
  }

  /** The range's output for x [batch, ...inShape] (logits on the last range), touching no micro-batch's stash. */
  async predict(x: Float32Array, batch: number): Promise<Float32Array> {
    this.checkInput(x, batch, 'predict');
    return forwardRange(this.model, this.params, x, batch, this.range).y;
  }

  get parameterBytes(): number {
    return this.params.byteLength;
  }

  /** Parameters and gradients (the caches of a round's micro-batches come and go with it). */
  get allocatedBytes(): number {
    return this.params.byteLength + this.grads.byteLength;
  }

  destroy(): void {
    this.destroyed = true;
    this.slots.length = 0;
  }

  private backwardOf(s: { caches: unknown[]; pending: number }, dy: Float32Array, batch: number): Float32Array | null {
    const dx = backwardRange(this.model, this.params, s.caches, dy, batch, this.grads, this.range);
    s.caches = [];
    s.pending = 0;
    return this.first > 0 ? dx : null;
  }

  private live(): void {
    if (this.destroyed) throw new Error('CpuLayerExecutor: used after destroy()');
  }

  private slot(mb: number, what: string): { caches: unknown[]; pending: number } {
    this.live();
    if (!Number.isInteger(mb) || mb < 0 || mb >= this.maxMicroBatches) throw new RangeError(`CpuLayerExecutor.${what}: micro-batch ${mb} is outside [0, maxMicroBatches ${this.maxMicroBatches})`);
    while (this.slots.length <= mb) this.slots.push({ caches: [], pending: 0 });
    return this.slots[mb];
  }

  private checkInput(x: Float32Array, batch: number, what: string): void {
    this.live();
    if (!Number.isInteger(batch) || batch < 1 || batch > this.maxBatch) throw new RangeError(`CpuLayerExecutor.${what}: batch ${batch} is outside [1, maxBatch ${this.maxBatch}]`);
    const n = batch * sizeOf(this.inShape);
    if (x.length !== n) throw new RangeError(`CpuLayerExecutor.${what}: x has ${x.length} values, expected ${batch} × ${sizeOf(this.inShape)} = ${n}`);
  }
}
