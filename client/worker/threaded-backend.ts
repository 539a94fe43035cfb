// The CPU backend on several threads: a task's batch is cut into contiguous parts, one per lane
// (a thread with its own CPU layer executor), and the lanes' mean-loss gradients are summed with
// the weights of their parts, which is the batch's mean-loss gradient up to float rounding. The
// lanes are given, not made here: worker_threads in Node (node/cpu-lanes.ts), Web Workers in the
// page. Local mode's inner steps run here on the main thread's copy of the parameters, which the
// lanes receive again after each step.
import type { ModelDescription } from '../../shared/layers/sequence.ts';
import type { Backend } from '../../shared/protocol.ts';
import type { OptimizerConfig } from '../../shared/reference/optimizer.ts';
import { InnerOptimizer } from './inner-optimizer.ts';
import type { GradientBackend, GradientResult } from './backend.ts';

/** Threads (lanes) that compute gradients of one model on the parameters they were last given. */
export interface LanePool {
  readonly size: number;
  /** Every lane computes on these parameters from its next batch on. */
  setParams(params: Float32Array): void;
  /** Lane `lane`'s mean-loss gradient over `batch` examples; x and labels become the pool's. */
  gradients(lane: number, x: Float32Array, labels: Uint8Array | Int32Array | Float32Array, batch: number): Promise<GradientResult>;
  dispose(): void;
}

/** Rows each of `lanes` lanes takes of a batch of `batch`: contiguous, the first ones one more when it does not divide. */
export function splitRows(batch: number, lanes: number): number[] {
  const n = Math.max(1, Math.min(lanes, batch));
  const base = Math.floor(batch / n);
  return Array.from({ length: n }, (_, i) => base + (i < batch % n ? 1 : 0));
}

export class ThreadedCpuBackend implements GradientBackend {
  readonly kind: Backend = 'cpu';
  private readonly params: Float32Array;
  private readonly grads: Float32Array;
  private readonly inner = new InnerOptimizer();

  constructor(
    readonly model: ModelDescription,
    readonly maxBatch: number,
    private readonly lanes: LanePool,
  ) {
    if (lanes.size === 0) throw new RangeError('a threaded CPU backend needs at least one lane');
    this.params = new Float32Array(model.paramCount);
    this.grads = new Float32Array(model.paramCount);
  }

  get threads(): number {
    return this.lanes.size;
  }

  setParams(params: Float32Array): void {
    if (params.length !== this.model.paramCount) throw new RangeError(`parameters have ${params.length} values, the model ${this.model.paramCount}`);
    this.params.set(params);
    this.lanes.setParams(this.params);
  }

  async gradients(x: Float32Array, labels: ArrayLike<number>, batch: number): Promise<GradientResult> {
    if (batch > this.maxBatch) throw new RangeError(`batch of ${batch} examples exceeds this backend's ${this.maxBatch}`);
    const features = x.length / batch;
    const perExample = labels.length / batch;
    const rows = splitRows(batch, this.lanes.size);
    let start = 0;
    const parts = rows.map((n, i) => {
      const from = start;
      start += n;
      const lx = x.slice(from * features, (from + n) * features);
      const ll = labelSlice(labels, from * perExample, (from + n) * perExample);
      return this.lanes.gradients(i, lx, ll, n).then((r) => ({ n, r }));
    });
    const done = await Promise.all(parts);
    this.grads.fill(0);
    let loss = 0;
    for (const { n, r } of done) {
      const w = n / batch;
      loss += w * r.loss;
      const g = r.grads;
      for (let j = 0; j < g.length; j++) this.grads[j] += w * g[j];
    }
    return { loss, grads: this.grads };
  }

  async innerStep(x: Float32Array, labels: ArrayLike<number>, batch: number, optimizer: OptimizerConfig): Promise<number> {
    const { loss, grads } = await this.gradients(x, labels, batch);
    this.inner.step(this.params, grads, optimizer);
    this.lanes.setParams(this.params);
    return loss;
  }

  async readParams(): Promise<Float32Array> {
    return this.params.slice();
  }

  resetOptimizer(): void {
    this.inner.reset();
  }

  get allocatedBytes(): number {
    // Each lane holds its own executor (parameters, gradients, activations of its rows); counted here as parameters and gradients.
    return 4 * this.model.paramCount * (2 + 2 * this.lanes.size) + this.inner.bytes;
  }

  dispose(): void {
    this.lanes.dispose();
  }
}

/** A lane's labels as a typed copy it can take to its thread. */
function labelSlice(labels: ArrayLike<number>, from: number, to: number): Uint8Array | Int32Array | Float32Array {
  if (labels instanceof Uint8Array || labels instanceof Int32Array || labels instanceof Float32Array) return labels.slice(from, to);
  const out = new Int32Array(to - from);
  for (let i = from; i < to; i++) out[i - from] = labels[i];
  return out;
}
