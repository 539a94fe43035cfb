// Matmul, register-blocked, vec4 loads: C[M, N] = op(A)·op(B) with op(X) = Xᵀ when TRANS_X.
// Each invocation computes a BM x BN block of C in registers (4x4 sub-blocks as mat4x4f) from
// vec4 loads and never touches workgroup memory or barriers: fewer, wider loads are what pay
// where bounds checks are costly (SwiftShader), and the compiler keeps the block in registers.
// Needs the stored row length of A and of B to be a multiple of 4 (K or M for A, N or K for B);
// shaders/matmul.wgsl has the same kernel with scalar loads for every other shape.
// Rows and columns past M, N are clamped on load and never stored; the K tail (only possible
// when K is not a row length, i.e. Aᵀ·B) is zeroed.

struct Params {
  m: u32,
  n: u32,
  k: u32,
  pad: u32,
}

@group(0) @binding(0) var<storage, read> a: array<vec4f>;        // [M, K/4], or [K, M/4] when TRANS_A
@group(0) @binding(1) var<storage, read> b: array<vec4f>;        // [K, N/4], or [N, K/4] when TRANS_B
@group(0) @binding(2) var<storage, read_write> c: array<f32>;    // [M, N]
@group(0) @binding(3) var<uniform> p: Params;

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override WG_X: u32 = 8;
override WG_Y: u32 = 8;
override BM: u32 = 8; // rows of C per invocation: 4 or 8
override BN: u32 = 4; // columns of C per invocation: 4 or 8

// Everything below is written out without loops over local arrays or matrix columns: indexing
// them with a loop counter makes SwiftShader (which runs 4 invocations per SIMD lane group) spill
// the block to memory, about 5x slower. Overrides fold to constants, so the layout branches cost
// nothing at run time.

// op(A) rows i0..i0+3 at k = 4t..4t+3, as the columns of a matrix (column r = row i0 + r).
fn load_a(i0: u32, t: u32) -> mat4x4f {
  if (TRANS_A) {
    // Stored [K, M]: one vec4 holds rows i0..i0+3 at one k (M % 4 == 0, i0 % 4 == 0).
    let m4 = p.m / 4u;
    let col = min(i0 / 4u, m4 - 1u);
    let kk = 4u * t;
    let last = p.k - 1u;
    return transpose(mat4x4f(
      select(vec4f(0.0), a[min(kk, last) * m4 + col], kk < p.k),
      select(vec4f(0.0), a[min(kk + 1u, last) * m4 + col], kk + 1u < p.k),
      select(vec4f(0.0), a[min(kk + 2u, last) * m4 + col], kk + 2u < p.k),
      select(vec4f(0.0), a[min(kk + 3u, last) * m4 + col], kk + 3u < p.k),
    ));
  }
  // Stored [M, K] with K % 4 == 0: one vec4 is one row's four k values.
  let k4 = p.k / 4u;
  let last = p.m - 1u;
  return mat4x4f(
    a[min(i0, last) * k4 + t],
    a[min(i0 + 1u, last) * k4 + t],
    a[min(i0 + 2u, last) * k4 + t],
    a[min(i0 + 3u, last) * k4 + t],
  );
}

// op(B) rows k = 4t..4t+3 at columns j0..j0+3, as the columns of a matrix (column q = k 4t + q).
fn load_b(t: u32, j0: u32) -> mat4x4f {
  if (TRANS_B) {
    // Stored [N, K] with K % 4 == 0: one vec4 is one column's four k values.
    let k4 = p.k / 4u;
    let last = p.n - 1u;
    return transpose(mat4x4f(
      b[min(j0, last) * k4 + t],
      b[min(j0 + 1u, last) * k4 + t],
      b[min(j0 + 2u, last) * k4 + t],
      b[min(j0 + 3u, last) * k4 + t],
    ));
  }
  // Stored [K, N] with N % 4 == 0: one vec4 holds columns j0..j0+3 at one k.
  let n4 = p.n / 4u;
  let col = min(j0 / 4u, n4 - 1u);
  let kk = 4u * t;
  let last = p.k - 1u;
  return mat4x4f(
    select(vec4f(0.0), b[min(kk, last) * n4 + col], kk < p.k),
    select(vec4f(0.0), b[min(kk + 1u, last) * n4 + col], kk + 1u < p.k),
    select(vec4f(0.0), b[min(kk + 2u, last) * n4 + col], kk + 2u < p.k),
    select(vec4f(0.0), b[min(kk + 3u, last) * n4 + col], kk + 3u < p.k),
  );
}

// store_row, store_block and the matmul_reg entry point follow from shaders/matmul-reg.wgsl.
