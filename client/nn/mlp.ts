// The MLP executor: forward, backward and optimizer step of a dense network on the GPU.
// Every dispatch of a step is prepared once at construction; a step only writes two small
// uniforms and submits. Data loading, scheduling and UI do not belong here.
//
// Shapes: B batch, C_l width of layer l (C_0 input, C_L classes). Per dense layer l:
//   z_l = a_{l-1} · W_lᵀ       [B, C_l]   (W_l is [C_l, C_{l-1}], PyTorch nn.Linear layout)
//   a_l = act(z_l + b_l)        [B, C_l]   (no activation on the last layer: a_L are the logits)
// Backward: dz_l = da_l ⊙ act'(z_l + b_l); dW_l = dz_lᵀ · a_{l-1}; db_l = Σ_B dz_l; da_{l-1} = dz_l · W_l.
import type { Activation } from '../gpu/ops/bias-act.ts';
import { biasAct, biasActBackward } from '../gpu/ops/bias-act.ts';
import { gather, gatherParams, packBytes } from '../gpu/ops/gather.ts';
import { matmul } from '../gpu/ops/matmul.ts';
import { optimizerStateCount, optimizerStep, setOptimizerStep, type OptimizerConfig } from '../gpu/ops/optimizer.ts';
import { colSum, reduce } from '../gpu/ops/reduce.ts';
import { softmaxCrossEntropy } from '../gpu/ops/softmax-ce.ts';
import type { Binding, Dispatch, Gpu } from '../gpu/runtime.ts';
import type { Dataset } from '../../shared/dataset.ts';
import { initMlpParams, mlpDepth, mlpLayout, type MlpSpec, type ParamLayout } from '../../shared/model.ts';
import { argmaxRows } from '../../shared/reference/mlp.ts';

/** Every tensor starts at a multiple of 64 floats (256 bytes) so it can be bound as a range. */
const ALIGN = 64;

export interface MlpExecutorOptions {
  spec: MlpSpec;
  /** Examples per training step. */
  batch: number;
  optimizer: OptimizerConfig;
  /** Seed of the parameter initialisation. */
  seed?: number;
  /** Batch of the evaluation forward pass (default 500). */
  evalBatch?: number;
}

/** Activations and dispatches of one forward pass at a fixed batch size. */
interface ForwardPlan {
  batch: number;
  x: GPUBuffer;
  y: GPUBuffer;
  pre: GPUBuffer[];
  out: GPUBuffer[];
  dispatches: Dispatch[];
}

export interface Evaluation {
  loss: number;
  accuracy: number;
  count: number;
}

export class MlpExecutor {
  readonly spec: MlpSpec;
  readonly batch: number;
  readonly depth: number;
  /** Dense (wire) and padded (GPU) layouts of the same parameters. */
  readonly layout: ParamLayout;
  readonly gpuLayout: ParamLayout;
  optimizer: OptimizerConfig;
  /** Optimizer steps taken (Adam's t). */
  steps = 0;

  readonly params: GPUBuffer;
  readonly grads: GPUBuffer;
  private readonly state: GPUBuffer[];
  private readonly train: ForwardPlan;
  private readonly backward: Dispatch[];
  private readonly optimize: Dispatch;
  private readonly lossRows: GPUBuffer;
  private readonly dlogits: GPUBuffer;
  /** Running sum of per-step mean losses since the last readLoss(). */
  private readonly lossSum: GPUBuffer;
  private lossSteps = 0;
  private readonly evalBatch: number;
  private evalPlan?: ForwardPlan;
  /** Every buffer this executor created, destroyed by destroy(). */
  private owned: GPUBuffer[] = [];
  private data?: { x: GPUBuffer; y: GPUBuffer; order: GPUBuffer; count: number; gather: Dispatch; cursor: number };

  constructor(
    readonly gpu: Gpu,
    opts: MlpExecutorOptions,
  ) {
    this.spec = opts.spec;
    this.batch = opts.batch;
    this.depth = mlpDepth(opts.spec);
    this.optimizer = opts.optimizer;
    this.evalBatch = opts.evalBatch ?? 500;
    this.layout = mlpLayout(opts.spec);
    this.gpuLayout = mlpLayout(opts.spec, ALIGN);
    const bytes = this.gpuLayout.count * 4;
    this.params = this.alloc(bytes, 'params');
    this.grads = this.alloc(bytes, 'grads');
    this.state = Array.from({ length: optimizerStateCount(opts.optimizer.kind) }, (_, i) => this.alloc(bytes, `optimizer-state-${i}`));
    this.setParams(initMlpParams(opts.spec, opts.seed ?? 0));

    this.train = this.planForward(this.batch);
    const classes = this.spec.layers[this.depth];
    this.lossRows = this.alloc(this.batch * 4, 'loss-rows');
    this.dlogits = this.alloc(this.batch * classes * 4, 'dlogits');
    this.lossSum = this.alloc(4, 'loss-sum');
    this.backward = this.planBackward();
    this.optimize = optimizerStep(gpu, {
      params: this.params,
      grads: this.grads,
      m: this.state[0],
      v: this.state[1],
      count: this.gpuLayout.count,
      config: this.optimizer,
    });
  }

  private alloc(bytes: number, label: string): GPUBuffer {
    const b = this.gpu.buffer(bytes, label);
    this.owned.push(b);
    return b;
  }

  /** A tensor of the padded GPU layout as a binding range of `buf`. */
  private range(buf: GPUBuffer, tensor: number): GPUBufferBinding {
    const t = this.gpuLayout.tensors[tensor];
    return { buffer: buf, offset: t.offset * 4, size: t.size * 4 };
  }

  private planForward(batch: number): ForwardPlan {
    const { gpu, spec } = this;
    const x = this.alloc(batch * spec.layers[0] * 4, `x[${batch}]`);
    const y = this.alloc(batch * 4, `labels[${batch}]`);
    const pre: GPUBuffer[] = [];
    const out: GPUBuffer[] = [];
    const dispatches: Dispatch[] = [];
    let input: Binding = x;
    for (let l = 0; l < this.depth; l++) {
      const [cin, cout] = [spec.layers[l], spec.layers[l + 1]];
      pre.push(this.alloc(batch * cout * 4, `z${l}[${batch}]`));
      out.push(this.alloc(batch * cout * 4, `a${l}[${batch}]`));
      dispatches.push(matmul(gpu, { a: input, b: this.range(this.params, 2 * l), c: pre[l], m: batch, n: cout, k: cin, transB: true }));
      dispatches.push(biasAct(gpu, { x: pre[l], bias: this.range(this.params, 2 * l + 1), y: out[l], rows: batch, cols: cout, act: this.activation(l) }));
      input = out[l];
    }
    return { batch, x, y, pre, out, dispatches };
  }

  private activation(layer: number): Activation {
    return layer === this.depth - 1 ? 'none' : this.spec.activation;
  }

  private planBackward(): Dispatch[] {
    const { gpu, spec, train } = this;
    const B = this.batch;
    const classes = spec.layers[this.depth];
    const d: Dispatch[] = [
      softmaxCrossEntropy(gpu, { logits: train.out[this.depth - 1], labels: train.y, loss: this.lossRows, dlogits: this.dlogits, rows: B, classes }),
      reduce(gpu, { x: this.lossRows, out: this.lossSum, rows: 1, cols: B, op: 'mean', accumulate: true }),
    ];
    // dOut holds dL/da_l for the layer being processed; dz is dL/dz_l.
    let dOut: GPUBuffer = this.dlogits;
    for (let l = this.depth - 1; l >= 0; l--) {
      const [cin, cout] = [spec.layers[l], spec.layers[l + 1]];
      let dz = dOut;
      if (this.activation(l) !== 'none') {
        dz = this.alloc(B * cout * 4, `dz${l}`);
        d.push(biasActBackward(gpu, { x: train.pre[l], bias: this.range(this.params, 2 * l + 1), dy: dOut, dx: dz, rows: B, cols: cout, act: this.activation(l) }));
      }
      const input = l === 0 ? train.x : train.out[l - 1];
      d.push(matmul(gpu, { a: dz, b: input, c: this.range(this.grads, 2 * l), m: cout, n: cin, k: B, transA: true }));
      d.push(colSum(gpu, { x: dz, out: this.range(this.grads, 2 * l + 1), rows: B, cols: cout }));
      if (l > 0) {
        const dIn = this.alloc(B * cin * 4, `da${l - 1}`);
        d.push(matmul(gpu, { a: dz, b: this.range(this.params, 2 * l), c: dIn, m: B, n: cin, k: cout }));
        dOut = dIn;
      }
    }
    return d;
  }

  /** Writes parameters given in the dense documented order (see shared/model.ts). */
  setParams(dense: Float32Array): void {
    this.gpu.write(this.params, this.pad(dense));
  }

  /** Parameters in the dense documented order. */
  async getParams(): Promise<Float32Array> {
    return this.unpad(await this.gpu.read(this.params, this.gpuLayout.count));
  }

  /** Gradient of the mean loss of the last step, dense order. */
  async getGrads(): Promise<Float32Array> {
    return this.unpad(await this.gpu.read(this.grads, this.gpuLayout.count));
  }

  private pad(dense: Float32Array): Float32Array {
    if (dense.length !== this.layout.count) throw new RangeError(`expected ${this.layout.count} parameters, got ${dense.length}`);
    const out = new Float32Array(this.gpuLayout.count);
    this.layout.tensors.forEach((t, i) => out.set(dense.subarray(t.offset, t.offset + t.size), this.gpuLayout.tensors[i].offset));
    return out;
  }

  private unpad(padded: Float32Array): Float32Array {
    const out = new Float32Array(this.layout.count);
    this.gpuLayout.tensors.forEach((t, i) => out.set(padded.subarray(t.offset, t.offset + t.size), this.layout.tensors[i].offset));
    return out;
  }

  /** Puts a batch from the CPU in place: x [B, C_0] floats, labels [B]. */
  setBatch(x: Float32Array, labels: ArrayLike<number>): void {
    if (x.length !== this.batch * this.spec.layers[0]) throw new RangeError(`batch x must have ${this.batch}x${this.spec.layers[0]} values, got ${x.length}`);
    this.gpu.write(this.train.x, x);
    this.gpu.write(this.train.y, Uint32Array.from(labels));
  }

  /** Forward and backward on the batch in place: leaves the gradient in `grads`. */
  computeGradients(): void {
    this.gpu.submit([...this.train.dispatches, ...this.backward]);
    this.lossSteps++;
  }

  /** One optimizer step on the current gradient. */
  applyGradients(): void {
    this.steps++;
    setOptimizerStep(this.gpu, this.optimize, this.optimizer, this.steps);
    this.gpu.submit([this.optimize]);
  }

  /**
   * Keeps a whole dataset on the GPU (uint8, 1 byte a pixel), so that each step picks its batch
   * with a gather kernel instead of an upload. `order` is the example order; steps walk it.
   */
  useDataset(ds: Dataset, order: Uint32Array): void {
    if (ds.features !== this.spec.layers[0]) throw new RangeError(`dataset has ${ds.features} features, the model takes ${this.spec.layers[0]}`);
    this.releaseDataset();
    const x = this.gpu.upload(packBytes(ds.x), 'dataset-x');
    const y = this.gpu.upload(packBytes(ds.y), 'dataset-y');
    const orderBuf = this.gpu.upload(order, 'dataset-order');
    const g = gather(this.gpu, { data: x, labels: y, order: orderBuf, orderLength: order.length, x: this.train.x, y: this.train.y, batch: this.batch, features: ds.features, count: ds.count });
    this.data = { x, y, order: orderBuf, count: order.length, gather: g, cursor: 0 };
  }

  /** Replaces the example order (a new epoch's shuffle) and restarts from its beginning. */
  setOrder(order: Uint32Array): void {
    if (!this.data || order.length !== this.data.count) throw new RangeError('setOrder needs useDataset first, with an order of the same length');
    this.gpu.write(this.data.order, order);
    this.data.cursor = 0;
  }

  /** One full training step on the next batch of the GPU-resident dataset: one submit. */
  trainStep(): void {
    const data = this.data;
    if (!data) throw new Error('trainStep needs useDataset first');
    this.gpu.setUniforms(data.gather, gatherParams({ batch: this.batch, features: this.spec.layers[0], count: data.count, orderLength: data.count }, data.cursor));
    data.cursor = (data.cursor + this.batch) % data.count;
    this.steps++;
    setOptimizerStep(this.gpu, this.optimize, this.optimizer, this.steps);
    this.gpu.submit([data.gather, ...this.train.dispatches, ...this.backward, this.optimize]);
    this.lossSteps++;
  }

  /** Mean training loss over the steps since the last call (waits for the GPU). */
  async readLoss(): Promise<number> {
    const [sum] = await this.gpu.read(this.lossSum, 1);
    const n = this.lossSteps;
    this.gpu.write(this.lossSum, new Float32Array([0]));
    this.lossSteps = 0;
    return n ? sum / n : NaN;
  }

  /** Logits of `count` examples of a dataset: [count, classes]. */
  async predict(ds: Dataset, count = ds.count): Promise<Float32Array> {
    this.evalPlan ??= this.planForward(this.evalBatch);
    const plan = this.evalPlan;
    const classes = this.spec.layers[this.depth];
    const features = this.spec.layers[0];
    const logits = new Float32Array(count * classes);
    const x = new Float32Array(plan.batch * features);
    for (let start = 0; start < count; start += plan.batch) {
      const n = Math.min(plan.batch, count - start);
      const bytes = ds.x.subarray(start * features, (start + n) * features);
      x.fill(0);
      for (let i = 0; i < bytes.length; i++) x[i] = bytes[i] / 255;
      this.gpu.write(plan.x, x);
      this.gpu.submit(plan.dispatches);
      logits.set(await this.gpu.read(plan.out[this.depth - 1], n * classes), start * classes);
    }
    return logits;
  }

  /** Mean cross-entropy and accuracy on the first `count` examples of a dataset. */
  async evaluate(ds: Dataset, count = ds.count): Promise<Evaluation> {
    const classes = this.spec.layers[this.depth];
    const logits = await this.predict(ds, count);
    const pred = argmaxRows(logits, count, classes);
    let correct = 0;
    let loss = 0;
    for (let r = 0; r < count; r++) {
      if (pred[r] === ds.y[r]) correct++;
      let max = -Infinity;
      for (let c = 0; c < classes; c++) max = Math.max(max, logits[r * classes + c]);
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += Math.exp(logits[r * classes + c] - max);
      loss += Math.log(sum) + max - logits[r * classes + ds.y[r]];
    }
    return { loss: loss / count, accuracy: correct / count, count };
  }

  /** Bytes of GPU memory this executor allocated for parameters, gradients and optimizer state. */
  get parameterBytes(): number {
    return (2 + this.state.length) * this.gpuLayout.count * 4;
  }

  /** Frees every GPU buffer of this executor; it cannot be used afterwards. */
  destroy(): void {
    this.releaseDataset();
    const dispatches = [...this.train.dispatches, ...this.backward, this.optimize, ...(this.evalPlan?.dispatches ?? [])];
    for (const d of dispatches) d.uniforms?.destroy();
    for (const b of this.owned) b.destroy();
    this.owned = [];
  }

  private releaseDataset(): void {
    if (!this.data) return;
    this.data.x.destroy();
    this.data.y.destroy();
    this.data.order.destroy();
    this.data = undefined;
  }
}
