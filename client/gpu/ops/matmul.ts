// Typed wrapper for the matmul kernel family (shaders/matmul.wgsl, shaders/matmul-vec4.wgsl):
// C[M, N] = op(A)·op(B), the one matrix product the model executor uses, forward and backward.
// Which kernel runs is a variant name; matmul-tuner.ts times them on this adapter and picks one.
import regSource from '../../../shaders/matmul-reg.wgsl?raw';
import scalarLoads from '../../../shaders/matmul.wgsl?raw';
import vec4Loads from '../../../shaders/matmul-vec4.wgsl?raw';
import { MAX_WORKGROUPS_PER_DIM, type Kernel } from '../kernel.ts';
import { chosenMatmulVariant } from '../matmul-tuner.ts';
import type { Binding, Dispatch, Gpu } from '../runtime.ts';

/** Each loader file followed by the shared register-blocked stores and entry point. */
const scalarSource = `${scalarLoads}\n${regSource}`;
const vec4Source = `${vec4Loads}\n${regSource}`;

/**
 * `tiled`: one output per invocation, TILE x TILE tiles of A and B in workgroup memory (the
 * classic kernel).
 * `tiled-reg`: 8x8 invocations stage 32x32 tiles of A and B in workgroup memory and each computes
 * a 4x4 block from them (the usual winner where workgroup memory is real on-chip memory).
 * `reg4x4`, `reg8x4`, `reg8x8`: each invocation keeps a BM x BN block of C in registers, no
 * workgroup memory or barriers; vec4 loads when both operands' rows are a multiple of 4 long,
 * scalar loads otherwise (fastest on SwiftShader, where barriers and bounds checks are costly).
 */
export type MatmulVariant = string;

export const MATMUL_VARIANTS: readonly MatmulVariant[] = ['tiled', 'tiled-reg', 'reg4x4', 'reg8x4', 'reg8x8'];

/** Used until the tuner has chosen for this adapter: the fastest on SwiftShader in bench/. */
export const DEFAULT_MATMUL_VARIANT: MatmulVariant = 'reg8x8';

interface Blocking {
  /** Invocations per workgroup along N (x) and M (y). */
  wg: [number, number];
  /** Outputs per invocation along M (rows) and N (columns). */
  block: [number, number];
}

const TILE = 16;
const RT = 8;
const BLOCKING: Record<string, Blocking> = {
  tiled: { wg: [TILE, TILE], block: [1, 1] },
  'tiled-reg': { wg: [RT, RT], block: [4, 4] },
  reg4x4: { wg: [8, 8], block: [4, 4] },
  reg8x4: { wg: [8, 8], block: [8, 4] },
  reg8x8: { wg: [8, 8], block: [8, 8] },
};

export interface MatmulShape {
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
}

export interface MatmulArgs extends MatmulShape {
  /** f32[M, K], or [K, M] when transA. */
  a: Binding;
  /** f32[K, N], or [N, K] when transB. */
  b: Binding;
  /** f32[M, N] output (overwritten, or added to with `accumulate`). */
  c: Binding;
  variant?: MatmulVariant;
  /** C += op(A)·op(B): sums a weight gradient over micro-batches without a copy. */
  accumulate?: boolean;
}

/** True when both operands' stored rows are a multiple of 4 floats long (vec4 loads are safe). */
export function vec4Aligned(s: MatmulShape): boolean {
  const rowA = s.transA ? s.m : s.k;
  const rowB = s.transB ? s.k : s.n;
  return rowA % 4 === 0 && rowB % 4 === 0;
}

/**
 * The kernel descriptor `matmul()` compiles for this variant and layout (for shader warm-up).
 * Register variants come in a vec4 and a scalar-load flavour; give the shape to get the one that
 * shape uses (without it, the vec4 flavour, which covers the usual aligned layer sizes).
 */
export function matmulKernel(variant: MatmulVariant, transA = false, transB = false, shape?: MatmulShape, accumulate = false): Kernel {
  // The overwriting kernels keep their names and overrides: the accumulating ones are extra.
  const layout = `${transA ? 't' : 'n'}${transB ? 't' : 'n'}${accumulate ? '_acc' : ''}`;
  const flags = { TRANS_A: transA ? 1 : 0, TRANS_B: transB ? 1 : 0, ...(accumulate ? { ACCUMULATE: 1 } : {}) };
  const bindings = ['read', 'read', 'storage', 'uniform'] as const;
  if (variant === 'tiled') {
    return { name: `matmul_tiled_${layout}`, source: scalarSource, entryPoint: 'matmul_tiled', bindings, overrides: { ...flags, TILE } };
  }
  if (variant === 'tiled-reg') {
    return { name: `matmul_tiled-reg_${layout}`, source: scalarSource, entryPoint: 'matmul_tiled_reg', bindings, overrides: { ...flags, RT } };
  }
  const blocking = Object.hasOwn(BLOCKING, variant) ? BLOCKING[variant] : undefined;
  if (!blocking) throw new Error(`unknown matmul variant "${variant}" (known: ${MATMUL_VARIANTS.join(', ')})`);
  const { wg, block } = blocking;
  const vec4 = shape ? vec4Aligned({ ...shape, transA, transB }) : true;
  return {
    name: `matmul_${variant}_${layout}${vec4 ? '_vec4' : ''}`,
    source: vec4 ? vec4Source : scalarSource,
    entryPoint: 'matmul_reg',
    bindings,
    overrides: { ...flags, WG_X: wg[0], WG_Y: wg[1], BM: block[0], BN: block[1] },
  };
}

/**
 * Prepares C = op(A)·op(B) (or C += op(A)·op(B) with `accumulate`) once; submit the returned
 * dispatch as often as needed.
 * @example
 *   // y[B, O] = x[B, I] · W[O, I]ᵀ
 *   const fwd = matmul(gpu, { a: x, b: w, c: y, m: B, n: O, k: I, transB: true });
 *   gpu.submit([fwd]);
 */
export function matmul(gpu: Gpu, args: MatmulArgs): Dispatch {
  const { m, n, k } = args;
  for (const [name, v] of Object.entries({ m, n, k })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`matmul: ${name} must be a positive integer, got ${v}`);
  }
  const transA = !!args.transA;
  const transB = !!args.transB;
  const variant = args.variant ?? chosenMatmulVariant(gpu, transA, transB);
  const kernel = matmulKernel(variant, transA, transB, args, !!args.accumulate);
  const { wg, block } = BLOCKING[variant];
  const workgroups: [number, number] = [Math.ceil(n / (wg[0] * block[1])), Math.ceil(m / (wg[1] * block[0]))];
  if (Math.max(...workgroups) > MAX_WORKGROUPS_PER_DIM) {
    throw new Error(`matmul: ${m}x${n} needs ${workgroups.join('x')} workgroups, past the per-dimension limit ${MAX_WORKGROUPS_PER_DIM}`);
  }
  return gpu.prepare({ kernel, buffers: [args.a, args.b, args.c], uniforms: new Uint32Array([m, n, k, 0]), workgroups });
}
