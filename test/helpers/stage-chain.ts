// Chains pipeline stages by hand, as the coordinator would relay between stage workers, so that
// the cpu and gpu stage tests check both backends through the same round: every micro-batch
// forward through every stage, then every micro-batch backward (GPipe), in a chosen order. Also
// the oracle (the whole model's reference gradient on the whole batch) and the models the stage
// tests cut: the MLP form, a small CNN and a small transformer.
import type { StageBackend } from '../../client/worker/stage-backend.ts';
import '../../shared/layers/index.ts';
import { labelsPerExample, lossAndGradient } from '../../shared/layers/head.ts';
import { sizeOf, type LayerConfig } from '../../shared/layers/layer.ts';
import { backwardRange, describeModel, forwardRange, type ModelDescription } from '../../shared/layers/sequence.ts';
import { expandLayers, mlpLayers } from '../../shared/layers/shorthand.ts';
import { createRng, randomUniform } from '../../shared/rng.ts';

export interface ChainedRound {
  /** Σ m_i · loss_i / B: the mean loss over the replica batch. */
  loss: number;
  /** The stages' gradients concatenated: the model's dense gradient vector. */
  grads: Float32Array;
}

/**
 * One round over x: f32[B, ...inShape] and labels [B × labels per example] cut into micro-batches
 * of `sizes` rows. `backwardOrder` 'reverse' is GPipe's (last micro-batch first); 'forward'
 * returns them in order.
 */
export async function chainRound(
  stages: StageBackend[],
  x: Float32Array,
  labels: ArrayLike<number>,
  sizes: number[],
  backwardOrder: 'reverse' | 'forward' = 'reverse',
): Promise<ChainedRound> {
  const features = sizeOf(stages[0].plan.inShape);
  const perExample = labelsPerExample(stages[stages.length - 1].plan.outShape);
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
    const mbLabels = Array.from({ length: sizes[mb] * perExample }, (_, r) => labels[starts[mb] * perExample + r]);
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

/** The whole model's mean loss and its gradient on the whole batch, by the plain-loop reference. */
export function referenceGradients(model: ModelDescription, params: Float32Array, x: Float32Array, labels: ArrayLike<number>, batch: number): ChainedRound {
  const f = forwardRange(model, params, x, batch);
  const head = lossAndGradient(model.outShape, f.y, labels, batch);
  const grads = new Float32Array(model.paramCount);
  backwardRange(model, params, f.caches, head.dlogits, batch, grads);
  return { loss: head.loss, grads };
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

/** Seeded inputs (token ids for a model that starts with an embedding, values in [-2, 2) otherwise) and labels. */
export function batchOf(model: ModelDescription, seed: number, batch = STAGE_BATCH) {
  const rng = createRng(seed);
  const first = model.layers[0].config;
  const n = batch * sizeOf(model.inShape);
  const x = first.kind === 'embedding' ? Float32Array.from({ length: n }, () => rng.int(first.vocab as number)) : randomUniform(rng, n, -2, 2);
  const classes = model.outShape[model.outShape.length - 1];
  const labels = Uint32Array.from({ length: batch * labelsPerExample(model.outShape) }, () => rng.int(classes));
  return { x, labels };
}

export interface StageModel {
  name: string;
  model: ModelDescription;
}

const described = (name: string, layers: LayerConfig[], inShape: number[]): StageModel => ({ name, model: describeModel(expandLayers(layers), inShape) });

/** The models the stage tests cut: the MLP form (both activations), a CNN and a transformer. */
export const STAGE_MODELS: StageModel[] = [
  described('mlp [33, 17, 29, 9, 5] relu', mlpLayers([33, 17, 29, 9, 5], 'relu'), [33]),
  described('mlp [33, 17, 29, 9, 5] gelu', mlpLayers([33, 17, 29, 9, 5], 'gelu'), [33]),
  described('cnn', [{ kind: 'conv2d', out: 3, kernel: 3, padding: 1 }, { kind: 'relu' }, { kind: 'maxpool2d', size: 2 }, { kind: 'conv2d', out: 4, kernel: 3 }, { kind: 'relu' }, { kind: 'flatten' }, { kind: 'dense', out: 7 }], [2, 8, 8]),
  described('transformer', [{ kind: 'embedding', vocab: 11, dim: 8 }, { kind: 'positional' }, { kind: 'transformer-block', heads: 2 }, { kind: 'layernorm' }, { kind: 'dense', out: 11 }], [5]),
];

/** Every model with P = 1..4 stages and M = 1..3 micro-batches. */
export const STAGE_CASES = STAGE_MODELS.flatMap(({ name, model }) => [1, 2, 3, 4].flatMap((stages) => [1, 2, 3].map((microBatches) => ({ name, model, stages, microBatches }))));
