// The WebGPU executor of a layer list: any contiguous range [first, end) of a model described by
// shared/layers (the whole model for a data-parallel task, a stage's range for a pipeline task).
// It allocates the range's parameters, gradients, activations and scratch once, for batches up to
// maxBatch, prepares each dispatch list once per (micro-batch slot, batch) and then only writes
// inputs, submits and reads back. The chain rule is ./gpu-layers/chain.ts, each kind is
// ./gpu-layers/<kind>.ts; tasks, relays and optimizers do not belong here (client/worker/).
//
// Shapes: B examples (≤ maxBatch) of the range's input [B, ...inShape] and output [B, ...outShape]
// (shapes of one example, as shared/layers). Parameters and gradients travel in the model's dense
// flat layout, the range's slice [paramOffset, paramOffset + paramCount); on the GPU each tensor
// starts at a multiple of 64 floats (256 bytes) so it can be bound as a range (as ./mlp.ts).
//
// @example whole model, one data-parallel step
//   const exec = new LayerExecutor(gpu, describeModel(layers, [1, 28, 28]), { maxBatch: 64 });
//   exec.setParams(params);
//   const { loss, grads } = await exec.computeGradients(x, labels, 64);
// @example a pipeline stage (not the last), two micro-batches of 32
//   const stage = new LayerExecutor(gpu, model, { first: 0, end: 4, maxBatch: 32, maxMicroBatches: 2 });
//   stage.zeroGrads();
//   const h0 = await stage.forward(x0, 32, 0), h1 = await stage.forward(x1, 32, 1);
//   await stage.backward(dh1, 32, 1); await stage.backward(dh0, 32, 0);
//   const grads = await stage.gradients(); // summed over both micro-batches
import { labelsPerExample } from '../../shared/layers/head.ts';
import { sizeOf } from '../../shared/layers/layer.ts';
import { LayerRange, type LayerRangeOptions } from '../../shared/layers/layer-range.ts';
import type { ModelDescription } from '../../shared/layers/sequence.ts';
import { softmaxCrossEntropy } from '../gpu/ops/softmax-ce.ts';
import type { Binding, Dispatch, Gpu } from '../gpu/runtime.ts';
import { createChain, type ChainStash } from './gpu-layers/chain.ts';
import './gpu-layers/index.ts';
import type { Backward, Forward, GpuLayer } from './gpu-layers/layer.ts';

/** Every parameter tensor starts at a multiple of 64 floats (256 bytes) on the GPU. */
const ALIGN = 64;

export type LayerExecutorOptions = LayerRangeOptions;

export interface ForwardBackwardOptions {
  /** Micro-batch slot (default 0). */
  mb?: number;
  /**
   * Denominator of the mean the gradient is of (default: this batch's labelled rows). A pipeline's
   * last stage passes the replica batch's rows, so its micro-batches' gradients add up to that of
   * the whole batch's mean loss.
   */
  gradRows?: number;
}

/** One parameter tensor in the range's dense slice and in the padded GPU buffer. */
interface PlacedTensor {
  name: string;
  dense: number;
  gpu: number;
  size: number;
}

/** What one micro-batch keeps between its forward and its backward. */
interface Slot {
  /** The range's input [maxBatch, ...inShape]. */
  x: GPUBuffer;
  stash: ChainStash;
  /** Batch of its last forward; 0 when it has nothing to backpropagate. */
  pending: number;
  forward: Map<number, Forward>;
  backward: Map<number, Backward>;
}

export class LayerExecutor extends LayerRange {
  readonly params: GPUBuffer;
  readonly grads: GPUBuffer;
  private readonly tensors: PlacedTensor[];
  private readonly gpuCount: number;
  private readonly chain: GpuLayer<ChainStash>;
  private readonly slots: Slot[] = [];
  private predictSlot?: Slot;
  /** dL/d(range output) [maxBatch, ...outShape]: written by backward, or by the loss. */
  private readonly dy: GPUBuffer;
  /** Last range only: labels u32[maxBatch · rows per example], per-row loss f32[same]. */
  private readonly labels: GPUBuffer | null;
  private readonly lossRows: GPUBuffer | null;
  private readonly heads = new Map<string, Dispatch>();
  private owned: GPUBuffer[] = [];
  private prepared: Dispatch[] = [];
  private destroyed = false;

  constructor(
    readonly gpu: Gpu,
    model: ModelDescription,
    opts: LayerExecutorOptions,
  ) {
    super(model, opts, 'LayerExecutor');
    const { first, end, maxBatch, maxMicroBatches } = this;
    const layers = model.layers.slice(first, end);
    let gpuOffset = 0;
    this.tensors = layers.flatMap((l) =>
      l.params.map((p) => {
        const t = { name: p.name, dense: p.offset - this.paramOffset, gpu: gpuOffset, size: p.size };
        gpuOffset += Math.ceil(p.size / ALIGN) * ALIGN;
        return t;
      }),
    );
    this.gpuCount = gpuOffset;
    this.params = this.alloc(this.gpuCount, 'params');
    this.grads = this.alloc(this.gpuCount, 'grads');
    const range = (buffer: GPUBuffer) => this.tensors.map((t) => ({ buffer, offset: t.gpu * 4, size: t.size * 4 }));
    this.chain = createChain({
      gpu,
      layers,
      params: range(this.params),
      grads: range(this.grads),
      maxBatch,
      // The model's input (images, token ids) needs no gradient; a later stage's input does.
      inputGrad: first > 0,
      alloc: (floats, label) => this.alloc(floats, label),
    });
    this.dy = this.alloc(maxBatch * sizeOf(this.outShape), 'dy');
    const labelRows = this.last ? maxBatch * labelsPerExample(this.outShape) : 0;
    this.labels = this.last ? this.alloc(labelRows, 'labels') : null;
    this.lossRows = this.last ? this.alloc(labelRows, 'loss-rows') : null;
  }

  /** Writes the range's parameters, given as the model's dense slice [paramOffset, + paramCount). */
  setParams(dense: Float32Array): void {
    this.live();
    if (dense.length !== this.paramCount) throw new RangeError(`LayerExecutor.setParams: expected ${this.paramCount} parameters, got ${dense.length}`);
    const padded = new Float32Array(this.gpuCount);
    for (const t of this.tensors) padded.set(dense.subarray(t.dense, t.dense + t.size), t.gpu);
    this.gpu.write(this.params, padded);
  }

  /** The range's parameters, dense. */
  async getParams(): Promise<Float32Array> {
    return this.unpad(await this.gpu.read(this.params, this.gpuCount));
  }

  /** Starts a sum of gradients (a round): every gradient to zero. */
  zeroGrads(): void {
    this.live();
    const encoder = this.gpu.device.createCommandEncoder({ label: 'zero-grads' });
    encoder.clearBuffer(this.grads);
    this.gpu.device.queue.submit([encoder.finish()]);
  }

  /** The gradients summed since zeroGrads(), dense, the range's slice. */
  async gradients(): Promise<Float32Array> {
    this.live();
    return this.unpad(await this.gpu.read(this.grads, this.gpuCount));
  }

  /**
   * Forward of micro-batch `mb`: x [batch, ...inShape] → y [batch, ...outShape], keeping what its
   * backward needs in the slot until backward(…, mb) (a second forward on the slot replaces it).
   */
  async forward(x: Float32Array, batch: number, mb = 0): Promise<Float32Array> {
    const s = this.startForward(x, batch, mb, 'forward');
    const f = this.forwardOf(s, batch);
    this.gpu.submit(f.dispatches);
    s.pending = batch;
    return this.readBinding(f.y, batch * sizeOf(this.outShape));
  }

  /**
   * Backward of micro-batch `mb` given dL/dy [batch, ...outShape]: ADDS the parameter gradients
   * into the sum and returns dL/dx [batch, ...inShape], or null on a range that starts at the
   * model's input. Micro-batches may come back in any order.
   */
  async backward(dy: Float32Array, batch: number, mb = 0): Promise<Float32Array | null> {
    const s = this.slot(mb, 'backward');
    if (s.pending !== batch) throw new Error(`LayerExecutor.backward: micro-batch ${mb} ${s.pending ? `was forwarded with ${s.pending} examples, not ${batch}` : 'has not been forwarded since its last backward'}`);
    const n = batch * sizeOf(this.outShape);
    if (dy.length !== n) throw new RangeError(`LayerExecutor.backward: dy has ${dy.length} values, expected ${batch} × ${sizeOf(this.outShape)} = ${n}`);
    this.gpu.write(this.dy, dy);
    const b = this.backwardOf(s, batch);
    this.gpu.submit(b.dispatches);
    s.pending = 0;
    return this.readDx(b, batch);
  }

  /**
   * The range's last layer is the model's: forward, softmax cross-entropy against labels
   * ([batch] classes, or [batch, T] tokens for a language model) and backward, adding into the
   * gradient sum. Returns the mean loss of these rows and dL/dx (null on a range that starts at
   * the model's input).
   */
  async forwardBackwardLoss(x: Float32Array, labels: ArrayLike<number>, batch: number, opts: ForwardBackwardOptions = {}): Promise<{ loss: number; dx: Float32Array | null }> {
    if (!this.last) throw new Error(`LayerExecutor.forwardBackwardLoss: layers [${this.first}, ${this.end}) do not end the model; use forward and backward`);
    const mb = opts.mb ?? 0;
    const s = this.startForward(x, batch, mb, 'forwardBackwardLoss');
    const rows = batch * labelsPerExample(this.outShape);
    const classes = this.outShape[this.outShape.length - 1];
    if (labels.length !== rows) throw new RangeError(`LayerExecutor.forwardBackwardLoss: ${labels.length} labels, expected ${rows}`);
    const y = new Uint32Array(rows);
    for (let r = 0; r < rows; r++) {
      const label = labels[r];
      if (!Number.isInteger(label) || label < 0 || label >= classes) throw new RangeError(`LayerExecutor.forwardBackwardLoss: label ${r} is ${label}, expected an integer in [0, ${classes})`);
      y[r] = label;
    }
    this.gpu.write(this.labels!, y);
    const f = this.forwardOf(s, batch);
    const b = this.backwardOf(s, batch);
    this.gpu.submit([...f.dispatches, this.head(mb, f.y, rows, opts.gradRows ?? rows), ...b.dispatches]);
    s.pending = 0;
    // Both copies are queued before either wait, so a later call cannot overwrite them.
    const lossRows = this.gpu.read(this.lossRows!, rows);
    const dx = this.readDx(b, batch);
    let sum = 0;
    for (const v of await lossRows) sum += v;
    return { loss: sum / rows, dx: await dx };
  }

  /**
   * The whole model's data-parallel step: the gradient of the mean loss over the batch (and that
   * loss), with nothing summed from before.
   */
  async computeGradients(x: Float32Array, labels: ArrayLike<number>, batch: number): Promise<{ loss: number; grads: Float32Array }> {
    this.zeroGrads();
    const { loss } = await this.forwardBackwardLoss(x, labels, batch);
    return { loss, grads: await this.gradients() };
  }

  /** The range's output for x [batch, ...inShape] (logits on the last range), touching no micro-batch's stash. */
  async predict(x: Float32Array, batch: number): Promise<Float32Array> {
    this.checkInput(x, batch, 'predict');
    this.predictSlot ??= this.newSlot('predict');
    const s = this.predictSlot;
    this.gpu.write(s.x, x);
    const f = this.forwardOf(s, batch);
    this.gpu.submit(f.dispatches);
    return this.readBinding(f.y, batch * sizeOf(this.outShape));
  }

  /** Bytes of the parameter buffer (padded per tensor), and of every buffer this executor made. */
  get parameterBytes(): number {
    return this.params.size;
  }

  get allocatedBytes(): number {
    return this.owned.reduce((a, b) => a + b.size, 0) + this.prepared.reduce((a, d) => a + (d.uniforms?.size ?? 0), 0);
  }

  /** Frees every GPU buffer; the executor cannot be used afterwards. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const d of this.prepared) d.uniforms?.destroy();
    for (const b of this.owned) b.destroy();
    this.prepared = [];
    this.owned = [];
  }

  private alloc(floats: number, label: string): GPUBuffer {
    const b = this.gpu.buffer(floats * 4, `layers[${this.first},${this.end})/${label}`);
    this.owned.push(b);
    return b;
  }

  private live(): void {
    if (this.destroyed) throw new Error('LayerExecutor: used after destroy()');
  }

  private unpad(padded: Float32Array): Float32Array {
    const dense = new Float32Array(this.paramCount);
    for (const t of this.tensors) dense.set(padded.subarray(t.gpu, t.gpu + t.size), t.dense);
    return dense;
  }

  private newSlot(label: string): Slot {
    return { x: this.alloc(this.maxBatch * sizeOf(this.inShape), `${label}/x`), stash: this.chain.stash(label), pending: 0, forward: new Map(), backward: new Map() };
  }

  private slot(mb: number, what: string): Slot {
    this.live();
    if (!Number.isInteger(mb) || mb < 0 || mb >= this.maxMicroBatches) throw new RangeError(`LayerExecutor.${what}: micro-batch ${mb} is outside [0, maxMicroBatches ${this.maxMicroBatches})`);
    while (this.slots.length <= mb) this.slots.push(this.newSlot(`mb${this.slots.length}`));
    return this.slots[mb];
  }

  private checkInput(x: Float32Array, batch: number, what: string): void {
    this.live();
    if (!Number.isInteger(batch) || batch < 1 || batch > this.maxBatch) throw new RangeError(`LayerExecutor.${what}: batch ${batch} is outside [1, maxBatch ${this.maxBatch}]`);
    const n = batch * sizeOf(this.inShape);
    if (x.length !== n) throw new RangeError(`LayerExecutor.${what}: x has ${x.length} values, expected ${batch} × ${sizeOf(this.inShape)} = ${n}`);
    this.chain.checkInput?.(x, batch);
  }

  private startForward(x: Float32Array, batch: number, mb: number, what: string): Slot {
    this.checkInput(x, batch, what);
    const s = this.slot(mb, what);
    this.gpu.write(s.x, x);
    return s;
  }

  private forwardOf(s: Slot, batch: number): Forward {
    let f = s.forward.get(batch);
    if (!f) {
      f = this.chain.forward(s.stash, s.x, batch);
      this.prepared.push(...f.dispatches);
      s.forward.set(batch, f);
    }
    return f;
  }

  private backwardOf(s: Slot, batch: number): Backward {
    let b = s.backward.get(batch);
    if (!b) {
      this.forwardOf(s, batch); // the chain records each layer's input in its forward
      b = this.chain.backward(s.stash, s.x, this.dy, batch);
      this.prepared.push(...b.dispatches);
      s.backward.set(batch, b);
    }
    return b;
  }

  /** Loss rows and dL/dlogits (into dy) of the logits at y, scaled by 1 / gradRows. */
  private head(mb: number, logits: Binding, rows: number, gradRows: number): Dispatch {
    const key = `${mb}:${rows}:${gradRows}`;
    let d = this.heads.get(key);
    if (!d) {
      const classes = this.outShape[this.outShape.length - 1];
      d = softmaxCrossEntropy(this.gpu, { logits, labels: this.labels!, loss: this.lossRows!, dlogits: this.dy, rows, classes, gradRows });
      this.prepared.push(d);
      this.heads.set(key, d);
    }
    return d;
  }

  private readDx(b: Backward, batch: number): Promise<Float32Array | null> {
    return b.dx && this.first > 0 ? this.readBinding(b.dx, batch * sizeOf(this.inShape)) : Promise.resolve(null);
  }

  private readBinding(b: Binding, count: number): Promise<Float32Array> {
    return b instanceof GPUBuffer ? this.gpu.read(b, count) : this.gpu.read(b.buffer, count, (b.offset ?? 0) / 4);
  }
}
