// The webgpu backend of one pipeline stage: forward and backward of a contiguous group of dense
// layers on one micro-batch at a time, with the stage's parameter gradient accumulated on the GPU
// over a round (colSum and matmul with `accumulate`). It allocates its own layers' parameters and
// gradients, a stash of activations per micro-batch (as many as a round has used so far), and one
// set of backward scratch: nothing of the rest of the model. The schedule and the relaying of activations do not belong here (see
// ../worker/stage-backend.ts); the whole-model executor is ./mlp.ts, whose conventions it keeps.
//
// Shapes: m rows of a micro-batch (≤ maxMicroBatch), B = Σ m over the round. Stage layer i:
//   z_i = a_{i-1} · W_iᵀ   [m, C_{i+1}]   stashed per micro-batch (with a_{i-1}) for the backward
//   a_i = act(z_i + b_i)   [m, C_{i+1}]   no activation after the model's last layer
// Backward: dz_i = da_i ⊙ act'(z_i + b_i); dW_i += dz_iᵀ · a_{i-1}; db_i += Σ_m dz_i; da_{i-1} = dz_i · W_i.
//
// Dispatches are prepared the first time a micro-batch slot sees a row count, then reused: a
// round writes the input, submits once and reads the result back.
//
// @example
//   const stage = new GpuStage(gpu, partitionLayers(spec, 2)[0], 32, 4);
//   stage.setParams(params.subarray(stage.plan.paramOffset, stage.plan.paramOffset + stage.plan.paramCount));
//   stage.begin([32, 32]);
//   const y0 = await stage.forward(0, x0); // f32[32, plan.layers.at(-1)], to the next stage
import { biasAct, biasActBackward } from '../gpu/ops/bias-act.ts';
import { matmul } from '../gpu/ops/matmul.ts';
import { colSum } from '../gpu/ops/reduce.ts';
import { softmaxCrossEntropy } from '../gpu/ops/softmax-ce.ts';
import type { Binding, Dispatch, Gpu } from '../gpu/runtime.ts';
import { mlpLayout, type ParamLayout } from '../../shared/model.ts';
import type { Activation } from '../../shared/reference/bias-act.ts';
import { stageActivates, type StagePlan } from '../../shared/stage.ts';
import type { StageBackend } from '../worker/stage-backend.ts';

/** Every tensor starts at a multiple of 64 floats (256 bytes) so it can be bound as a range (as in ./mlp.ts). */
const ALIGN = 64;

/** What one micro-batch slot keeps between its forward and its backward. */
interface Slot {
  /** The stage's input [maxMicroBatch, C_0]. */
  x: GPUBuffer;
  /** Per layer z_i [maxMicroBatch, C_{i+1}]. */
  pre: GPUBuffer[];
  /** Per layer but the stage's last, a_i (the next layer's input). */
  out: GPUBuffer[];
  rows: number;
  state: 'idle' | 'forwarded' | 'done';
  /** Prepared dispatches by row count. */
  forward: Map<number, Dispatch[]>;
  backward: Map<number, Dispatch[]>;
}

export class GpuStage implements StageBackend {
  readonly plan: StagePlan;
  readonly maxMicroBatch: number;
  readonly maxMicroBatches: number;
  /** The stage's dense layout (what setParams takes) and its padded GPU layout, tensors named '0.weight', ... within the stage. */
  readonly layout: ParamLayout;
  readonly gpuLayout: ParamLayout;
  readonly params: GPUBuffer;
  readonly grads: GPUBuffer;
  private readonly acts: Activation[];
  /** Activation stash per micro-batch slot, grown by begin() up to maxMicroBatches. */
  private readonly slots: Slot[];
  /** The stage's last activations (logits on the last stage), read back per micro-batch [maxMicroBatch, out]. */
  private readonly y: GPUBuffer;
  /** Backward scratch, shared by the micro-batches (the queue runs them one after another). */
  private readonly dy: GPUBuffer;
  private readonly dz: (GPUBuffer | null)[];
  /** da_{i-1} per layer i: dL/d(input of layer i); index 0 is the stage's dx (null on the first stage). */
  private readonly dIn: (GPUBuffer | null)[];
  /** Last stage only: labels u32[maxMicroBatch], per-row loss [maxMicroBatch]. */
  private readonly labels: GPUBuffer | null;
  private readonly lossRows: GPUBuffer | null;
  /** Last stage only: softmax dispatches by row count, for the current round's B. */
  private readonly heads = new Map<number, Dispatch>();
  private headBatch = 0;
  private sizes: number[] = [];
  private batch = 0;
  private owned: GPUBuffer[] = [];
  private uniformBytes = 0;
  private disposed = false;

  constructor(
    readonly gpu: Gpu,
    plan: StagePlan,
    maxMicroBatch: number,
    maxMicroBatches: number,
  ) {
    for (const [name, v] of Object.entries({ maxMicroBatch, maxMicroBatches })) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`GpuStage: ${name} must be a positive integer, got ${v}`);
    }
    this.plan = { ...plan, layers: [...plan.layers] };
    this.maxMicroBatch = maxMicroBatch;
    this.maxMicroBatches = maxMicroBatches;
    const stageSpec = { layers: this.plan.layers, activation: this.plan.activation };
    this.layout = mlpLayout(stageSpec);
    this.gpuLayout = mlpLayout(stageSpec, ALIGN);
    if (this.layout.count !== plan.paramCount) {
      throw new RangeError(`GpuStage: widths ${JSON.stringify(plan.layers)} hold ${this.layout.count} parameters, the plan says ${plan.paramCount}`);
    }
    const n = this.depth;
    this.acts = Array.from({ length: n }, (_, i) => (stageActivates(this.plan, i) ? this.plan.activation : 'none'));
    const w = this.plan.layers;
    const rows = maxMicroBatch;

    this.params = this.alloc(this.gpuLayout.count * 4, 'stage-params');
    this.grads = this.alloc(this.gpuLayout.count * 4, 'stage-grads');
    this.slots = [];
    this.y = this.alloc(rows * w[n] * 4, 'stage-out');
    this.dy = this.alloc(rows * w[n] * 4, 'stage-dy');
    this.dz = this.acts.map((act, i) => (act === 'none' ? null : this.alloc(rows * w[i + 1] * 4, `dz${i}`)));
    this.dIn = Array.from({ length: n }, (_, i) => (i === 0 && this.plan.first ? null : this.alloc(rows * w[i] * 4, i === 0 ? 'stage-dx' : `da${i - 1}`)));
    this.labels = this.plan.last ? this.alloc(rows * 4, 'labels') : null;
    this.lossRows = this.plan.last ? this.alloc(rows * 4, 'loss-rows') : null;
  }

  /** A micro-batch slot's stash, [maxMicroBatch] rows; made when a round first needs it. */
  private newSlot(): Slot {
    const s = this.slots.length;
    const w = this.plan.layers;
    const rows = this.maxMicroBatch;
    return {
      x: this.alloc(rows * w[0] * 4, `mb${s}-x`),
      pre: Array.from({ length: this.depth }, (_, i) => this.alloc(rows * w[i + 1] * 4, `mb${s}-z${i}`)),
      out: Array.from({ length: this.depth - 1 }, (_, i) => this.alloc(rows * w[i + 1] * 4, `mb${s}-a${i}`)),
      rows: 0,
      state: 'idle',
      forward: new Map(),
      backward: new Map(),
    };
  }

  private get depth(): number {
    return this.plan.layers.length - 1;
  }

  /** Bytes of the GPU buffer holding the stage's parameters (padded per tensor). */
  get parameterBytes(): number {
    return this.params.size;
  }

  /** Bytes of every GPU buffer this stage created, uniforms included. */
  get allocatedBytes(): number {
    return this.owned.reduce((sum, b) => sum + b.size, 0) + this.uniformBytes;
  }

  setParams(params: Float32Array): void {
    this.live();
    if (params.length !== this.layout.count) throw new RangeError(`GpuStage.setParams: expected ${this.layout.count} parameters, got ${params.length}`);
    const padded = new Float32Array(this.gpuLayout.count);
    this.layout.tensors.forEach((t, i) => padded.set(params.subarray(t.offset, t.offset + t.size), this.gpuLayout.tensors[i].offset));
    this.gpu.write(this.params, padded);
  }

  begin(sizes: number[]): void {
    this.live();
    if (sizes.length < 1 || sizes.length > this.maxMicroBatches) {
      throw new RangeError(`GpuStage.begin: a round needs 1 to maxMicroBatches ${this.maxMicroBatches} micro-batches, got ${sizes.length}`);
    }
    sizes.forEach((m, i) => {
      if (!Number.isInteger(m) || m < 1 || m > this.maxMicroBatch) {
        throw new RangeError(`GpuStage.begin: micro-batch ${i} has ${m} rows, expected an integer in [1, maxMicroBatch ${this.maxMicroBatch}]`);
      }
    });
    this.sizes = [...sizes];
    this.batch = sizes.reduce((a, b) => a + b, 0);
    while (this.slots.length < sizes.length) this.slots.push(this.newSlot());
    for (const s of this.slots) s.state = 'idle';
    const encoder = this.gpu.device.createCommandEncoder({ label: 'stage-zero-grads' });
    encoder.clearBuffer(this.grads);
    this.gpu.device.queue.submit([encoder.finish()]);
  }

  async forward(mb: number, x: Float32Array): Promise<Float32Array> {
    if (this.plan.last) throw new Error(`GpuStage.forward: stage ${this.plan.index} is the last; use forwardBackwardLast`);
    const s = this.startForward(mb, x, 'forward');
    this.gpu.submit(this.forwardDispatches(s));
    return this.gpu.read(this.y, s.rows * this.plan.layers[this.depth]);
  }

  async forwardBackwardLast(mb: number, x: Float32Array, labels: ArrayLike<number>): Promise<{ loss: number; dx: Float32Array | null }> {
    if (!this.plan.last) throw new Error(`GpuStage.forwardBackwardLast: stage ${this.plan.index} is not the last; use forward`);
    const s = this.startForward(mb, x, 'forwardBackwardLast');
    const classes = this.plan.layers[this.depth];
    if (labels.length !== s.rows) throw new RangeError(`GpuStage.forwardBackwardLast: labels has ${labels.length} values, micro-batch ${mb} has ${s.rows} rows`);
    const y = new Uint32Array(s.rows);
    for (let r = 0; r < s.rows; r++) {
      const label = labels[r];
      if (!Number.isInteger(label) || label < 0 || label >= classes) {
        throw new RangeError(`GpuStage.forwardBackwardLast: label ${r} is ${label}, expected an integer in [0, ${classes})`);
      }
      y[r] = label;
    }
    this.gpu.write(this.labels!, y);
    this.gpu.submit([...this.forwardDispatches(s), this.head(s.rows), ...this.backwardDispatches(s)]);
    s.state = 'done';
    // Both copies are queued before either wait, so a concurrent call cannot overwrite them.
    const lossRows = this.gpu.read(this.lossRows!, s.rows);
    const dx = this.readDx(s.rows);
    let sum = 0;
    for (const v of await lossRows) sum += v;
    return { loss: sum / s.rows, dx: await dx };
  }

  async backward(mb: number, dy: Float32Array): Promise<Float32Array | null> {
    if (this.plan.last) throw new Error(`GpuStage.backward: stage ${this.plan.index} is the last; its backward runs in forwardBackwardLast`);
    const s = this.slot(mb, 'backward');
    if (s.state !== 'forwarded') throw new Error(`GpuStage.backward: micro-batch ${mb} ${s.state === 'done' ? 'has already been backpropagated' : 'has not been forwarded'} this round`);
    const out = this.plan.layers[this.depth];
    if (dy.length !== s.rows * out) throw new RangeError(`GpuStage.backward: dy has ${dy.length} values, expected ${s.rows} rows × ${out} = ${s.rows * out}`);
    this.gpu.write(this.dy, dy);
    this.gpu.submit(this.backwardDispatches(s));
    s.state = 'done';
    return this.readDx(s.rows);
  }

  async gradients(): Promise<Float32Array> {
    this.live();
    const padded = await this.gpu.read(this.grads, this.gpuLayout.count);
    const dense = new Float32Array(this.layout.count);
    this.gpuLayout.tensors.forEach((t, i) => dense.set(padded.subarray(t.offset, t.offset + t.size), this.layout.tensors[i].offset));
    return dense;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const s of this.slots) {
      for (const d of [...s.forward.values(), ...s.backward.values()].flat()) d.uniforms?.destroy();
    }
    for (const d of this.heads.values()) d.uniforms?.destroy();
    for (const b of this.owned) b.destroy();
    this.owned = [];
  }

  private alloc(bytes: number, label: string): GPUBuffer {
    const b = this.gpu.buffer(bytes, `stage${this.plan.index}-${label}`);
    this.owned.push(b);
    return b;
  }

  /** Counts the uniform buffers of freshly prepared dispatches into allocatedBytes. */
  private prepared(dispatches: Dispatch[]): Dispatch[] {
    for (const d of dispatches) this.uniformBytes += d.uniforms?.size ?? 0;
    return dispatches;
  }

  /** Tensor `t` of the padded layout (2i: W_i [cout, cin], 2i + 1: b_i [cout]) as a binding range. */
  private range(buf: GPUBuffer, t: number): GPUBufferBinding {
    const tensor = this.gpuLayout.tensors[t];
    return { buffer: buf, offset: tensor.offset * 4, size: tensor.size * 4 };
  }

  private live(): void {
    if (this.disposed) throw new Error('GpuStage: used after dispose()');
  }

  private slot(mb: number, what: string): Slot {
    this.live();
    if (!Number.isInteger(mb) || mb < 0 || mb >= this.sizes.length) {
      throw new RangeError(`GpuStage.${what}: micro-batch ${mb} is not one of this round's ${this.sizes.length} (call begin first)`);
    }
    return this.slots[mb];
  }

  /** Checks x and writes it into micro-batch mb's slot. */
  private startForward(mb: number, x: Float32Array, what: string): Slot {
    const s = this.slot(mb, what);
    if (s.state !== 'idle') throw new Error(`GpuStage.${what}: micro-batch ${mb} has already been forwarded this round`);
    const m = this.sizes[mb];
    const features = this.plan.layers[0];
    if (x.length !== m * features) throw new RangeError(`GpuStage.${what}: x has ${x.length} values, expected ${m} rows × ${features} = ${m * features}`);
    s.rows = m;
    this.gpu.write(s.x, x);
    s.state = 'forwarded';
    return s;
  }

  private forwardDispatches(s: Slot): Dispatch[] {
    const m = s.rows;
    let list = s.forward.get(m);
    if (list) return list;
    const { gpu } = this;
    const w = this.plan.layers;
    list = [];
    let input: Binding = s.x;
    for (let i = 0; i < this.depth; i++) {
      const output = i === this.depth - 1 ? this.y : s.out[i];
      list.push(matmul(gpu, { a: input, b: this.range(this.params, 2 * i), c: s.pre[i], m, n: w[i + 1], k: w[i], transB: true }));
      list.push(biasAct(gpu, { x: s.pre[i], bias: this.range(this.params, 2 * i + 1), y: output, rows: m, cols: w[i + 1], act: this.acts[i] }));
      input = output;
    }
    s.forward.set(m, this.prepared(list));
    return list;
  }

  /** Last stage: loss rows and dlogits (into dy) of the logits in y, scaled by 1 / B. */
  private head(m: number): Dispatch {
    if (this.headBatch !== this.batch) {
      for (const d of this.heads.values()) d.uniforms?.destroy();
      this.uniformBytes -= [...this.heads.values()].reduce((sum, d) => sum + (d.uniforms?.size ?? 0), 0);
      this.heads.clear();
      this.headBatch = this.batch;
    }
    let d = this.heads.get(m);
    if (!d) {
      const classes = this.plan.layers[this.depth];
      d = softmaxCrossEntropy(this.gpu, { logits: this.y, labels: this.labels!, loss: this.lossRows!, dlogits: this.dy, rows: m, classes, gradRows: this.batch });
      this.heads.set(m, this.prepared([d])[0]);
    }
    return d;
  }

  /** From dL/d(stage output) in dy down to the stage's dx, adding into grads. */
  private backwardDispatches(s: Slot): Dispatch[] {
    const m = s.rows;
    let list = s.backward.get(m);
    if (list) return list;
    const { gpu } = this;
    const w = this.plan.layers;
    list = [];
    let dOut: GPUBuffer = this.dy;
    for (let i = this.depth - 1; i >= 0; i--) {
      const [cin, cout] = [w[i], w[i + 1]];
      const bias = this.range(this.params, 2 * i + 1);
      let dz = dOut;
      const scratch = this.dz[i];
      if (scratch) {
        list.push(biasActBackward(gpu, { x: s.pre[i], bias, dy: dOut, dx: scratch, rows: m, cols: cout, act: this.acts[i] }));
        dz = scratch;
      }
      const input = i === 0 ? s.x : s.out[i - 1];
      list.push(matmul(gpu, { a: dz, b: input, c: this.range(this.grads, 2 * i), m: cout, n: cin, k: m, transA: true, accumulate: true }));
      list.push(colSum(gpu, { x: dz, out: this.range(this.grads, 2 * i + 1), rows: m, cols: cout, accumulate: true }));
      const dIn = this.dIn[i];
      if (dIn) {
        list.push(matmul(gpu, { a: dz, b: this.range(this.params, 2 * i), c: dIn, m, n: cin, k: cout }));
        dOut = dIn;
      }
    }
    s.backward.set(m, this.prepared(list));
    return list;
  }

  private readDx(rows: number): Promise<Float32Array | null> {
    const dx = this.dIn[0];
    return dx ? this.gpu.read(dx, rows * this.plan.layers[0]) : Promise.resolve(null);
  }
}
