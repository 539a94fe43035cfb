// A model as a list of layers: shapes through it, its flat parameter layout under PyTorch
// nn.Sequential names ('0.weight', '3.bias', '2.fn.1.in_proj_weight'), its seeded
// initialisation, and the reference forward and backward of any contiguous range of layers
// (the chain rule, written once). Backends implement the same contract on their own kernels.
import { createRng } from '../rng.ts';
import { layerKind, LayerError, shapeText, sizeOf, type LayerConfig, type LayerKind, type ParamDecl, type Shape } from './layer.ts';

export interface PlacedParam extends ParamDecl {
  /** First element in the model's flat parameter vector. */
  offset: number;
  size: number;
}

export interface PlacedLayer {
  index: number;
  config: LayerConfig;
  inShape: number[];
  outShape: number[];
  params: PlacedParam[];
  /** This layer's parameters in the flat vector: [paramOffset, paramOffset + paramCount). */
  paramOffset: number;
  paramCount: number;
  macs: number;
}

export interface ModelDescription {
  inShape: number[];
  outShape: number[];
  layers: PlacedLayer[];
  paramCount: number;
  macs: number;
}

/**
 * Shapes and parameters of a layer list on an input shape; throws LayerError naming the layer
 * (by index and kind) and the shape that does not fit.
 * @example describeModel([{ kind: 'flatten' }, { kind: 'dense', out: 10 }], [1, 28, 28]).paramCount; // 7850
 */
export function describeModel(configs: readonly LayerConfig[], inShape: Shape, namePrefix = ''): ModelDescription {
  const layers: PlacedLayer[] = [];
  let shape = [...inShape];
  let offset = 0;
  configs.forEach((config, index) => {
    let outShape: number[];
    let decls: ParamDecl[];
    let macs: number;
    try {
      const kind = layerKind(config.kind);
      kind.check(config);
      outShape = kind.outShape(config, shape);
      decls = kind.params(config, shape);
      macs = kind.macs(config, shape);
    } catch (err) {
      if (err instanceof LayerError) throw new LayerError(`layer ${namePrefix}${index} (${config.kind}) on input ${shapeText(shape)}: ${err.message}`);
      throw err;
    }
    const paramOffset = offset;
    const params = decls.map((d) => {
      const size = sizeOf(d.shape);
      const placed = { ...d, name: `${namePrefix}${index}.${d.name}`, offset, size };
      offset += size;
      return placed;
    });
    layers.push({ index, config, inShape: shape, outShape, params, paramOffset, paramCount: offset - paramOffset, macs });
    shape = outShape;
  });
  return { inShape: [...inShape], outShape: shape, layers, paramCount: offset, macs: layers.reduce((a, l) => a + l.macs, 0) };
}

/** Every parameter drawn as PyTorch's default initialisation of its module, from one seed. */
export function initModelParams(model: ModelDescription, seed: number): Float32Array {
  const params = new Float32Array(model.paramCount);
  const rng = createRng(seed);
  for (const layer of model.layers) {
    for (const p of layer.params) {
      const out = params.subarray(p.offset, p.offset + p.size);
      const init = p.init;
      if (init.kind === 'constant') out.fill(init.value);
      else if (init.kind === 'uniform') for (let i = 0; i < out.length; i++) out[i] = rng.uniform(-init.bound, init.bound);
      else for (let i = 0; i < out.length; i++) out[i] = init.std * rng.normal();
    }
  }
  return params;
}

/** The layer's parameter tensors as views of the flat vector (no copies). */
export function layerParams(layer: PlacedLayer, flat: Float32Array, base = 0): Float32Array[] {
  return layer.params.map((p) => flat.subarray(p.offset - base, p.offset - base + p.size));
}

/** How a backend computes one layer: the reference's contract (forward, backward) for a kind. */
export type LayerKernels = Pick<LayerKind, 'forward' | 'backward'>;

export interface RangeOptions {
  /** First layer of the range (default 0). */
  first?: number;
  /** One past the last layer (default: all). */
  end?: number;
  /** Offset of `params`/`grads` in the model's flat vector when they hold only the range's slice. */
  base?: number;
  /** The implementation of each kind (default: the plain-loop reference). */
  kernels?: (kind: string) => LayerKernels;
  /** backwardRange: whether the range's input gradient is wanted (default true; false returns an unspecified dx). */
  inputGrad?: boolean;
}

export interface RangeForward {
  y: Float32Array;
  /** One entry per layer of the range, for backward. */
  caches: unknown[];
}

/**
 * Forward of layers [first, end) on x: [B, ...layers[first].inShape].
 * @example const { y } = forwardRange(model, params, x, batch); // logits of the whole model
 */
export function forwardRange(model: ModelDescription, params: Float32Array, x: Float32Array, batch: number, opts: RangeOptions = {}): RangeForward {
  const { first = 0, end = model.layers.length, base = 0, kernels = layerKind } = opts;
  const caches: unknown[] = [];
  let h = x;
  for (let i = first; i < end; i++) {
    const l = model.layers[i];
    const out = kernels(l.config.kind).forward(l.config, l.inShape, layerParams(l, params, base), h, batch);
    caches.push(out.cache);
    h = out.y;
  }
  return { y: h, caches };
}

/**
 * Backward of layers [first, end): from dy [B, ...outShape] to dx, adding each layer's parameter
 * gradients into `grads` (same layout as `params`). The chain rule, written once for every backend.
 */
export function backwardRange(model: ModelDescription, params: Float32Array, caches: unknown[], dy: Float32Array, batch: number, grads: Float32Array, opts: RangeOptions = {}): Float32Array {
  const { first = 0, end = model.layers.length, base = 0, kernels = layerKind, inputGrad = true } = opts;
  let d = dy;
  for (let i = end - 1; i >= first; i--) {
    const l = model.layers[i];
    const { dx, dp } = kernels(l.config.kind).backward(l.config, l.inShape, layerParams(l, params, base), caches[i - first], d, batch, i > first || inputGrad);
    l.params.forEach((p, k) => {
      const g = grads.subarray(p.offset - base, p.offset - base + p.size);
      const src = dp[k];
      for (let j = 0; j < g.length; j++) g[j] += src[j];
    });
    d = dx;
  }
  return d;
}
