// Pipeline stages: how a model's layer list is cut into P contiguous stages balanced by the
// layers' costs, and what each stage holds. A cut falls only between two layers of the list (a
// residual is one layer, so never inside it); because the flat parameter order is layer by layer,
// a stage's parameters are one contiguous slice of the model's vector.
import { sizeOf } from './layers/layer.ts';
import type { ModelDescription, PlacedLayer } from './layers/sequence.ts';

export interface StagePlan {
  /** Stage index s in [0, stages). */
  index: number;
  stages: number;
  /** Layers [firstLayer, endLayer) of the model's layer list. */
  firstLayer: number;
  endLayer: number;
  /** Shape of one example at the stage's input and output (what the relays carry, per row). */
  inShape: number[];
  outShape: number[];
  /** Holds the model's first layer: its input is data, it computes no input gradient. */
  first: boolean;
  /** Holds the model's last layer: its output is the logits, and it computes the loss. */
  last: boolean;
  /** Where the stage's parameters sit in the model's flat vector. */
  paramOffset: number;
  paramCount: number;
}

export class StagePlanError extends Error {
  override name = 'StagePlanError';
}

/**
 * Cost of one layer for one example: its multiply-adds plus one per output value (elementwise
 * layers are not free: each touches its whole output).
 */
export function layerCost(layer: PlacedLayer): number {
  return layer.macs + sizeOf(layer.outShape);
}

/**
 * Cuts the layers into `stages` contiguous groups minimising the largest group's cost (exact, by
 * dynamic programming over cut points; ties go to earlier cuts, so the result is deterministic).
 * @example partitionLayers(describeModel(layers, [1, 28, 28]), 2).map((p) => [p.firstLayer, p.endLayer]) // [[0, 3], [3, 8]]
 */
export function partitionLayers(model: ModelDescription, stages: number): StagePlan[] {
  const depth = model.layers.length;
  if (!Number.isInteger(stages) || stages < 1) throw new StagePlanError(`stages must be a positive integer, got ${stages}`);
  if (stages > depth) throw new StagePlanError(`cannot cut ${depth} layer(s) into ${stages} stages: each stage needs at least one layer`);
  const prefix = [0];
  for (const l of model.layers) prefix.push(prefix[prefix.length - 1] + layerCost(l));
  const span = (a: number, b: number) => prefix[b] - prefix[a];
  // best[s][l]: minimal max cost of cutting layers [0, l) into s stages; cut[s][l]: where the last stage starts.
  const best = Array.from({ length: stages + 1 }, () => new Array<number>(depth + 1).fill(Infinity));
  const cut = Array.from({ length: stages + 1 }, () => new Array<number>(depth + 1).fill(0));
  best[0][0] = 0;
  for (let s = 1; s <= stages; s++) {
    for (let l = s; l <= depth; l++) {
      for (let start = s - 1; start < l; start++) {
        const v = Math.max(best[s - 1][start], span(start, l));
        if (v < best[s][l]) {
          best[s][l] = v;
          cut[s][l] = start;
        }
      }
    }
  }
  const bounds: [number, number][] = [];
  let end = depth;
  for (let s = stages; s >= 1; s--) {
    const start = cut[s][end];
    bounds.unshift([start, end]);
    end = start;
  }
  return bounds.map(([a, b], index) => {
    const layers = model.layers.slice(a, b);
    return {
      index,
      stages,
      firstLayer: a,
      endLayer: b,
      inShape: [...layers[0].inShape],
      outShape: [...layers[layers.length - 1].outShape],
      first: a === 0,
      last: b === depth,
      paramOffset: layers[0].paramOffset,
      paramCount: layers.reduce((n, l) => n + l.paramCount, 0),
    };
  });
}

/**
 * Predicted idle fraction of a GPipe round with P stages and M equal micro-batches, all stages
 * equally fast: (P - 1) / (M + P - 1).
 */
export function gpipeBubble(stages: number, microBatches: number): number {
  return (stages - 1) / (microBatches + stages - 1);
}

/** Sizes of M micro-batches splitting `batch` examples as evenly as possible (none empty). */
export function microBatchSizes(batch: number, microBatches: number): number[] {
  const m = Math.max(1, Math.min(microBatches, batch));
  return Array.from({ length: m }, (_, i) => Math.floor(batch / m) + (i < batch % m ? 1 : 0));
}
