// Matmul with scalar loads, any shape: C[M, N] = op(A)·op(B) with op(X) = Xᵀ when TRANS_X.
// Three kernels: matmul_tiled, the classic workgroup-memory tiling (one output per invocation,
// TILE x TILE tiles of A and B staged per step along K); matmul_tiled_reg, workgroup tiles feeding
// 4x4 register blocks (for real GPUs); and matmul_reg, the register-blocked kernel of
// shaders/matmul-vec4.wgsl fed by scalar loads, for rows whose length is not a multiple of 4
// (bindings then only guarantee 4-byte sizes, so no vec4 view is safe). With ACCUMULATE, every
// kernel adds its product into C instead of overwriting it.
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
override RT: u32 = 8;         // matmul_tiled_reg: workgroup RT x RT, C tile 4RT x 4RT, K step 4RT

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
    store_one(row * p.n + col, sum);
  }
}

// ---- 4x4 register blocks from scalar loads (matmul_reg, matmul_tiled_reg) -------------------

// Written out without loops over matrix columns or components: SwiftShader spills anything
// indexed by a loop counter to memory (see shaders/matmul-vec4.wgsl).

// op(A) row i at k = 4t..4t+3, zero past K (i already clamped below M).
fn a_row4(i: u32, t: u32) -> vec4f {
  let kk = 4u * t;
  let last = p.k - 1u;
  let v = vec4f(a_at(i, min(kk, last)), a_at(i, min(kk + 1u, last)), a_at(i, min(kk + 2u, last)), a_at(i, min(kk + 3u, last)));
  return select(vec4f(0.0), v, vec4u(kk) + vec4u(0u, 1u, 2u, 3u) < vec4u(p.k));
}

// op(B) row kk at columns j0..j0+3, zero when kk is past K (columns past N are clamped).
fn b_row4(kk: u32, j0: u32) -> vec4f {
  let kc = min(kk, p.k - 1u);
  let last = p.n - 1u;
  let v = vec4f(b_at(kc, min(j0, last)), b_at(kc, min(j0 + 1u, last)), b_at(kc, min(j0 + 2u, last)), b_at(kc, min(j0 + 3u, last)));
  return select(vec4f(0.0), v, kk < p.k);
}

// op(A) rows i0..i0+3 at k = 4t..4t+3, as the columns of a matrix (column r = row i0 + r).
fn load_a(i0: u32, t: u32) -> mat4x4f {
  let last = p.m - 1u;
  return mat4x4f(a_row4(min(i0, last), t), a_row4(min(i0 + 1u, last), t), a_row4(min(i0 + 2u, last), t), a_row4(min(i0 + 3u, last), t));
}

// op(B) rows k = 4t..4t+3 at columns j0..j0+3, as the columns of a matrix (column q = k 4t + q).
fn load_b(t: u32, j0: u32) -> mat4x4f {
  let kk = 4u * t;
  return mat4x4f(b_row4(kk, j0), b_row4(kk + 1u, j0), b_row4(kk + 2u, j0), b_row4(kk + 3u, j0));
}

// store_one, store_row and store_block (and the ACCUMULATE override) come from
// shaders/matmul-reg.wgsl, appended after this file.

// ---- matmul_tiled_reg -------------------------------------------------------------------------
// Both ideas at once, for GPUs with real on-chip workgroup memory: an RT x RT workgroup stages a
// 4RT x 4RT tile of op(A) and of op(B) (as vec4 rows) per step of 4RT along K, then each invocation
// multiplies 4x4 register blocks out of them. Staging goes through a_row4/b_row4, so any shape.

var<workgroup> rt_a: array<vec4f, 4u * RT * RT>; // [4RT rows of op(A)][RT k-quads]
var<workgroup> rt_b: array<vec4f, 4u * RT * RT>; // [4RT k of op(B)][RT column-quads]

@compute @workgroup_size(RT, RT)
fn matmul_tiled_reg(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let tile = 4u * RT;
  let row0 = wg.y * tile;
  let col0 = wg.x * tile;
  let lin = lid.y * RT + lid.x;
  let last_row = p.m - 1u;
  var acc = mat4x4f();
  for (var k0 = 0u; k0 < p.k; k0 += tile) {
    for (var s = 0u; s < 4u; s++) {
      let v = lin + s * RT * RT;
      let r = v / RT;
      let q = v % RT;
      rt_a[v] = a_row4(min(row0 + r, last_row), k0 / 4u + q);
      rt_b[v] = b_row4(k0 + r, col0 + 4u * q);
    }
    workgroupBarrier();
    for (var q = 0u; q < RT; q++) {
      let ar = 4u * lid.y * RT + q;
      let am = mat4x4f(rt_a[ar], rt_a[ar + RT], rt_a[ar + 2u * RT], rt_a[ar + 3u * RT]);
      let br = 4u * q * RT + lid.x;
      let bm = mat4x4f(rt_b[br], rt_b[br + RT], rt_b[br + 2u * RT], rt_b[br + 3u * RT]);
      acc += bm * am;
    }
    workgroupBarrier();
  }
  store_block(row0 + 4u * lid.y, col0 + 4u * lid.x, acc);
}

// ---- matmul_reg (scalar loads): the entry point is shaders/matmul-reg.wgsl, appended after this file.
