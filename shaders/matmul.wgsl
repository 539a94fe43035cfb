// Matmul with scalar loads, any shape: C[M, N] = op(A)·op(B) with op(X) = Xᵀ when TRANS_X.
// Two kernels: matmul_tiled, the classic workgroup-memory tiling (one output per invocation,
// TILE x TILE tiles of A and B staged per step along K), and matmul_reg, the register-blocked
// kernel of shaders/matmul-vec4.wgsl fed by scalar loads, for rows whose length is not a
// multiple of 4 (bindings then only guarantee 4-byte sizes, so no vec4 view is safe).
// Out-of-range rows, columns and k are never read past: tiles take zeros, register blocks clamp
// the index and zero the k tail.

struct Params {
  m: u32,
  n: u32,
  k: u32,
  pad: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;          // [M, K], or [K, M] when TRANS_A
@group(0) @binding(1) var<storage, read> b: array<f32>;          // [K, N], or [N, K] when TRANS_B
@group(0) @binding(2) var<storage, read_write> c: array<f32>;    // [M, N]
@group(0) @binding(3) var<uniform> p: Params;

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override TILE: u32 = 16;      // matmul_tiled: workgroup TILE x TILE, tiles TILE x TILE
override WG_X: u32 = 8;       // matmul_reg: workgroup size
override WG_Y: u32 = 8;
override BM: u32 = 8;         // matmul_reg: rows of C per invocation, 4 or 8
override BN: u32 = 4;         // matmul_reg: columns of C per invocation, 4 or 8

// op(A)[i, kk] and op(B)[kk, j] for indices known to be in range.
fn a_at(i: u32, kk: u32) -> f32 {
  if (TRANS_A) { return a[kk * p.m + i]; }
  return a[i * p.k + kk];
}

fn b_at(kk: u32, j: u32) -> f32 {
  if (TRANS_B) { return b[j * p.k + kk]; }
  return b[kk * p.n + j];
}

// ---- matmul_tiled ----------------------------------------------------------------------------

var<workgroup> tile_a: array<f32, TILE * TILE>; // [row in tile, k in tile]
var<workgroup> tile_b: array<f32, TILE * TILE>; // [k in tile, column in tile]

@compute @workgroup_size(TILE, TILE)
fn matmul_tiled(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row = wg.y * TILE + lid.y;
  let col = wg.x * TILE + lid.x;
  var sum = 0.0;
  for (var t = 0u; t < p.k; t += TILE) {
    // Neighbouring invocations (lid.x) load neighbouring addresses, whatever the layout.
    if (TRANS_A) {
      let i = wg.y * TILE + lid.x;
      let kk = t + lid.y;
      tile_a[lid.x * TILE + lid.y] = select(0.0, a_at(min(i, p.m - 1u), min(kk, p.k - 1u)), i < p.m && kk < p.k);
    } else {
      let kk = t + lid.x;
      tile_a[lid.y * TILE + lid.x] = select(0.0, a_at(min(row, p.m - 1u), min(kk, p.k - 1u)), row < p.m && kk < p.k);
    }
    if (TRANS_B) {
      let j = wg.x * TILE + lid.y;
      let kk = t + lid.x;
      tile_b[lid.x * TILE + lid.y] = select(0.0, b_at(min(kk, p.k - 1u), min(j, p.n - 1u)), j < p.n && kk < p.k);
    } else {
      let kk = t + lid.y;
      tile_b[lid.y * TILE + lid.x] = select(0.0, b_at(min(kk, p.k - 1u), min(col, p.n - 1u)), col < p.n && kk < p.k);
    }
    workgroupBarrier();
    for (var i = 0u; i < TILE; i++) {
      sum += tile_a[lid.y * TILE + i] * tile_b[i * TILE + lid.x];
    }
    workgroupBarrier();
  }
  if (row < p.m && col < p.n) {
    c[row * p.n + col] = sum;
  }
}

// ---- matmul_reg (scalar loads) ---------------------------------------------------------------

// op(A) rows i0..i0+3 at k = 4t..4t+3, as the columns of a matrix (column r = row i0 + r).
fn load_a(i0: u32, t: u32) -> mat4x4f {
  var l: mat4x4f;
  for (var r = 0u; r < 4u; r++) {
    let i = min(i0 + r, p.m - 1u);
    for (var q = 0u; q < 4u; q++) {
      let kk = 4u * t + q;
      l[r][q] = select(0.0, a_at(i, min(kk, p.k - 1u)), kk < p.k);
    }
  }
  return l;
}

// op(B) rows k = 4t..4t+3 at columns j0..j0+3, as the columns of a matrix (column q = k 4t + q).
fn load_b(t: u32, j0: u32) -> mat4x4f {
  var l: mat4x4f;
  for (var q = 0u; q < 4u; q++) {
    let kk = 4u * t + q;
    let kc = min(kk, p.k - 1u);
    for (var cc = 0u; cc < 4u; cc++) {
      l[q][cc] = select(0.0, b_at(kc, min(j0 + cc, p.n - 1u)), kk < p.k);
    }
  }
  return l;
}

fn store_row(i: u32, j0: u32, v: vec4f) {
  if (i >= p.m) { return; }
  let base = i * p.n;
  for (var cc = 0u; cc < 4u; cc++) {
    if (j0 + cc < p.n) { c[base + j0 + cc] = v[cc]; }
  }
}

// Same blocking as matmul_reg in shaders/matmul-vec4.wgsl; only the loads differ.
@compute @workgroup_size(WG_X, WG_Y)
fn matmul_reg(@builtin(global_invocation_id) gid: vec3u) {
  let j0 = gid.x * BN;
  let i0 = gid.y * BM;
  if (j0 >= p.n || i0 >= p.m) { return; }
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
