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

// op(A) rows i0..i0+3 at k = 4t..4t+3, as the columns of a matrix (column r = row i0 + r).
fn load_a(i0: u32, t: u32) -> mat4x4f {
  if (TRANS_A) {
    // Stored [K, M]: one vec4 holds rows i0..i0+3 at one k (M % 4 == 0, i0 % 4 == 0).
    let m4 = p.m / 4u;
    let col = min(i0 / 4u, m4 - 1u);
    var l: mat4x4f;
    for (var q = 0u; q < 4u; q++) {
      let kk = 4u * t + q;
      l[q] = select(vec4f(0.0), a[min(kk, p.k - 1u) * m4 + col], kk < p.k);
    }
    return transpose(l);
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
  var l: mat4x4f;
  for (var q = 0u; q < 4u; q++) {
    let kk = 4u * t + q;
    l[q] = select(vec4f(0.0), b[min(kk, p.k - 1u) * n4 + col], kk < p.k);
  }
  return l;
}

// Row r of a 4x4 sub-block of C starting at (i0, j0); the tails of M and N are skipped.
fn store_row(i: u32, j0: u32, v: vec4f) {
  if (i >= p.m) { return; }
  let base = i * p.n;
  for (var cc = 0u; cc < 4u; cc++) {
    if (j0 + cc < p.n) { c[base + j0 + cc] = v[cc]; }
  }
}

@compute @workgroup_size(WG_X, WG_Y)
fn matmul_reg(@builtin(global_invocation_id) gid: vec3u) {
  let j0 = gid.x * BN;
  let i0 = gid.y * BM;
  if (j0 >= p.n || i0 >= p.m) { return; }
  // acc[bi * 2 + bj]: the 4x4 sub-block at rows i0 + 4 bi, columns j0 + 4 bj; its column r is
  // row r of that sub-block (so acc += B-block * A-block, see load_a and load_b).
  var acc: array<mat4x4f, 4>;
  var bl: array<mat4x4f, 2>;
  let steps = (p.k + 3u) / 4u;
  for (var t = 0u; t < steps; t++) {
    for (var bj = 0u; bj < BN / 4u; bj++) {
      bl[bj] = load_b(t, j0 + 4u * bj);
    }
    for (var bi = 0u; bi < BM / 4u; bi++) {
      let al = load_a(i0 + 4u * bi, t);
      for (var bj = 0u; bj < BN / 4u; bj++) {
        acc[bi * 2u + bj] += bl[bj] * al;
      }
    }
  }
  for (var bi = 0u; bi < BM / 4u; bi++) {
    for (var bj = 0u; bj < BN / 4u; bj++) {
      for (var r = 0u; r < 4u; r++) {
        store_row(i0 + 4u * bi + r, j0 + 4u * bj, acc[bi * 2u + bj][r]);
      }
    }
  }
}
