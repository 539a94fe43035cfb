// Plain-loop CPU reference of matmul with transposes, forward and backward: the oracle the WGSL
// kernels in shaders/matmul*.wgsl are tested against. Clarity over speed; nothing GPU-specific here.
//
// Shapes: M rows of the result, N columns, K the inner (summed) dimension. A is stored [M, K]
// row-major, or [K, M] when transA; B is stored [K, N], or [N, K] when transB; C is [M, N].

/** Element (row i, inner p) of op(A), whatever its stored layout. */
function at(a: ArrayLike<number>, i: number, p: number, rows: number, inner: number, trans: boolean): number {
  return trans ? a[p * rows + i] : a[i * inner + p];
}

/**
 * C[M, N] = op(A)·op(B), with op(X) = Xᵀ when the flag is set.
 * a: [M, K] (or [K, M] when transA); b: [K, N] (or [N, K] when transB) -> [M, N].
 * @example matmulRef(new Float32Array([1, 2]), new Float32Array([3, 4]), 1, 1, 2); // [11]
 */
export function matmulRef(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  m: number,
  n: number,
  k: number,
  transA = false,
  transB = false,
): Float32Array {
  checkSizes(a, b, m, n, k);
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) sum += at(a, i, p, m, k, transA) * at(b, p, j, k, n, transB);
      c[i * n + j] = sum;
    }
  }
  return c;
}

/**
 * Gradients of C = op(A)·op(B) given dC, in A's and B's stored layouts:
 * d op(A) = dC·op(B)ᵀ and d op(B) = op(A)ᵀ·dC, transposed back when the operand was stored transposed.
 * a: [M, K] (or [K, M]); b: [K, N] (or [N, K]); dc: [M, N] -> da like a, db like b.
 */
export function matmulBackwardRef(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  dc: ArrayLike<number>,
  m: number,
  n: number,
  k: number,
  transA = false,
  transB = false,
): { da: Float32Array; db: Float32Array } {
  checkSizes(a, b, m, n, k);
  if (dc.length !== m * n) throw new Error(`matmulBackwardRef: dc has ${dc.length} values, expected ${m}x${n}`);
  const da = new Float32Array(m * k);
  const db = new Float32Array(k * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      let sum = 0;
      for (let j = 0; j < n; j++) sum += dc[i * n + j] * at(b, p, j, k, n, transB);
      da[transA ? p * m + i : i * k + p] = sum;
    }
  }
  for (let p = 0; p < k; p++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let i = 0; i < m; i++) sum += at(a, i, p, m, k, transA) * dc[i * n + j];
      db[transB ? j * k + p : p * n + j] = sum;
    }
  }
  return { da, db };
}

function checkSizes(a: ArrayLike<number>, b: ArrayLike<number>, m: number, n: number, k: number): void {
  if (a.length !== m * k) throw new Error(`matmul reference: a has ${a.length} values, expected ${m}x${k}`);
  if (b.length !== k * n) throw new Error(`matmul reference: b has ${b.length} values, expected ${k}x${n}`);
}
