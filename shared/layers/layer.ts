// What every layer kind says about itself, once: its output shape from its input shape, its
// parameters (PyTorch names, shapes, PyTorch's default initialisation), its cost, and its
// plain-loop reference forward and backward (the test oracle for every backend). Kinds register
// by name here; shapes are of ONE example (B, the batch, is never part of a layer's shape).
//
// Shape convention: [F] features; [C, H, W] an image (channels first, as PyTorch); [T, C] a
// sequence of T positions of C channels; token ids travel as float32 values of shape [T].

export type Shape = readonly number[];

export type Init =
  | { kind: 'uniform'; bound: number }
  | { kind: 'normal'; std: number }
  | { kind: 'constant'; value: number };

export interface ParamDecl {
  /** PyTorch state_dict name inside the layer's module ('weight', 'in_proj_weight', 'fn.0.bias'). */
  name: string;
  shape: number[];
  init: Init;
}

/** The per-layer configuration as a run spec writes it: { kind: 'conv2d', out: 8, kernel: 5 }. */
export interface LayerConfig {
  kind: string;
  [key: string]: unknown;
}

export interface LayerForward {
  y: Float32Array;
  /** Whatever backward needs from forward (inputs, masks, statistics). */
  cache: unknown;
}

export interface LayerBackward {
  dx: Float32Array;
  /** Gradients of the parameters, in the order of params(). */
  dp: Float32Array[];
}

export interface LayerKind<C extends LayerConfig = LayerConfig> {
  kind: string;
  /** Checks the configuration's own fields; throws LayerError naming the bad one. */
  check(cfg: C): void;
  /** Output shape of one example; throws LayerError when the input shape does not fit. */
  outShape(cfg: C, inShape: Shape): number[];
  params(cfg: C, inShape: Shape): ParamDecl[];
  /** Multiply-adds of one example's forward pass (stage balancing and task sizing read it). */
  macs(cfg: C, inShape: Shape): number;
  /** x: [B, ...inShape] → y: [B, ...outShape]. */
  forward(cfg: C, inShape: Shape, p: Float32Array[], x: Float32Array, batch: number): LayerForward;
  /**
   * dy: [B, ...outShape] → dx: [B, ...inShape] and the parameters' gradients (summed over the batch).
   * `inputGrad` false: nobody reads dx (the layer's input is the model's data), so a backend may skip it.
   */
  backward(cfg: C, inShape: Shape, p: Float32Array[], cache: unknown, dy: Float32Array, batch: number, inputGrad?: boolean): LayerBackward;
}

export class LayerError extends Error {
  override name = 'LayerError';
}

const kinds = new Map<string, LayerKind>();

export function registerLayer<C extends LayerConfig>(k: LayerKind<C>): void {
  kinds.set(k.kind, k as unknown as LayerKind);
}

export function layerKind(kind: string): LayerKind {
  const k = kinds.get(kind);
  if (!k) throw new LayerError(`unknown layer kind "${kind}"; known: ${[...kinds.keys()].sort().join(', ')}`);
  return k;
}

export function layerKinds(): string[] {
  return [...kinds.keys()];
}

export const sizeOf = (shape: Shape): number => shape.reduce((a, b) => a * b, 1);

export const shapeText = (shape: Shape): string => `[${shape.join(', ')}]`;

/** A positive integer field of a layer, or its default. */
export function intField(cfg: LayerConfig, field: string, opts: { min?: number; max?: number; def?: number } = {}): number {
  const v = cfg[field] ?? opts.def;
  const min = opts.min ?? 1;
  const max = opts.max ?? 1 << 20;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new LayerError(`${cfg.kind}: ${field} must be an integer from ${min} to ${max}${v === undefined ? ' (missing)' : `, got ${JSON.stringify(v)}`}`);
  }
  return v;
}

/** Throws unless the input has this many dimensions. */
export function expectRank(cfg: LayerConfig, inShape: Shape, rank: number, what: string): void {
  if (inShape.length !== rank) throw new LayerError(`${cfg.kind} takes ${what}, got an input of shape ${shapeText(inShape)}`);
}

/** Only these fields may appear (besides kind). */
export function onlyFields(cfg: LayerConfig, fields: string[]): void {
  for (const key of Object.keys(cfg)) {
    if (key !== 'kind' && !fields.includes(key)) throw new LayerError(`${cfg.kind}: unknown field "${key}"${fields.length ? ` (allowed: ${fields.join(', ')})` : ''}`);
  }
}
