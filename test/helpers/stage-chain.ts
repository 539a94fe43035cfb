// Chains pipeline stages by hand, as the coordinator would relay between stage workers, so that
// the cpu and gpu stage tests check both backends through the same round: every micro-batch
// forward through every stage, then every micro-batch backward (GPipe), in a chosen order.
import type { StageBackend } from '../../client/worker/stage-backend.ts';
import type { MlpSpec } from '../../shared/model.ts';
import { createRng, randomUniform } from '../../shared/rng.ts';

export interface ChainedRound {
  /** Σ m_i · loss_i / B: the mean loss over the replica batch. */
  loss: number;
  /** The stages' gradients concatenated: the model's dense gradient vector. */
  grads: Float32Array;
}

/**
 * One round over x: f32[B, C_0] and labels [B] cut into micro-batches of `sizes` rows.
 * `backwardOrder` 'reverse' is GPipe's (last micro-batch first); 'forward' returns them in order.
 */
export async function chainRound(
  stages: StageBackend[],
  x: Float32Array,
  labels: ArrayLike<number>,
  sizes: number[],
  backwardOrder: 'reverse' | 'forward' = 'reverse',
): Promise<ChainedRound> {
  const features = stages[0].plan.layers[0];
  const batch = sizes.reduce((a, b) => a + b, 0);
  for (const s of stages) s.begin(sizes);
  const starts = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
  // Activations arriving at the last stage, per micro-batch.
  const lastInput: Float32Array[] = [];
  for (let mb = 0; mb < sizes.length; mb++) {
    let act: Float32Array = x.slice(starts[mb] * features, (starts[mb] + sizes[mb]) * features);
    for (const s of stages.slice(0, -1)) act = await s.forward(mb, act);
    lastInput.push(act);
  }
  const order = sizes.map((_, i) => i);
  if (backwardOrder === 'reverse') order.reverse();
  const last = stages[stages.length - 1];
  let lossSum = 0;
  for (const mb of order) {
    const mbLabels = Array.from({ length: sizes[mb] }, (_, r) => labels[starts[mb] + r]);
    const { loss, dx } = await last.forwardBackwardLast(mb, lastInput[mb], mbLabels);
    lossSum += sizes[mb] * loss;
    let d = dx;
    for (let s = stages.length - 2; s >= 0; s--) {
      if (!d) throw new Error(`stage ${s + 1} returned no input gradient`);
      d = await stages[s].backward(mb, d);
    }
    if (d !== null) throw new Error('the first stage returned an input gradient');
  }
  const parts = await Promise.all(stages.map((s) => s.gradients()));
  const grads = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    grads.set(p, offset);
    offset += p.length;
  }
  return { loss: lossSum / batch, grads };
}

/** max |a - e| / max |e|, the error measure of the stage tests. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Infinity;
  let err = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    err = Math.max(err, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return scale > 0 ? err / scale : err;
}

/** Examples in one round of the stage tests: odd, so micro-batches are uneven. */
export const STAGE_BATCH = 13;

/** Seeded inputs in [-2, 2) and labels for a batch of `spec`. */
export function batchOf(spec: MlpSpec, seed: number, batch = STAGE_BATCH) {
  const rng = createRng(seed);
  const x = randomUniform(rng, batch * spec.layers[0], -2, 2);
  const labels = Uint32Array.from({ length: batch }, () => rng.int(spec.layers[spec.layers.length - 1]));
  return { x, labels };
}

/** Every activation, with P = 1..4 stages and M = 1..3 micro-batches. */
export const STAGE_CASES = (['relu', 'gelu'] as const).flatMap((activation) =>
  [1, 2, 3, 4].flatMap((stages) => [1, 2, 3].map((microBatches) => ({ activation, stages, microBatches }))),
);
