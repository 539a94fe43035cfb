// Typed wrappers for shaders/quantize.wgsl: gradient compression to block-wise int8 and to f16,
// and back. The CPU reference is shared/reference/quantize.ts.
//
// The GPU's pack2x16float may round differently from round-to-nearest-even (WGSL lets it pick
// either neighbour) and may flush f16 subnormals (|x| < 2^-14) to zero, so GPU and reference
// halves can differ by 1 ulp, and by up to 2^-14 absolute below the normal range. inf, NaN and
// values past 65504 are converted by hand and match the reference exactly.
import source from '../../../shaders/quantize.wgsl?raw';
import { linearWorkgroups, type Kernel } from '../kernel.ts';
import type { Binding, Dispatch, Gpu } from '../runtime.ts';

/** Threads of a quantize workgroup (one workgroup per block): a power of two, at most 64. */
function blockThreads(block: number): number {
  return Math.min(64, 2 ** Math.ceil(Math.log2(block)));
}
/** Workgroup size of the elementwise kernels. */
const WG = 256;
export const DEFAULT_BLOCK = 256;
export const MAX_BLOCK = 1024;

function checkBlock(block: number): void {
  if (!Number.isInteger(block) || block < 1 || block > MAX_BLOCK) {
    throw new Error(`int8 block must be an integer in [1, ${MAX_BLOCK}], got ${block}`);
  }
}

function checkCount(op: string, count: number): void {
  if (!Number.isInteger(count) || count < 1) throw new Error(`${op} needs a positive integer count, got ${count}`);
}

export interface QuantizeInt8Args {
  /** f32[N]. */
  x: Binding;
  /** i8[N] output, packed 4 per u32 (u32[ceil(N/4)]); padding bytes after N are zeroed. */
  q: Binding;
  /** f32[ceil(N/block)] output: maxabs / 127 of each block (0 for an all-zero block). */
  scales: Binding;
  count: number;
  /** Values per scale, 1..1024 (default 256). */
  block?: number;
}

/**
 * x f32[N] -> q i8[N] (packed), scales f32[ceil(N/block)]; one workgroup per block.
 * @example quantizeInt8(gpu, { x: grads, q, scales, count: n }); // then read q's bytes as Int8Array
 */
export function quantizeInt8(gpu: Gpu, a: QuantizeInt8Args): Dispatch {
  const block = a.block ?? DEFAULT_BLOCK;
  checkBlock(block);
  checkCount('quantizeInt8', a.count);
  return gpu.prepare({
    kernel: { name: 'quantize_int8', source, entryPoint: 'quantize_int8', bindings: ['uniform', 'read', 'storage', 'storage'], overrides: { WG: blockThreads(block), BLOCK: block } },
    buffers: [a.x, a.q, a.scales],
    uniforms: new Uint32Array([a.count]),
    workgroups: linearWorkgroups(Math.ceil(a.count / block), 1),
  });
}

export interface DequantizeInt8Args {
  /** i8[N] packed 4 per u32. */
  q: Binding;
  /** f32[ceil(N/block)]. */
  scales: Binding;
  /** f32[N] output. */
  x: Binding;
  count: number;
  block?: number;
}

/**
 * q i8[N] (packed), scales f32[ceil(N/block)] -> x f32[N] = q · scale of its block.
 * @example dequantizeInt8(gpu, { q, scales, x: grads, count: n }); // block must match quantizeInt8's
 */
export function dequantizeInt8(gpu: Gpu, a: DequantizeInt8Args): Dispatch {
  const block = a.block ?? DEFAULT_BLOCK;
  checkBlock(block);
  checkCount('dequantizeInt8', a.count);
  return gpu.prepare({
    kernel: { name: 'dequantize_int8', source, entryPoint: 'dequantize_int8', bindings: ['uniform', 'read', 'read', 'storage'], overrides: { WG, BLOCK: block } },
    buffers: [a.q, a.scales, a.x],
    uniforms: new Uint32Array([a.count]),
    workgroups: linearWorkgroups(a.count, WG),
  });
}

export interface PackF16Args {
  /** f32[N]. */
  x: Binding;
  /** u32[ceil(N/2)] output: half 2i in the low 16 bits of word i; a ragged tail padded with 0. */
  packed: Binding;
  count: number;
}

/**
 * x f32[N] -> packed u32[ceil(N/2)] (binary16 pairs).
 * @example gpu.submit([packF16(gpu, { x: grads, packed, count: n })]); // read packed as Uint16Array
 */
export function packF16(gpu: Gpu, a: PackF16Args): Dispatch {
  checkCount('packF16', a.count);
  return gpu.prepare({
    kernel: { name: 'pack_f16', source, entryPoint: 'pack_f16', bindings: ['uniform', 'read', 'storage'], overrides: { WG } },
    buffers: [a.x, a.packed],
    uniforms: new Uint32Array([a.count]),
    workgroups: linearWorkgroups(Math.ceil(a.count / 2), WG),
  });
}

export interface UnpackF16Args {
  /** u32[ceil(N/2)]. */
  packed: Binding;
  /** f32[N] output. */
  x: Binding;
  count: number;
}

/**
 * packed u32[ceil(N/2)] -> x f32[N].
 * @example gpu.submit([unpackF16(gpu, { packed, x: delta, count: n })]);
 */
export function unpackF16(gpu: Gpu, a: UnpackF16Args): Dispatch {
  checkCount('unpackF16', a.count);
  return gpu.prepare({
    kernel: { name: 'unpack_f16', source, entryPoint: 'unpack_f16', bindings: ['uniform', 'read', 'storage'], overrides: { WG } },
    buffers: [a.packed, a.x],
    uniforms: new Uint32Array([a.count]),
    workgroups: linearWorkgroups(a.count, WG),
  });
}
