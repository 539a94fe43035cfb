// Typed wrapper for shaders/reduce.wgsl: column sums (bias gradients) and per-row sum / mean /
// max, optionally accumulated into the output. The CPU reference is shared/reference/reduce.ts.
import source from '../../../shaders/reduce.wgsl?raw';
import type { ReduceOp } from '../../../shared/reference/reduce.ts';
import { linearWorkgroups, type Kernel } from '../kernel.ts';
import type { Binding, Dispatch, Gpu } from '../runtime.ts';

export type { ReduceOp };

const COL_WG = 64;
const OP_CODE: Record<ReduceOp, number> = { sum: 0, mean: 1, max: 2 };

/** Threads per column: 4 striding over the rows once there are enough rows to share, else 1. */
export function colSumKernel(rows: number, accumulate: boolean): Kernel {
  return {
    name: accumulate ? 'col_sum_acc' : 'col_sum',
    source,
    entryPoint: 'col_sum',
    bindings: ['uniform', 'read', 'storage'],
    overrides: { COL_WG, ROW_WG: rows >= 64 ? 4 : 1, ACCUMULATE: accumulate ? 1 : 0 },
  };
}

/** Threads per row: the next power of two of C, between 32 and 256. */
export function reduceKernel(op: ReduceOp, cols: number, accumulate: boolean): Kernel {
  if (!(op in OP_CODE)) throw new Error(`unknown reduction ${op}`);
  const wg = Math.min(256, Math.max(32, 2 ** Math.ceil(Math.log2(cols))));
  return {
    name: `reduce_${op}${accumulate ? '_acc' : ''}`,
    source,
    entryPoint: 'reduce_rows',
    bindings: ['uniform', 'read', 'storage'],
    overrides: { WG: wg, OP: OP_CODE[op], ACCUMULATE: accumulate ? 1 : 0 },
  };
}

export interface ColSumArgs {
  /** f32[B, C]. */
  x: Binding;
  /** f32[C] output. */
  out: Binding;
  rows: number;
  cols: number;
  /** Add into out instead of overwriting it. */
  accumulate?: boolean;
}

/**
 * out[c] (+)= Σ_r x[r, c]. x: f32[B, C] -> out: f32[C].
 * @example colSum(gpu, { x: dz, out: biasGrad, rows: 64, cols: 128 });
 */
export function colSum(gpu: Gpu, a: ColSumArgs): Dispatch {
  checkShape('colSum', a.rows, a.cols);
  return gpu.prepare({
    kernel: colSumKernel(a.rows, !!a.accumulate),
    buffers: [a.x, a.out],
    uniforms: new Uint32Array([a.rows, a.cols]),
    workgroups: linearWorkgroups(a.cols, COL_WG),
  });
}

export interface ReduceArgs {
  /** f32[B, C]. */
  x: Binding;
  /** f32[B] output. */
  out: Binding;
  rows: number;
  cols: number;
  op: ReduceOp;
  /** Add into out instead of overwriting it (e.g. sum a loss over steps without a readback). */
  accumulate?: boolean;
}

/**
 * out[r] (+)= op over c of x[r, c], one workgroup per row. x: f32[B, C] -> out: f32[B].
 * @example reduce(gpu, { x: lossRows, out: lossSum, rows: 1, cols: 64, op: 'mean', accumulate: true });
 */
export function reduce(gpu: Gpu, a: ReduceArgs): Dispatch {
  checkShape('reduce', a.rows, a.cols);
  return gpu.prepare({
    kernel: reduceKernel(a.op, a.cols, !!a.accumulate),
    buffers: [a.x, a.out],
    uniforms: new Uint32Array([a.rows, a.cols]),
    workgroups: linearWorkgroups(a.rows, 1),
  });
}

function checkShape(op: string, rows: number, cols: number): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1) {
    throw new Error(`${op} needs positive integer rows and cols, got ${rows}x${cols}`);
  }
}
