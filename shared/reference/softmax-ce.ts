// Plain-loop CPU reference of fused softmax + cross-entropy (shaders/softmax-ce.wgsl): per-row
// loss and the gradient of the mean loss. Numerically stable through max subtraction.
import { checkLength } from './shapes.ts';

export interface SoftmaxCrossEntropy {
  /** f32[B]: -log softmax(logits[b])[labels[b]]. */
  loss: Float32Array;
  /** Mean of the per-row losses (computed in float64). */
  meanLoss: number;
  /** f32[B, V]: (softmax(logits) - onehot(labels)) / B, the gradient of meanLoss. */
  dlogits: Float32Array;
}

/**
 * logits: f32[B, V], labels: u32[B] (each < V) -> loss f32[B], meanLoss, dlogits f32[B, V].
 * A label >= V marks an ignored row: its loss and gradient are 0 (the mean still divides by B).
 * @example softmaxCrossEntropyRef(new Float32Array([0, 0]), new Uint32Array([1]), 1, 2).meanLoss; // ln 2
 */
export function softmaxCrossEntropyRef(logits: ArrayLike<number>, labels: ArrayLike<number>, rows: number, classes: number): SoftmaxCrossEntropy {
  checkLength('softmaxCrossEntropyRef logits', logits, rows * classes);
  checkLength('softmaxCrossEntropyRef labels', labels, rows);
  const loss = new Float32Array(rows);
  const dlogits = new Float32Array(rows * classes);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const base = r * classes;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[base + c]);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(logits[base + c] - max);
    const label = labels[r];
    if (label >= classes) continue;
    const rowLoss = Math.log(sum) - (logits[base + label] - max);
    loss[r] = rowLoss;
    total += rowLoss;
    for (let c = 0; c < classes; c++) {
      const p = Math.exp(logits[base + c] - max) / sum;
      dlogits[base + c] = (p - (c === label ? 1 : 0)) / rows;
    }
  }
  return { loss, meanLoss: total / rows, dlogits };
}
