// Pipeline stages: how an MLP's dense layers are cut into P contiguous stages balanced by cost,
// and what each stage holds. Because the flat parameter order is layer by layer, a stage's
// parameters are one contiguous slice of the model's vector.
import { mlpDepth, mlpLayout, type HiddenActivation, type MlpSpec, type ParamLayout, type ParamTensor } from './model.ts';

export interface StagePlan {
  /** Stage index s in [0, stages). */
  index: number;
  stages: number;
  /** Dense layers [firstLayer, endLayer) of the model. */
  firstLayer: number;
  endLayer: number;
  /** Widths from this stage's input to its output: [in, ..., out]. */
  layers: number[];
  activation: HiddenActivation;
  /** Holds the model's first layer: its input is data, it computes no input gradient. */
  first: boolean;
  /** Holds the model's last layer: no activation after it, and the softmax cross-entropy head. */
  last: boolean;
  /** Where the stage's parameters sit in the model's dense vector. */
  paramOffset: number;
  paramCount: number;
}

export class StagePlanError extends Error {
  override name = 'StagePlanError';
}

/** Cost of a dense layer: its multiply-adds, which are also its weight count (FLOPs and bytes agree). */
function layerCost(spec: MlpSpec, l: number): number {
  return spec.layers[l] * spec.layers[l + 1] + spec.layers[l + 1];
}

/**
 * Cuts the layers into `stages` contiguous groups minimising the largest group's cost (exact, by
 * dynamic programming over cut points; ties go to earlier cuts, so the result is deterministic).
 * @example partitionLayers({ layers: [784, 128, 64, 10], activation: 'relu' }, 2) // [[0], [1, 2]] by layer
 */
export function partitionLayers(spec: MlpSpec, stages: number): StagePlan[] {
  const depth = mlpDepth(spec);
  if (!Number.isInteger(stages) || stages < 1) throw new StagePlanError(`stages must be a positive integer, got ${stages}`);
  if (stages > depth) throw new StagePlanError(`cannot cut ${depth} dense layer(s) into ${stages} stages: each stage needs at least one layer`);
  const cost = Array.from({ length: depth }, (_, l) => layerCost(spec, l));
  const prefix = [0];
  for (const c of cost) prefix.push(prefix[prefix.length - 1] + c);
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
  const full = mlpLayout(spec);
  return bounds.map(([a, b], index) => {
    const paramOffset = full.tensors[2 * a].offset;
    const lastTensor = full.tensors[2 * b - 1];
    return {
      index,
      stages,
      firstLayer: a,
      endLayer: b,
      layers: spec.layers.slice(a, b + 1),
      activation: spec.activation,
      first: a === 0,
      last: b === depth,
      paramOffset,
      paramCount: lastTensor.offset + lastTensor.size - paramOffset,
    };
  });
}

/** Whether dense layer i of the stage (0-based within it) is followed by the activation. */
export function stageActivates(plan: StagePlan, i: number): boolean {
  return !(plan.last && i === plan.layers.length - 2);
}

/** The stage's tensors, named as in the whole model ('2.weight', ...), offsets relative to the stage. */
export function stageLayout(plan: StagePlan, spec: MlpSpec): ParamLayout {
  const full = mlpLayout(spec);
  const tensors: ParamTensor[] = full.tensors.slice(2 * plan.firstLayer, 2 * plan.endLayer).map((t) => ({ ...t, offset: t.offset - plan.paramOffset }));
  return { tensors, count: plan.paramCount };
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
