// The fast CPU implementation of each layer kind, registered by kind the way a backend registers
// its kernels; a kind without one here runs its plain-loop reference (shared/layers/<kind>.ts),
// which is already a single pass for the elementwise, pooling, normalisation and lookup kinds.
// The executor (shared/layers/sequence.ts forwardRange/backwardRange) takes `cpuKernels`.
import { layerKind } from '../layers/layer.ts';
import type { LayerKernels } from '../layers/sequence.ts';

const fast = new Map<string, LayerKernels>();

export function registerCpuKernels(kind: string, k: LayerKernels): void {
  fast.set(kind, k);
}

/** @example forwardRange(model, params, x, batch, { kernels: cpuKernels }); */
export function cpuKernels(kind: string): LayerKernels {
  return fast.get(kind) ?? layerKind(kind);
}
