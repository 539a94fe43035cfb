// Typed wrapper for shaders/add.wgsl: out = a + b with b repeated along a (residual add, learned
// positions added to each example, a bias added to each row), or out += b in place.
// The references are shared/layers/residual.ts and shared/layers/positional.ts.
import source from '../../../shaders/add.wgsl?raw';
import { linearWorkgroups, type Kernel } from '../kernel.ts';
import type { Binding, Dispatch, Gpu } from '../runtime.ts';

const WG = 256;

export function addKernel(inPlace: boolean): Kernel {
  return {
    name: inPlace ? 'add_inplace' : 'add',
    source,
    entryPoint: inPlace ? 'add_inplace' : 'add',
    bindings: inPlace ? ['uniform', 'read', 'storage'] : ['uniform', 'read', 'storage', 'read'],
    overrides: { WG },
  };
}

export interface AddArgs {
  /** f32[n]. */
  a: Binding;
  /** f32[nb], repeated n / nb times. */
  b: Binding;
  /** f32[n] output; must not overlap a or b. */
  out: Binding;
  n: number;
  /** Length of b (default n); n must be a multiple of it. */
  nb?: number;
}

/**
 * out[i] = a[i] + b[i % nb]. a: f32[n], b: f32[nb] -> out: f32[n].
 * @example // residual: y = x + f(x), all [B, T, C]
 *   add(gpu, { a: x, b: fx, out: y, n: B * T * C });
 * @example // learned positions: y[b] = x[b] + P for P [T, C]
 *   add(gpu, { a: x, b: pos, out: y, n: B * T * C, nb: T * C });
 */
export function add(gpu: Gpu, args: AddArgs): Dispatch {
  const nb = checkShape(args.n, args.nb);
  return gpu.prepare({
    kernel: addKernel(false),
    buffers: [args.b, args.out, args.a],
    uniforms: new Uint32Array([args.n, nb]),
    workgroups: linearWorkgroups(args.n, WG),
  });
}

export interface AddInPlaceArgs {
  /** f32[n], added to in place. */
  out: Binding;
  /** f32[nb], repeated n / nb times; must not overlap out. */
  b: Binding;
  n: number;
  nb?: number;
}

/**
 * out[i] += b[i % nb]. out: f32[n], b: f32[nb].
 * @example // a bias after a matmul: qkv[B*T, 3C] += bIn[3C]
 *   addInPlace(gpu, { out: qkv, b: bIn, n: B * T * 3 * C, nb: 3 * C });
 */
export function addInPlace(gpu: Gpu, args: AddInPlaceArgs): Dispatch {
  const nb = checkShape(args.n, args.nb);
  return gpu.prepare({
    kernel: addKernel(true),
    buffers: [args.b, args.out],
    uniforms: new Uint32Array([args.n, nb]),
    workgroups: linearWorkgroups(args.n, WG),
  });
}

function checkShape(n: number, nb = n): number {
  if (!Number.isInteger(n) || !Number.isInteger(nb) || n < 1 || nb < 1 || n % nb !== 0 || n >= 2 ** 32) {
    throw new Error(`add needs positive integer sizes with n a multiple of nb, got n=${n} nb=${nb}`);
  }
  return nb;
}
