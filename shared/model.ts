// The model description crowdtrain trains (an MLP of dense layers), its flat parameter layout
// and its seeded initialisation. No maths here: forward/backward live in reference/ and client/nn/.
import { createRng } from './rng.ts';

export type HiddenActivation = 'relu' | 'gelu';

export interface MlpSpec {
  /** Layer widths from input to output, e.g. [784, 128, 10]: two dense layers. */
  layers: number[];
  /** Applied after every dense layer but the last (whose outputs are the logits). */
  activation: HiddenActivation;
}

/** One tensor inside the flat parameter vector. */
export interface ParamTensor {
  /** PyTorch nn.Sequential state_dict name: '0.weight', '0.bias', '2.weight', ... */
  name: string;
  /** [out, in] for a weight, [out] for a bias. */
  shape: number[];
  /** First element in the flat vector. */
  offset: number;
  size: number;
}

export interface ParamLayout {
  tensors: ParamTensor[];
  /** Total parameters. */
  count: number;
}

export class ModelSpecError extends Error {
  override name = 'ModelSpecError';
}

export function validateMlpSpec(spec: MlpSpec): void {
  if (!Array.isArray(spec.layers) || spec.layers.length < 2) {
    throw new ModelSpecError(`model.layers must list at least an input and an output width, got ${JSON.stringify(spec.layers)}`);
  }
  spec.layers.forEach((w, i) => {
    if (!Number.isInteger(w) || w < 1 || w > 65536) throw new ModelSpecError(`model.layers[${i}] must be an integer in [1, 65536], got ${w}`);
  });
  if (spec.activation !== 'relu' && spec.activation !== 'gelu') {
    throw new ModelSpecError(`model.activation must be "relu" or "gelu", got ${JSON.stringify(spec.activation)}`);
  }
}

/**
 * The documented flat order: layer by layer, weight [out, in] row-major then bias [out]
 * (PyTorch nn.Linear; the k-th dense layer is module 2k of nn.Sequential(Linear, Act, Linear, ...)).
 * `align` pads each tensor's offset to a multiple of that many elements (the GPU uses 64 so that
 * every tensor can be bound at a 256-byte offset); 1 gives the dense order used on the wire.
 */
export function mlpLayout(spec: MlpSpec, align = 1): ParamLayout {
  validateMlpSpec(spec);
  const tensors: ParamTensor[] = [];
  let offset = 0;
  const push = (name: string, shape: number[]) => {
    offset = Math.ceil(offset / align) * align;
    const size = shape.reduce((a, b) => a * b, 1);
    tensors.push({ name, shape, offset, size });
    offset += size;
  };
  for (let i = 0; i + 1 < spec.layers.length; i++) {
    push(`${2 * i}.weight`, [spec.layers[i + 1], spec.layers[i]]);
    push(`${2 * i}.bias`, [spec.layers[i + 1]]);
  }
  return { tensors, count: Math.ceil(offset / align) * align };
}

/** Number of dense layers. */
export const mlpDepth = (spec: MlpSpec): number => spec.layers.length - 1;

/**
 * PyTorch's default nn.Linear init, from a seed: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)).
 * @example const p = initMlpParams({ layers: [784, 128, 10], activation: 'relu' }, 42);
 */
export function initMlpParams(spec: MlpSpec, seed: number): Float32Array {
  const layout = mlpLayout(spec);
  const params = new Float32Array(layout.count);
  const rng = createRng(seed);
  for (const t of layout.tensors) {
    const fanIn = spec.layers[Number(t.name.split('.')[0]) / 2];
    const bound = 1 / Math.sqrt(fanIn);
    for (let i = 0; i < t.size; i++) params[t.offset + i] = rng.uniform(-bound, bound);
  }
  return params;
}

/** Multiply-adds of one forward pass per example (a training step is about 3x this). */
export function mlpForwardMacs(spec: MlpSpec): number {
  let macs = 0;
  for (let i = 0; i + 1 < spec.layers.length; i++) macs += spec.layers[i] * spec.layers[i + 1];
  return macs;
}
