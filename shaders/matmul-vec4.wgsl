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

// Row i, columns j0..j0+3 of C; the tails of M and N are skipped.
fn store_row(i: u32, j0: u32, v: vec4f) {
  if (i >= p.m) { return; }
  let at = i * p.n + j0;
  if (j0 + 3u < p.n) {
    c[at] = v.x;
    c[at + 1u] = v.y;
    c[at + 2u] = v.z;
    c[at + 3u] = v.w;
    return;
  }
  c[at] = v.x;
  if (j0 + 1u < p.n) { c[at + 1u] = v.y; }
  if (j0 + 2u < p.n) { c[at + 2u] = v.z; }
}

// The 4x4 sub-block of C at (i0, j0); column r of `blk` is its row r.
fn store_block(i0: u32, j0: u32, blk: mat4x4f) {
  if (j0 >= p.n) { return; }
  store_row(i0, j0, blk[0]);
  store_row(i0 + 1u, j0, blk[1]);
  store_row(i0 + 2u, j0, blk[2]);
  store_row(i0 + 3u, j0, blk[3]);
}

@compute @workgroup_size(WG_X, WG_Y)
fn matmul_reg(@builtin(global_invocation_id) gid: vec3u) {
  let j0 = gid.x * BN;
  let i0 = gid.y * BM;
  if (j0 >= p.n || i0 >= p.m) { return; }
  // accRC: the 4x4 sub-block at rows i0 + 4R, columns j0 + 4C. Column r of each is row r of
  // the sub-block, so one step along K is acc += B-block * A-block (see load_a and load_b).
  var acc00 = mat4x4f();
  var acc01 = mat4x4f();
  var acc10 = mat4x4f();
  var acc11 = mat4x4f();
  let steps = (p.k + 3u) / 4u;
  for (var t = 0u; t < steps; t++) {
    let b0 = load_b(t, j0);
    let a0 = load_a(i0, t);
    acc00 += b0 * a0;
    if (BN == 8u) {
      let b1 = load_b(t, j0 + 4u);
      acc01 += b1 * a0;
      if (BM == 8u) {
        let a1 = load_a(i0 + 4u, t);
        acc10 += b0 * a1;
        acc11 += b1 * a1;
      }
    } else if (BM == 8u) {
      acc10 += b0 * load_a(i0 + 4u, t);
    }
  }
  store_block(i0, j0, acc00);
  if (BN == 8u) { store_block(i0, j0 + 4u, acc01); }
  if (BM == 8u) { store_block(i0 + 4u, j0, acc10); }
  if (BM == 8u && BN == 8u) { store_block(i0 + 4u, j0 + 4u, acc11); }
}
