// The cpu backend of one pipeline stage: forward and backward of a contiguous group of dense
// layers on one micro-batch at a time, accumulating the stage's parameter gradient over a round.
// Same maths as the whole-model CpuMlp (./mlp-cpu.ts), whose bias/activation and softmax loops it
// reuses, on the stage's slice of the parameters only. Pure TS: no DOM, no Node APIs. The schedule
// and the relaying of activations do not belong here (see ../worker/stage-backend.ts).
//
// Shapes: m rows of a micro-batch (≤ maxMicroBatch), B = Σ m over the round. Stage layer i:
//   h_i = a_{i-1} · W_iᵀ + b_i   [m, C_{i+1}]   kept per micro-batch for the backward
//   a_i = act(h_i)               [m, C_{i+1}]   no activation after the model's last layer
// Backward: dz_i = da_i ⊙ act'(h_i); dW_i += dz_iᵀ · a_{i-1}; db_i += Σ_m dz_i; da_{i-1} = dz_i · W_i.
//
// @example
//   const [s0, s1] = partitionLayers(spec, 2).map((plan) => new CpuStage(plan, 32));
//   s0.setParams(params.subarray(s0.plan.paramOffset, s0.plan.paramOffset + s0.plan.paramCount)); // and s1
//   s0.begin([32]); s1.begin([32]);
//   const { loss, dx } = await s1.forwardBackwardLast(0, await s0.forward(0, x), labels);
//   await s0.backward(0, dx!);
//   const grads = [await s0.gradients(), await s1.gradients()]; // the model's gradient, cut in two
import type { StagePlan } from '../../shared/stage.ts';
import type { Activation } from '../../shared/reference/bias-act.ts';
import type { StageBackend } from '../worker/stage-backend.ts';
import { gemmNT, gemmTN, transpose } from '../../shared/cpu/gemm.ts';
import { biasActivate, biasActivateBackward, softmaxCrossEntropyRows } from './mlp-cpu.ts';
import { stageActivates } from '../../shared/stage.ts';

/** One dense layer of the stage: views into the stage's flat vectors, fixed at construction. */
interface Layer {
  cin: number;
  cout: number;
  act: Activation;
  /** W [cout, cin] and b [cout]: views into params; dW and db: views into grads. */
  w: Float32Array;
  b: Float32Array;
  gw: Float32Array;
  gb: Float32Array;
  /** Wᵀ [cin, cout] for the input gradient; refreshed after setParams. */
  wt: Float32Array;
  wtFresh: boolean;
}

/** What the backward of one micro-batch needs from its forward. */
interface Stash {
  rows: number;
  state: 'idle' | 'forwarded' | 'done';
  /** The stage's input, [maxMicroBatch, C_0]. */
  x: Float32Array;
  /** Per layer h_i = z_i + b_i, [maxMicroBatch, C_{i+1}]. */
  pre: Float32Array[];
  /** Per layer but the stage's last, a_i = act(h_i) (the next layer's input); the last's is sent on. */
  out: Float32Array[];
}

export class CpuStage implements StageBackend {
  readonly plan: StagePlan;
  readonly maxMicroBatch: number;
  private readonly params: Float32Array;
  private readonly grads: Float32Array;
  private readonly layers: Layer[];
  private readonly stash: Stash[] = [];
  private sizes: number[] = [];
  private batch = 0;
  /** Ping-pong buffers of da / dz, [maxMicroBatch, widest layer output]. */
  private readonly dPing: Float32Array;
  private readonly dPong: Float32Array;
  /** One micro-batch's dW before it is added to the round's, [largest cout × cin]. */
  private readonly dwScratch: Float32Array;
  private readonly colSum: Float64Array;
  private bytes = 0;
  private disposed = false;

  constructor(plan: StagePlan, maxMicroBatch: number) {
    if (!Number.isInteger(maxMicroBatch) || maxMicroBatch < 1) throw new RangeError(`CpuStage: maxMicroBatch must be a positive integer, got ${maxMicroBatch}`);
    if (plan.layers.length < 2) throw new RangeError(`CpuStage: a stage needs at least one dense layer, got widths ${JSON.stringify(plan.layers)}`);
    this.plan = { ...plan, layers: [...plan.layers] };
    this.maxMicroBatch = maxMicroBatch;
    const widths = this.plan.layers;
    const count = widths.slice(1).reduce((sum, cout, i) => sum + cout * widths[i] + cout, 0);
    if (count !== plan.paramCount) throw new RangeError(`CpuStage: widths ${JSON.stringify(widths)} hold ${count} parameters, the plan says ${plan.paramCount}`);
    this.params = this.f32(count);
    this.grads = this.f32(count);
    this.layers = [];
    let offset = 0;
    for (let i = 0; i + 1 < widths.length; i++) {
      const [cin, cout] = [widths[i], widths[i + 1]];
      const wEnd = offset + cout * cin;
      this.layers.push({
        cin,
        cout,
        act: stageActivates(this.plan, i) ? this.plan.activation : 'none',
        w: this.params.subarray(offset, wEnd),
        b: this.params.subarray(wEnd, wEnd + cout),
        gw: this.grads.subarray(offset, wEnd),
        gb: this.grads.subarray(wEnd, wEnd + cout),
        wt: this.f32(cin * cout),
        wtFresh: false,
      });
      offset = wEnd + cout;
    }
    const maxOut = Math.max(...widths.slice(1));
    this.dPing = this.f32(maxMicroBatch * maxOut);
    this.dPong = this.f32(maxMicroBatch * maxOut);
    this.dwScratch = this.f32(Math.max(...this.layers.map((l) => l.cin * l.cout)));
    this.colSum = new Float64Array(maxOut);
    this.bytes += this.colSum.byteLength;
  }

  get parameterBytes(): number {
    return this.params.byteLength;
  }

  get allocatedBytes(): number {
    return this.bytes;
  }

  setParams(params: Float32Array): void {
    this.live();
    if (params.length !== this.plan.paramCount) throw new RangeError(`CpuStage.setParams: expected ${this.plan.paramCount} parameters, got ${params.length}`);
    this.params.set(params);
    for (const layer of this.layers) layer.wtFresh = false;
  }

  begin(sizes: number[]): void {
    this.live();
    if (sizes.length < 1) throw new RangeError('CpuStage.begin: a round needs at least one micro-batch');
    sizes.forEach((m, i) => {
      if (!Number.isInteger(m) || m < 1 || m > this.maxMicroBatch) {
        throw new RangeError(`CpuStage.begin: micro-batch ${i} has ${m} rows, expected an integer in [1, maxMicroBatch ${this.maxMicroBatch}]`);
      }
    });
    this.sizes = [...sizes];
    this.batch = sizes.reduce((a, b) => a + b, 0);
    while (this.stash.length < sizes.length) this.stash.push(this.newStash());
    for (const s of this.stash) s.state = 'idle';
    this.grads.fill(0);
  }

  async forward(mb: number, x: Float32Array): Promise<Float32Array> {
    if (this.plan.last) throw new Error(`CpuStage.forward: stage ${this.plan.index} is the last; use forwardBackwardLast`);
    const s = this.forwardInto(mb, x, 'forward');
    // The stage's last layer writes its activations straight into the array that is sent on.
    const last = this.layers[this.layers.length - 1];
    const y = new Float32Array(s.rows * last.cout);
    biasActivate(s.pre[this.layers.length - 1], y, last.b, s.rows, last.cout, last.act);
    return y;
  }

  async forwardBackwardLast(mb: number, x: Float32Array, labels: ArrayLike<number>): Promise<{ loss: number; dx: Float32Array | null }> {
    if (!this.plan.last) throw new Error(`CpuStage.forwardBackwardLast: stage ${this.plan.index} is not the last; use forward`);
    const s = this.forwardInto(mb, x, 'forwardBackwardLast');
    const last = this.layers[this.layers.length - 1];
    const classes = last.cout;
    if (labels.length !== s.rows) throw new RangeError(`CpuStage.forwardBackwardLast: labels has ${labels.length} values, micro-batch ${mb} has ${s.rows} rows`);
    for (let r = 0; r < s.rows; r++) {
      const y = labels[r];
      if (!Number.isInteger(y) || y < 0 || y >= classes) throw new RangeError(`CpuStage.forwardBackwardLast: label ${r} is ${y}, expected an integer in [0, ${classes})`);
    }
    const logits = s.pre[this.layers.length - 1];
    biasActivate(logits, logits, last.b, s.rows, classes, 'none');
    const loss = softmaxCrossEntropyRows(logits, labels, s.rows, classes, this.dPing, this.batch);
    return { loss, dx: this.backwardFrom(s) };
  }

  async backward(mb: number, dy: Float32Array): Promise<Float32Array | null> {
    if (this.plan.last) throw new Error(`CpuStage.backward: stage ${this.plan.index} is the last; its backward runs in forwardBackwardLast`);
    const s = this.slot(mb, 'backward');
    if (s.state !== 'forwarded') throw new Error(`CpuStage.backward: micro-batch ${mb} ${s.state === 'done' ? 'has already been backpropagated' : 'has not been forwarded'} this round`);
    const out = this.plan.layers[this.plan.layers.length - 1];
    if (dy.length !== s.rows * out) throw new RangeError(`CpuStage.backward: dy has ${dy.length} values, expected ${s.rows} rows × ${out} = ${s.rows * out}`);
    this.dPing.set(dy);
    return this.backwardFrom(s);
  }

  async gradients(): Promise<Float32Array> {
    this.live();
    return this.grads.slice();
  }

  dispose(): void {
    this.disposed = true;
    this.stash.length = 0;
  }

  private f32(length: number): Float32Array {
    this.bytes += length * 4;
    return new Float32Array(length);
  }

  private newStash(): Stash {
    const m = this.maxMicroBatch;
    const n = this.layers.length;
    return {
      rows: 0,
      state: 'idle',
      x: this.f32(m * this.plan.layers[0]),
      pre: this.layers.map((l) => this.f32(m * l.cout)),
      out: this.layers.slice(0, n - 1).map((l) => this.f32(m * l.cout)),
    };
  }

  private live(): void {
    if (this.disposed) throw new Error('CpuStage: used after dispose()');
  }

  private slot(mb: number, what: string): Stash {
    this.live();
    if (!Number.isInteger(mb) || mb < 0 || mb >= this.sizes.length) {
      throw new RangeError(`CpuStage.${what}: micro-batch ${mb} is not one of this round's ${this.sizes.length} (call begin first)`);
    }
    return this.stash[mb];
  }

  /** Copies x in and runs every layer; leaves the stage's last layer at h (pre), not activated. */
  private forwardInto(mb: number, x: Float32Array, what: string): Stash {
    const s = this.slot(mb, what);
    if (s.state !== 'idle') throw new Error(`CpuStage.${what}: micro-batch ${mb} has already been forwarded this round`);
    const m = this.sizes[mb];
    const cin0 = this.plan.layers[0];
    if (x.length !== m * cin0) throw new RangeError(`CpuStage.${what}: x has ${x.length} values, expected ${m} rows × ${cin0} = ${m * cin0}`);
    s.rows = m;
    s.x.set(x);
    let input = s.x;
    const n = this.layers.length;
    for (let i = 0; i < n; i++) {
      const layer = this.layers[i];
      gemmNT(input, layer.w, s.pre[i], m, layer.cout, layer.cin);
      if (i < n - 1) {
        biasActivate(s.pre[i], s.out[i], layer.b, m, layer.cout, layer.act);
        input = s.out[i];
      }
    }
    s.state = 'forwarded';
    return s;
  }

  /**
   * The backward of micro-batch s with dL/da of the stage's last layer in dPing (da of the
   * logits on the last stage, whose h already holds the bias). Adds to grads; returns dL/dx.
   */
  private backwardFrom(s: Stash): Float32Array | null {
    const m = s.rows;
    let dOut = this.dPing;
    let dNext = this.dPong;
    let dx: Float32Array | null = null;
    const lastIndex = this.layers.length - 1;
    for (let i = lastIndex; i >= 0; i--) {
      const layer = this.layers[i];
      const { cin, cout } = layer;
      // dz = da ⊙ act'(h) in place (every layer's h holds its bias by now), and db += Σ_m dz.
      biasActivateBackward(dOut, s.pre[i], m, cout, layer.act, this.colSum);
      for (let c = 0; c < cout; c++) layer.gb[c] += this.colSum[c];
      const input = i === 0 ? s.x : s.out[i - 1];
      gemmTN(dOut, input, this.dwScratch, cout, cin, m);
      const gw = layer.gw;
      for (let j = 0; j < gw.length; j++) gw[j] += this.dwScratch[j];

      if (i === 0 && this.plan.first) break;
      if (!layer.wtFresh) {
        transpose(layer.w, layer.wt, cout, cin);
        layer.wtFresh = true;
      }
      // da_{i-1} [m, cin] = dz [m, cout] · W [cout, cin] = dz · (Wᵀ)ᵀ.
      const into = i === 0 ? (dx = new Float32Array(m * cin)) : dNext;
      gemmNT(dOut, layer.wt, into, m, cin, cout);
      const swap = dOut;
      dOut = dNext;
      dNext = swap;
    }
    s.state = 'done';
    return dx;
  }
}
