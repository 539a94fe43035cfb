// A kernel descriptor: what one WGSL entry point needs to be compiled and bound. Typed op
// wrappers (client/gpu/ops/) build these; the pipeline cache compiles each once.

/** How a binding is declared in WGSL, in @group(0) @binding(i) order. */
export type BindingKind = 'read' | 'storage' | 'uniform';

export interface Kernel {
  /** Label for the module and pipeline, e.g. 'matmul_nt'. */
  name: string;
  /** WGSL source (a shaders/*.wgsl file imported with ?raw). */
  source: string;
  entryPoint: string;
  /** One entry per @binding, in order: 'read' = storage read, 'storage' = read_write, 'uniform'. */
  bindings: readonly BindingKind[];
  /** Values for WGSL `override` constants (booleans as 0/1). */
  overrides?: Readonly<Record<string, number>>;
}

/** Cache key: same source, entry point and overrides give the same pipeline. */
export function kernelKey(k: Kernel): string {
  const o = k.overrides ? Object.keys(k.overrides).sort().map((n) => `${n}=${k.overrides![n]}`).join(',') : '';
  return `${k.name}|${k.entryPoint}|${o}|${k.source.length}:${hashString(k.source)}`;
}

/** FNV-1a, enough to tell sources apart in a cache key. */
export function hashString(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16);
}

/** Max workgroups in one dimension that WebGPU guarantees. */
export const MAX_WORKGROUPS_PER_DIM = 65535;

/**
 * Workgroup counts for `invocations` threads in 1-D groups of `size`, folded into y when x
 * would pass the per-dimension limit. Kernels recover the flat index as
 * `gid.x + gid.y * num_workgroups.x * size`.
 */
export function linearWorkgroups(invocations: number, size: number): [number, number, number] {
  const groups = Math.max(1, Math.ceil(invocations / size));
  if (groups <= MAX_WORKGROUPS_PER_DIM) return [groups, 1, 1];
  const y = Math.ceil(groups / MAX_WORKGROUPS_PER_DIM);
  return [Math.ceil(groups / y), y, 1];
}
