// Typed wrapper for shaders/gather.wgsl: picks a batch of rows of a GPU-resident uint8 dataset.
import source from '../../../shaders/gather.wgsl?raw';
import { linearWorkgroups, type Kernel } from '../kernel.ts';
import type { Binding, Dispatch, Gpu } from '../runtime.ts';

const WG = 256;

export const gatherKernel: Kernel = {
  name: 'gather_rows',
  source,
  entryPoint: 'gather_rows',
  bindings: ['read', 'read', 'read', 'storage', 'storage', 'uniform'],
  overrides: { WG },
};

export interface GatherArgs {
  /** u8[N*F] packed into u32 words (see packBytes). */
  data: Binding;
  /** u8[N] packed into u32 words. */
  labels: Binding;
  /** u32[S] example order; batch b of a step reads order[(start + b) % S]. */
  order: Binding;
  orderLength: number;
  /** f32[B, F] output. */
  x: Binding;
  /** u32[B] output. */
  y: Binding;
  batch: number;
  features: number;
  count: number;
}

export function gatherParams(a: Pick<GatherArgs, 'batch' | 'features' | 'count' | 'orderLength'>, start: number): Uint32Array {
  return new Uint32Array([a.batch, a.features, start, a.count, a.orderLength, 0, 0, 0]);
}

/** Prepare once; before each submit, set the step's first position with setGatherStart. */
export function gather(gpu: Gpu, a: GatherArgs): Dispatch {
  return gpu.prepare({
    kernel: gatherKernel,
    buffers: [a.data, a.labels, a.order, a.x, a.y],
    uniforms: gatherParams(a, 0),
    workgroups: linearWorkgroups(a.batch * a.features, WG),
  });
}

/** Packs bytes 4 to a u32 word (little-endian), padding the tail with zeros. */
export function packBytes(bytes: Uint8Array): Uint32Array {
  const out = new Uint32Array(Math.ceil(bytes.length / 4));
  new Uint8Array(out.buffer).set(bytes);
  return out;
}
