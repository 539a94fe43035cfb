// One comparison helper for every kernel test: element-wise |a - e| <= atol + rtol * |e|,
// with a failure message that names the worst element (tinygrad's helper_test_op).
import { expect } from 'vitest';

export interface Tolerance {
  atol: number;
  rtol: number;
}

export interface Comparison {
  ok: boolean;
  maxAbs: number;
  maxRel: number;
  worst: number;
  message: string;
}

export function compare(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance): Comparison {
  if (actual.length !== expected.length) {
    return { ok: false, maxAbs: Infinity, maxRel: Infinity, worst: -1, message: `length ${actual.length}, expected ${expected.length}` };
  }
  let maxAbs = 0;
  let maxRel = 0;
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const abs = Math.abs(a - e);
    if (!Number.isFinite(a) && a !== e) return { ok: false, maxAbs: Infinity, maxRel: Infinity, worst: i, message: `element ${i} is ${a}, expected ${e}` };
    const excess = abs - (tol.atol + tol.rtol * Math.abs(e));
    if (abs > maxAbs) maxAbs = abs;
    const rel = abs / Math.max(Math.abs(e), 1e-30);
    if (abs > tol.atol && rel > maxRel) maxRel = rel;
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
  }
  const ok = worst < 0;
  const message = ok
    ? `max abs err ${maxAbs.toExponential(2)}`
    : `element ${worst}: got ${actual[worst]}, expected ${expected[worst]} (max abs err ${maxAbs.toExponential(2)}, atol ${tol.atol}, rtol ${tol.rtol})`;
  return { ok, maxAbs, maxRel, worst, message };
}

/** Asserts closeness; `what` names the output in the failure. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance, what = 'output'): void {
  const c = compare(actual, expected, tol);
  expect(c.ok, `${what}: ${c.message}`).toBe(true);
}

type Outputs = Record<string, ArrayLike<number>>;

/**
 * Runs the GPU version and the CPU reference of one op and compares every named output.
 * @example await checkOp({ ref: () => ({ c: matmulRef(a, b, m, n, k) }), gpu: async () => ({ c: await run() }), tol: { atol: 1e-4, rtol: 1e-4 } });
 */
export async function checkOp(args: { ref: () => Outputs; gpu: () => Promise<Outputs>; tol: Tolerance | Record<string, Tolerance> }): Promise<void> {
  const expected = args.ref();
  const actual = await args.gpu();
  for (const name of Object.keys(expected)) {
    const tol = 'atol' in args.tol ? (args.tol as Tolerance) : (args.tol as Record<string, Tolerance>)[name];
    expect(actual[name], `gpu produced no "${name}"`).toBeDefined();
    expectClose(actual[name], expected[name], tol, name);
  }
}
