// The matmul CPU reference against hand-computed values and its backward against central finite
// differences: the oracle has to be right before the WGSL kernels are judged by it.
import { describe, expect, test } from 'vitest';
import { matmulBackwardRef, matmulRef } from '../shared/reference/matmul.ts';
import { createRng, randomUniform } from '../shared/rng.ts';
import { expectClose } from './helpers/check-op.ts';

/** Stored transpose of a row-major [rows, cols] matrix. */
function transpose(x: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = x[r * cols + c];
  return t;
}

describe('matmulRef', () => {
  // A = [[1, 2, 3], [4, 5, 6]] (2x3), B = [[7, 8], [9, 10], [11, 12]] (3x2):
  // C = [[1*7+2*9+3*11, 1*8+2*10+3*12], [4*7+5*9+6*11, 4*8+5*10+6*12]] = [[58, 64], [139, 154]].
  const a = [1, 2, 3, 4, 5, 6];
  const b = [7, 8, 9, 10, 11, 12];
  const c = [58, 64, 139, 154];

  test.for([
    { transA: false, transB: false },
    { transA: true, transB: false },
    { transA: false, transB: true },
    { transA: true, transB: true },
  ])('2x3 · 3x2 by hand, transA=$transA transB=$transB', ({ transA, transB }) => {
    const sa = transA ? transpose(a, 2, 3) : a;
    const sb = transB ? transpose(b, 3, 2) : b;
    expect([...matmulRef(sa, sb, 2, 2, 3, transA, transB)]).toEqual(c);
  });

  test('1x1x1 and an empty inner dimension', () => {
    expect([...matmulRef([3], [-2], 1, 1, 1)]).toEqual([-6]);
    expect([...matmulRef([], [], 2, 3, 0)]).toEqual([0, 0, 0, 0, 0, 0]);
  });

  test('rejects inputs whose length does not match the shape', () => {
    expect(() => matmulRef(a, b, 2, 2, 2)).toThrow(/a has 6 values/);
  });
});

describe('matmulBackwardRef against central finite differences', () => {
  // L = sum(dC ⊙ C) is linear in every single entry of A and of B, so a central difference is
  // exact up to rounding; a large step keeps float32 rounding of C far below the tolerance.
  const EPS = 0.25;
  const TOL = { atol: 1e-4, rtol: 1e-4 };

  function loss(a: Float32Array, b: Float32Array, dc: Float32Array, m: number, n: number, k: number, ta: boolean, tb: boolean): number {
    const c = matmulRef(a, b, m, n, k, ta, tb);
    let sum = 0; // float64
    for (let i = 0; i < c.length; i++) sum += c[i] * dc[i];
    return sum;
  }

  function numericGrad(x: Float32Array, f: () => number): Float64Array {
    const g = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const keep = x[i];
      x[i] = keep + EPS;
      const up = f();
      x[i] = keep - EPS;
      const down = f();
      x[i] = keep;
      g[i] = (up - down) / (2 * EPS);
    }
    return g;
  }

  const shapes = [
    { m: 1, n: 1, k: 1 },
    { m: 3, n: 1, k: 5 },
    { m: 1, n: 7, k: 2 },
    { m: 7, n: 5, k: 3 },
    { m: 2, n: 9, k: 11 },
  ];
  const cases = shapes.flatMap((s) =>
    [false, true].flatMap((transA) => [false, true].map((transB) => ({ ...s, transA, transB }))),
  );

  test.for(cases)('m=$m n=$n k=$k transA=$transA transB=$transB', ({ m, n, k, transA, transB }) => {
    const rng = createRng(1000 + m * 100 + n * 10 + k + (transA ? 7 : 0) + (transB ? 13 : 0));
    const a = randomUniform(rng, m * k);
    const b = randomUniform(rng, k * n);
    const dc = randomUniform(rng, m * n);
    const { da, db } = matmulBackwardRef(a, b, dc, m, n, k, transA, transB);
    const f = () => loss(a, b, dc, m, n, k, transA, transB);
    expectClose(da, numericGrad(a, f), TOL, 'da');
    expectClose(db, numericGrad(b, f), TOL, 'db');
  });
});
