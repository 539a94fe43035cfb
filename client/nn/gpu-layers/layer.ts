// How a layer kind runs on WebGPU, registered by kind (tfjs's registerKernel): each kind says what
// buffers it needs for a batch and which dispatches (through client/gpu/ops/) its forward and
// backward are. The chain rule is not here (./chain.ts); shapes, parameters and the plain-loop
// reference each kind must agree with are in shared/layers/<kind>.ts.
//
// Shapes: B examples (≤ maxBatch), the layer's inShape and outShape of ONE example, as in
// shared/layers/layer.ts. Every buffer is sized for maxBatch; dispatches are prepared per batch.
import type { LayerConfig } from '../../../shared/layers/layer.ts';
import type { Binding, Dispatch, Gpu } from '../../gpu/runtime.ts';

export interface GpuLayerSetup {
  gpu: Gpu;
  config: LayerConfig;
  inShape: readonly number[];
  outShape: readonly number[];
  /** The layer's parameter tensors, one binding each, in the order of its kind's params(). */
  params: GPUBufferBinding[];
  /** Their gradients, same order; backward ADDS into them (sums over micro-batches). */
  grads: GPUBufferBinding[];
  maxBatch: number;
  /** Whether backward must give dL/dx (false for a model's first layer, whose input needs none). */
  inputGrad: boolean;
  /** A zero-filled buffer of `floats` 4-byte values, owned (and destroyed) by the executor. */
  alloc(floats: number, label: string): GPUBuffer;
}

export interface Forward {
  /** Where the output [B, ...outShape] is: a stash buffer, or x itself (flatten). */
  y: Binding;
  dispatches: Dispatch[];
}

export interface Backward {
  /** dL/dx [B, ...inShape]: a scratch buffer, dy itself (flatten, positional), or null without inputGrad. */
  dx: Binding | null;
  dispatches: Dispatch[];
}

/**
 * One layer on the GPU, set up for batches up to maxBatch. Buffers a micro-batch must keep from
 * its forward to its backward (the output included) live in a stash, one per micro-batch in
 * flight; backward scratch is the layer's own, shared by the micro-batches (their backwards run
 * one after another on the queue). forward and backward only prepare dispatches: the executor
 * prepares each list once per (stash, batch) and submits it as often as needed.
 */
export interface GpuLayer<S = unknown> {
  /** A fresh stash (buffers sized for maxBatch). */
  stash(label: string): S;
  /** Forward of `batch` examples from x [B, ...inShape]; x stays the same binding for a stash. */
  forward(s: S, x: Binding, batch: number): Forward;
  /** Backward of the stash's forward (same x and batch): from dy [B, ...outShape] to dx. */
  backward(s: S, x: Binding, dy: Binding, batch: number): Backward;
  /** Checks inputs the kernels cannot (token ids); throws LayerError. Only for a range's first layer. */
  checkInput?(x: Float32Array, batch: number): void;
}

export type GpuLayerFactory = (setup: GpuLayerSetup) => GpuLayer;

const factories = new Map<string, GpuLayerFactory>();

export function registerGpuLayer(kind: string, factory: GpuLayerFactory): void {
  factories.set(kind, factory);
}

/** Sets up one layer of a registered kind. */
export function createGpuLayer(setup: GpuLayerSetup): GpuLayer {
  const factory = factories.get(setup.config.kind);
  if (!factory) throw new Error(`no WebGPU implementation of layer kind "${setup.config.kind}"; have: ${[...factories.keys()].sort().join(', ')}`);
  return factory(setup);
}
