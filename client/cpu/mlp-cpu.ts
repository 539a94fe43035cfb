// The cpu backend's MLP: forward, backward and optimizer step of a dense network on Float32Arrays,
// for workers whose tab has no WebGPU or whose CPU beats a software GPU adapter. Same maths and
// parameter layout as the GPU executor (client/nn/mlp.ts) and the oracle (shared/reference/mlp.ts).
// Pure TS: no DOM, no Node APIs, so it runs in a tab, a Web Worker and Node. Data loading,
// scheduling, the wire codec and UI do not belong here; the kernels live in ./gemm.ts.
//
// Shapes: B batch (≤ maxBatch), C_l width of layer l (C_0 input, C_L = V classes). Dense layer l:
//   z_l = a_{l-1} · W_lᵀ       [B, C_l]    W_l: [C_l, C_{l-1}] (PyTorch nn.Linear), a_{-1} = x
//   h_l = z_l + b_l             [B, C_l]    kept for the backward
//   a_l = act(h_l)              [B, C_l]    no activation on the last layer: a_L are the logits
// Backward of the mean softmax cross-entropy:
//   dz_l = da_l ⊙ act'(h_l);  dW_l = dz_lᵀ · a_{l-1};  db_l = Σ_B dz_l;  da_{l-1} = dz_l · W_l
// (da_{-1}, the gradient of the input, is never computed).
//
// Speed: every buffer is allocated by the constructor; a step allocates no arrays. A layer whose
// input is mostly zeros (MNIST pixels, relu outputs) multiplies only the nonzeros; others use the
// register-blocked dense kernels. Both give the same values to float32 rounding.
//
// @example
//   const mlp = new CpuMlp({ layers: [784, 128, 10], activation: 'relu' }, 64);
//   mlp.setParams(initMlpParams(mlp.spec, 1));
//   const { loss, grads } = mlp.computeGradients(x, labels, 64); // x: f32[64, 784], labels: [64]
//   mlp.step(grads, { kind: 'adam', lr: 1e-3 }, ++t);
import { mlpDepth, mlpLayout, validateMlpSpec, type MlpSpec, type ParamLayout } from '../../shared/model.ts';
import { GELU_A, GELU_K, GELU_SATURATION, type Activation } from '../../shared/reference/bias-act.ts';
import { optimizerScalars, optimizerStepRef, type OptimizerConfig, type OptimizerScalars } from '../../shared/reference/optimizer.ts';
import { gemmNT, gemmTN, SparseRows, spmm, transpose } from '../../shared/cpu/gemm.ts';

export interface CpuMlpOptions {
  /**
   * A matrix with fewer than this fraction of nonzeros is multiplied as sparse (default 0.5, where
   * the sparse kernel still wins on MNIST-sized layers). 0 forces the dense kernels, 1.01 the sparse.
   */
  sparseBelow?: number;
}

export interface CpuGradients {
  /** Mean softmax cross-entropy over the batch. */
  loss: number;
  /** Gradient of the mean loss, dense layout (mlpLayout(spec)): an internal buffer, overwritten by the next computeGradients. */
  grads: Float32Array;
}

/** One dense layer's views into the flat vectors and its scratch, all fixed at construction. */
interface Layer {
  cin: number;
  cout: number;
  act: Activation;
  /** W [cout, cin] and b [cout]: views into params. */
  w: Float32Array;
  b: Float32Array;
  /** dW and db: views into grads. */
  gw: Float32Array;
  gb: Float32Array;
  /** Wᵀ [cin, cout], for the sparse forward; refreshed when the parameters change. */
  wt: Float32Array;
  wtFresh: boolean;
  /** h = z + b and a = act(h), [maxBatch, cout]; one array when act is 'none'. */
  pre: Float32Array;
  out: Float32Array;
  /** Whether the last forward multiplied this layer's input as sparse, and its nonzeros if so. */
  sparseInput: boolean;
  inputRows: SparseRows;
}

export class CpuMlp {
  readonly spec: MlpSpec;
  readonly maxBatch: number;
  readonly depth: number;
  /** The dense wire layout of params and grads. */
  readonly layout: ParamLayout;
  private readonly sparseBelow: number;
  private readonly params: Float32Array;
  private readonly grads: Float32Array;
  /** Optimizer state (m, v), enough for every kind; reset by t = 1 as in optimizerStepRef. */
  private readonly m: Float32Array;
  private readonly v: Float32Array;
  private readonly layers: Layer[];
  /** Ping-pong buffers of da / dz, [maxBatch, max C_l for l ≥ 1]. */
  private readonly dPing: Float32Array;
  private readonly dPong: Float32Array;
  /** Column sums of dz in float64, [max C_l]. */
  private readonly colSum: Float64Array;
  /** Nonzeros of an input transposed (for dW), and of dz (for da). */
  private readonly sparseCols: SparseRows;
  private readonly dzRows: SparseRows;

  constructor(spec: MlpSpec, maxBatch: number, options: CpuMlpOptions = {}) {
    validateMlpSpec(spec);
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`CpuMlp: maxBatch must be a positive integer, got ${maxBatch}`);
    this.spec = { layers: [...spec.layers], activation: spec.activation };
    this.maxBatch = maxBatch;
    this.depth = mlpDepth(spec);
    this.layout = mlpLayout(spec);
    this.sparseBelow = options.sparseBelow ?? 0.5;
    const count = this.layout.count;
    this.params = new Float32Array(count);
    this.grads = new Float32Array(count);
    this.m = new Float32Array(count);
    this.v = new Float32Array(count);

    const widths = spec.layers;
    const maxOut = Math.max(...widths.slice(1));
    const maxIn = Math.max(...widths.slice(0, -1));
    this.layers = [];
    for (let l = 0; l < this.depth; l++) {
      const [cin, cout] = [widths[l], widths[l + 1]];
      const wT = this.layout.tensors[2 * l];
      const bT = this.layout.tensors[2 * l + 1];
      const act: Activation = l === this.depth - 1 ? 'none' : spec.activation;
      const pre = new Float32Array(maxBatch * cout);
      this.layers.push({
        cin,
        cout,
        act,
        w: this.params.subarray(wT.offset, wT.offset + wT.size),
        b: this.params.subarray(bT.offset, bT.offset + bT.size),
        gw: this.grads.subarray(wT.offset, wT.offset + wT.size),
        gb: this.grads.subarray(bT.offset, bT.offset + bT.size),
        wt: new Float32Array(cin * cout),
        wtFresh: false,
        pre,
        out: act === 'none' ? pre : new Float32Array(maxBatch * cout),
        sparseInput: false,
        inputRows: new SparseRows(maxBatch, maxBatch * cin),
      });
    }
    this.dPing = new Float32Array(maxBatch * maxOut);
    this.dPong = new Float32Array(maxBatch * maxOut);
    this.colSum = new Float64Array(maxOut);
    this.sparseCols = new SparseRows(maxIn, maxBatch * maxIn);
    this.dzRows = new SparseRows(maxBatch, maxBatch * maxOut);
  }

  /** Copies in parameters in the dense layout of shared/model.ts (f32[N]). */
  setParams(dense: Float32Array): void {
    if (dense.length !== this.layout.count) throw new RangeError(`CpuMlp.setParams: expected ${this.layout.count} parameters, got ${dense.length}`);
    this.params.set(dense);
    this.staleTransposes();
  }

  /** A copy of the parameters, dense layout. */
  getParams(): Float32Array {
    return this.params.slice();
  }

  /**
   * Mean softmax cross-entropy of the batch and its gradient, like MlpExecutor.computeGradients +
   * getGrads. x: f32[B, C_0], labels: [B] integers in [0, V). The returned grads array is an
   * internal buffer that the next call overwrites: copy it to keep it.
   */
  computeGradients(x: Float32Array, labels: ArrayLike<number>, batch: number): CpuGradients {
    this.checkBatch('computeGradients', x, batch);
    if (labels.length !== batch) throw new RangeError(`CpuMlp.computeGradients: labels has ${labels.length} values, expected batch ${batch}`);
    const classes = this.spec.layers[this.depth];
    for (let r = 0; r < batch; r++) {
      const y = labels[r];
      if (!Number.isInteger(y) || y < 0 || y >= classes) throw new RangeError(`CpuMlp.computeGradients: label ${r} is ${y}, expected an integer in [0, ${classes})`);
    }
    this.forward(x, batch);
    const loss = softmaxCrossEntropyRows(this.layers[this.depth - 1].out, labels, batch, classes, this.dPing, batch);
    this.backward(x, batch);
    return { loss, grads: this.grads };
  }

  /** Logits of n examples: x f32[n, C_0] -> f32[n, V] (a new array; n may exceed maxBatch). */
  predict(x: Float32Array, n: number): Float32Array {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`CpuMlp.predict: n must be a non-negative integer, got ${n}`);
    const features = this.spec.layers[0];
    if (x.length !== n * features) throw new RangeError(`CpuMlp.predict: x has ${x.length} values, expected n ${n} × ${features} features = ${n * features}`);
    const classes = this.spec.layers[this.depth];
    const logits = new Float32Array(n * classes);
    const last = this.layers[this.depth - 1];
    for (let start = 0; start < n; start += this.maxBatch) {
      const rows = Math.min(this.maxBatch, n - start);
      this.forward(x.subarray(start * features, (start + rows) * features), rows);
      logits.set(last.out.subarray(0, rows * classes), start * classes);
    }
    return logits;
  }

  /**
   * One optimizer step t (from 1) with the semantics of shared/reference/optimizer.ts, on the
   * parameters held here. grads: f32[N], dense layout (this model's own, or an averaged one).
   */
  step(grads: Float32Array, config: OptimizerConfig, t: number): void {
    if (grads.length !== this.layout.count) throw new RangeError(`CpuMlp.step: grads has ${grads.length} values, expected ${this.layout.count}`);
    if (config.kind === 'adam' || config.kind === 'adamw') adamStep(this.params, grads, this.m, this.v, optimizerScalars(config, t));
    else optimizerStepRef(this.params, grads, { m: this.m, v: this.v }, config, t);
    this.staleTransposes();
  }

  private checkBatch(what: string, x: Float32Array, batch: number): void {
    if (!Number.isInteger(batch) || batch < 1 || batch > this.maxBatch) {
      throw new RangeError(`CpuMlp.${what}: batch must be an integer in [1, maxBatch ${this.maxBatch}], got ${batch}`);
    }
    const features = this.spec.layers[0];
    if (x.length !== batch * features) {
      throw new RangeError(`CpuMlp.${what}: x has ${x.length} values, expected batch ${batch} × ${features} features = ${batch * features}`);
    }
  }

  private staleTransposes(): void {
    for (const layer of this.layers) layer.wtFresh = false;
  }

  /** Loads a: f32[rows, cols] into `into` and returns true when it is sparse enough to pay. */
  private loadIfSparse(into: SparseRows, a: Float32Array, rows: number, cols: number): boolean {
    if (this.sparseBelow <= 0) return false;
    const limit = Math.min(rows * cols, Math.ceil(this.sparseBelow * rows * cols) - 1);
    return limit >= 0 && into.fromRows(a, rows, cols, limit);
  }

  /** Fills pre and out of every layer for rows [0, batch) of x: f32[B, C_0]. */
  private forward(x: Float32Array, batch: number): void {
    let input = x;
    for (const layer of this.layers) {
      const { cin, cout } = layer;
      layer.sparseInput = this.loadIfSparse(layer.inputRows, input, batch, cin);
      if (layer.sparseInput) {
        if (!layer.wtFresh) {
          transpose(layer.w, layer.wt, cout, cin);
          layer.wtFresh = true;
        }
        spmm(layer.inputRows, layer.wt, cout, layer.pre, cout, 1);
      } else {
        gemmNT(input, layer.w, layer.pre, batch, cout, cin);
      }
      biasActivate(layer.pre, layer.out, layer.b, batch, cout, layer.act);
      input = layer.out;
    }
  }

  /** Gradients into this.grads; dPing holds dlogits on entry. */
  private backward(x: Float32Array, batch: number): void {
    let dOut = this.dPing;
    let dNext = this.dPong;
    for (let l = this.depth - 1; l >= 0; l--) {
      const layer = this.layers[l];
      const { cin, cout } = layer;
      // dz = da ⊙ act'(h) in place, and db = Σ_B dz in the same pass.
      biasActivateBackward(dOut, layer.pre, batch, cout, layer.act, this.colSum);
      for (let c = 0; c < cout; c++) layer.gb[c] = this.colSum[c];

      const input = l === 0 ? x : this.layers[l - 1].out;
      if (layer.sparseInput) {
        // dWᵀ [cin, cout] = inputᵀ · dz, written transposed straight into dW [cout, cin].
        this.sparseCols.transposeOf(layer.inputRows);
        spmm(this.sparseCols, dOut, cout, layer.gw, 1, cin);
      } else {
        gemmTN(dOut, input, layer.gw, cout, cin, batch);
      }

      if (l > 0) {
        // da_{l-1} [B, cin] = dz [B, cout] · W [cout, cin].
        if (this.loadIfSparse(this.dzRows, dOut, batch, cout)) {
          spmm(this.dzRows, layer.w, cin, dNext, cin, 1);
        } else {
          if (!layer.wtFresh) {
            transpose(layer.w, layer.wt, cout, cin);
            layer.wtFresh = true;
          }
          gemmNT(dOut, layer.wt, dNext, batch, cin, cout);
        }
        const swap = dOut;
        dOut = dNext;
        dNext = swap;
      }
    }
  }
}

/**
 * pre[r, c] = z[r, c] + b[c] (in place) and out[r, c] = act(pre[r, c]); out may be pre when act
 * is 'none'. z, pre, out: f32[B, C], b: f32[C]. GELU is the tanh approximation of bias-act.ts.
 */
export function biasActivate(pre: Float32Array, out: Float32Array, b: Float32Array, rows: number, cols: number, act: Activation): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    if (act === 'relu') {
      for (let c = 0; c < cols; c++) {
        const h = pre[base + c] + b[c];
        pre[base + c] = h;
        out[base + c] = h > 0 ? h : 0;
      }
    } else if (act === 'gelu') {
      for (let c = 0; c < cols; c++) {
        const h = Math.fround(pre[base + c] + b[c]);
        pre[base + c] = h;
        out[base + c] = Math.abs(h) > GELU_SATURATION ? (h > 0 ? h : 0) : 0.5 * h * (1 + Math.tanh(GELU_K * (h + GELU_A * h * h * h)));
      }
    } else {
      for (let c = 0; c < cols; c++) pre[base + c] += b[c];
    }
  }
}

/**
 * d[r, c] *= act'(pre[r, c]) in place (d: da in, dz out) and colSum[c] = Σ_r dz[r, c].
 * d, pre: f32[B, C]; colSum: f64[≥ C].
 */
export function biasActivateBackward(d: Float32Array, pre: Float32Array, rows: number, cols: number, act: Activation, colSum: Float64Array): void {
  colSum.fill(0, 0, cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    if (act === 'relu') {
      for (let c = 0; c < cols; c++) {
        const g = pre[base + c] > 0 ? d[base + c] : 0;
        d[base + c] = g;
        colSum[c] += g;
      }
    } else if (act === 'gelu') {
      for (let c = 0; c < cols; c++) {
        const h = pre[base + c];
        let grad: number;
        if (Math.abs(h) > GELU_SATURATION) {
          grad = h > 0 ? 1 : 0;
        } else {
          const t = Math.tanh(GELU_K * (h + GELU_A * h * h * h));
          grad = 0.5 * (1 + t) + 0.5 * h * (1 - t * t) * GELU_K * (1 + 3 * GELU_A * h * h);
        }
        const g = Math.fround(d[base + c] * grad);
        d[base + c] = g;
        colSum[c] += g;
      }
    } else {
      for (let c = 0; c < cols; c++) colSum[c] += d[base + c];
    }
  }
}

/**
 * Mean softmax cross-entropy of rows [0, rows) of logits: f32[rows, V] against labels [rows], and
 * dlogits: f32[rows, V] = (softmax - onehot) / gradRows. gradRows = rows gives the gradient of
 * this batch's mean loss; a pipeline stage passes the whole replica batch, so that its
 * micro-batches' gradients add up to the gradient of the mean over all of them.
 */
export function softmaxCrossEntropyRows(
  logits: Float32Array,
  labels: ArrayLike<number>,
  rows: number,
  classes: number,
  dlogits: Float32Array,
  gradRows: number,
): number {
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const base = r * classes;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[base + c]);
    let sum = 0;
    for (let c = 0; c < classes; c++) {
      const e = Math.exp(logits[base + c] - max);
      dlogits[base + c] = e;
      sum += e;
    }
    const label = labels[r];
    total += Math.log(sum) - (logits[base + label] - max);
    const scale = 1 / (sum * gradRows);
    for (let c = 0; c < classes; c++) dlogits[base + c] *= scale;
    dlogits[base + label] -= 1 / gradRows;
  }
  return total / rows;
}

/**
 * The adam / adamw update of optimizerStepRef with its scalars hoisted and its arrays typed, which
 * V8 runs several times faster than the reference's generic loop. Same expressions in the same
 * order, so the parameters agree with the reference bit for bit (the tests hold it to that).
 * p, g, m, v: f32[N].
 */
function adamStep(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, s: OptimizerScalars): void {
  const keep = s.first ? 0 : 1;
  const b1 = keep * s.beta1;
  const b2 = keep * s.beta2;
  const c1 = 1 - s.beta1;
  const c2 = 1 - s.beta2;
  const { l2, decay, stepSize, bc2Sqrt, eps } = s;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i] + l2 * p[i];
    const mi = b1 * m[i] + c1 * gi;
    const vi = b2 * v[i] + c2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - (stepSize * Math.fround(mi)) / (Math.sqrt(Math.fround(vi)) / bc2Sqrt + eps);
  }
}
