// CPU reference of a whole MLP training step, composed from the per-op references: the
// oracle the GPU executor's gradients are checked against. Plain loops, float32 storage.
import { mlpDepth, mlpLayout, type MlpSpec } from '../model.ts';
import { biasActBackwardRef, biasActRef, type Activation } from './bias-act.ts';
import { matmulRef } from './matmul.ts';
import { colSumRef } from './reduce.ts';
import { softmaxCrossEntropyRef } from './softmax-ce.ts';

export interface MlpForward {
  /** Per layer: z = input · Wᵀ (before bias), [B, out]. */
  pre: Float32Array[];
  /** Per layer: act(z + b), [B, out]; the last is the logits. */
  out: Float32Array[];
}

/** x: [B, layers[0]], params: dense flat layout (mlpLayout(spec)). */
export function mlpForwardRef(spec: MlpSpec, params: Float32Array, x: Float32Array, batch: number): MlpForward {
  const { tensors } = mlpLayout(spec);
  const pre: Float32Array[] = [];
  const out: Float32Array[] = [];
  let input = x;
  for (let l = 0; l < mlpDepth(spec); l++) {
    const [inW, outW] = [spec.layers[l], spec.layers[l + 1]];
    const w = params.subarray(tensors[2 * l].offset, tensors[2 * l].offset + outW * inW);
    const b = params.subarray(tensors[2 * l + 1].offset, tensors[2 * l + 1].offset + outW);
    const z = matmulRef(input, w, batch, outW, inW, false, true);
    const act: Activation = l === mlpDepth(spec) - 1 ? 'none' : spec.activation;
    pre.push(z);
    out.push(biasActRef(z, b, batch, outW, act));
    input = out[l];
  }
  return { pre, out };
}

export interface MlpGradients {
  /** Mean cross-entropy over the batch. */
  loss: number;
  /** Gradient of the mean loss, dense flat layout. */
  grads: Float32Array;
  logits: Float32Array;
}

/** Loss and parameter gradients of the mean softmax cross-entropy on one batch. labels: [B]. */
export function mlpGradientsRef(spec: MlpSpec, params: Float32Array, x: Float32Array, labels: ArrayLike<number>, batch: number): MlpGradients {
  const { tensors, count } = mlpLayout(spec);
  const depth = mlpDepth(spec);
  const fwd = mlpForwardRef(spec, params, x, batch);
  const logits = fwd.out[depth - 1];
  const ce = softmaxCrossEntropyRef(logits, Uint32Array.from(labels), batch, spec.layers[depth]);
  const grads = new Float32Array(count);
  let dOut = ce.dlogits;
  for (let l = depth - 1; l >= 0; l--) {
    const [inW, outW] = [spec.layers[l], spec.layers[l + 1]];
    const wT = tensors[2 * l];
    const bT = tensors[2 * l + 1];
    const b = params.subarray(bT.offset, bT.offset + outW);
    const act: Activation = l === depth - 1 ? 'none' : spec.activation;
    const dz = biasActBackwardRef(fwd.pre[l], b, dOut, batch, outW, act);
    const input = l === 0 ? x : fwd.out[l - 1];
    grads.set(matmulRef(dz, input, outW, inW, batch, true, false), wT.offset);
    grads.set(colSumRef(dz, batch, outW), bT.offset);
    if (l > 0) dOut = matmulRef(dz, params.subarray(wT.offset, wT.offset + outW * inW), batch, inW, outW, false, false);
  }
  return { loss: ce.meanLoss, grads, logits };
}

/** Index of the largest logit of each row: [B, V] -> [B]. */
export function argmaxRows(logits: Float32Array, rows: number, classes: number): Uint32Array {
  const out = new Uint32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (logits[r * classes + c] > logits[r * classes + best]) best = c;
    out[r] = best;
  }
  return out;
}
