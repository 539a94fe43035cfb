// Experiment 07: experiment 04's 4x4 register block fed by scalar loads from array<f32> bindings,
// which works for any M, N, K (indices clamped, the K tail zeroed). Measures what giving up vec4
// loads costs: the fallback for rows whose length is not a multiple of 4.
// @bench wg=8x8 block=4x4

struct Params { m: u32, n: u32, k: u32, pad: u32 }

@group(0) @binding(0) var<storage, read> a: array<f32>;        // [M, K]
@group(0) @binding(1) var<storage, read> b: array<f32>;        // [K, N]
@group(0) @binding(2) var<storage, read_write> c: array<f32>;  // [M, N]
@group(0) @binding(3) var<uniform> p: Params;

override WG_X: u32 = 8;
override WG_Y: u32 = 8;

// Four consecutive values of a row, zero past `len` (row index already clamped by the caller).
fn row4(x: ptr<storage, array<f32>, read>, start: u32, col: u32, len: u32) -> vec4f {
  let last = start + len - 1u;
  let v = vec4f(x[min(start + col, last)], x[min(start + col + 1u, last)], x[min(start + col + 2u, last)], x[min(start + col + 3u, last)]);
  return select(vec4f(0.0), v, vec4u(col) + vec4u(0u, 1u, 2u, 3u) < vec4u(len));
}

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let col0 = gid.x * 4u;
  let row0 = gid.y * 4u;
  if (col0 >= p.n || row0 >= p.m) { return; }
  var acc = mat4x4f();
  for (var t = 0u; t < p.k; t += 4u) {
    var bm: mat4x4f;
    var am: mat4x4f;
    for (var i = 0u; i < 4u; i++) {
      // Rows past K give zeros; rows past M are clamped (computed, never stored).
      let kk = min(t + i, p.k - 1u);
      bm[i] = select(vec4f(0.0), row4(&b, kk * p.n, col0, p.n), t + i < p.k);
      am[i] = row4(&a, min(row0 + i, p.m - 1u) * p.k, t, p.k);
    }
    acc += bm * am;
  }
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) {
      if (row0 + i < p.m && col0 + j < p.n) { c[(row0 + i) * p.n + col0 + j] = acc[i][j]; }
    }
  }
}
