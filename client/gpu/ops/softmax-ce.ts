// Typed wrapper for shaders/softmax-ce.wgsl: fused softmax + cross-entropy, per-row loss and the
// gradient of the mean loss. The CPU reference is shared/reference/softmax-ce.ts.
import source from '../../../shaders/softmax-ce.wgsl?raw';
import { linearWorkgroups, type Kernel } from '../kernel.ts';
import type { Binding, Dispatch, Gpu } from '../runtime.ts';

/** One invocation per row up to this many classes; wider rows get a workgroup each. */
export const ROW_PER_INVOCATION_MAX_CLASSES = 256;
/** Rows per workgroup of the invocation-per-row kernel. */
const ROWS_WG = 64;

export type SoftmaxCeLayout = 'invocation-per-row' | 'workgroup-per-row';

export function softmaxCeLayout(classes: number): SoftmaxCeLayout {
  return classes <= ROW_PER_INVOCATION_MAX_CLASSES ? 'invocation-per-row' : 'workgroup-per-row';
}

/**
 * The kernel for `classes` (or for an explicit layout). workgroup-per-row: threads per row the
 * next power of two of V, between 32 and 256.
 */
export function softmaxCrossEntropyKernel(classes: number, layout = softmaxCeLayout(classes)): Kernel {
  if (layout === 'invocation-per-row') {
    return { name: 'softmax_ce_rows', source, entryPoint: 'softmax_ce_rows', bindings: ['uniform', 'read', 'read', 'storage', 'storage'], overrides: { WG: ROWS_WG } };
  }
  const wg = Math.min(256, Math.max(32, 2 ** Math.ceil(Math.log2(classes))));
  return {
    name: 'softmax_ce',
    source,
    entryPoint: 'softmax_ce',
    bindings: ['uniform', 'read', 'read', 'storage', 'storage'],
    overrides: { WG: wg },
  };
}

export interface SoftmaxCrossEntropyArgs {
  /** f32[B, V]. */
  logits: Binding;
  /** u32[B], each < V (a label >= V marks a row to ignore: loss and gradient 0). */
  labels: Binding;
  /** f32[B] output: -log softmax(logits[b])[labels[b]]. */
  loss: Binding;
  /** f32[B, V] output: (softmax - onehot) / gradRows, the gradient of the mean loss. */
  dlogits: Binding;
  rows: number;
  classes: number;
  /**
   * The mean's denominator in the gradient (default rows). A pipeline's last stage passes the
   * whole replica batch, so its micro-batches' gradients add up to that of the batch's mean loss.
   */
  gradRows?: number;
  /** Default: softmaxCeLayout(classes) (one invocation per row for up to 256 classes). */
  layout?: SoftmaxCeLayout;
}

/**
 * One invocation per row (a workgroup per row past 256 classes). logits f32[B, V], labels u32[B] -> loss f32[B], dlogits f32[B, V].
 * @example softmaxCrossEntropy(gpu, { logits, labels, loss, dlogits, rows: 64, classes: 10 });
 */
export function softmaxCrossEntropy(gpu: Gpu, a: SoftmaxCrossEntropyArgs): Dispatch {
  if (!Number.isInteger(a.rows) || !Number.isInteger(a.classes) || a.rows < 1 || a.classes < 1) {
    throw new Error(`softmaxCrossEntropy needs positive integer rows and classes, got ${a.rows}x${a.classes}`);
  }
  const gradRows = a.gradRows ?? a.rows;
  if (!(gradRows > 0)) throw new Error(`softmaxCrossEntropy needs a positive gradRows, got ${gradRows}`);
  const uniforms = new ArrayBuffer(16);
  new Uint32Array(uniforms, 0, 2).set([a.rows, a.classes]);
  new Float32Array(uniforms, 8, 1)[0] = 1 / gradRows;
  const layout = a.layout ?? softmaxCeLayout(a.classes);
  return gpu.prepare({
    kernel: softmaxCrossEntropyKernel(a.classes, layout),
    buffers: [a.logits, a.labels, a.loss, a.dlogits],
    uniforms: new Uint8Array(uniforms),
    workgroups: linearWorkgroups(a.rows, layout === 'invocation-per-row' ? ROWS_WG : 1),
  });
}
