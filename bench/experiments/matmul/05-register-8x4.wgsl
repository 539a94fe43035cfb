// Experiment 05: experiment 04 with 8x4 outputs per invocation (two 4x4 accumulators sharing each
// loaded block of B: 12 vec4 loads per 128 multiply-adds instead of 8 per 64). Same limits as 03.
// @bench wg=8x8 block=8x4 vec4

struct Params { m: u32, n: u32, k: u32, pad: u32 }

@group(0) @binding(0) var<storage, read> a: array<vec4f>;        // [M, K/4]
@group(0) @binding(1) var<storage, read> b: array<vec4f>;        // [K, N/4]
@group(0) @binding(2) var<storage, read_write> c: array<vec4f>;  // [M, N/4]
@group(0) @binding(3) var<uniform> p: Params;

override WG_X: u32 = 8;
override WG_Y: u32 = 8;

fn store_row(row: u32, col4: u32, n4: u32, v: vec4f) {
  if (row < p.m) { c[row * n4 + col4] = v; }
}

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let n4 = p.n / 4u;
  let k4 = p.k / 4u;
  let col4 = gid.x;
  let row0 = gid.y * 8u;
  if (col4 >= n4 || row0 >= p.m) { return; }
  let last = p.m - 1u;
  var r: array<u32, 8>;
  for (var i = 0u; i < 8u; i++) { r[i] = min(row0 + i, last) * k4; }
  var acc0 = mat4x4f();
  var acc1 = mat4x4f();
  for (var t = 0u; t < k4; t++) {
    let base = 4u * t * n4 + col4;
    let bm = mat4x4f(b[base], b[base + n4], b[base + 2u * n4], b[base + 3u * n4]);
    acc0 += bm * mat4x4f(a[r[0] + t], a[r[1] + t], a[r[2] + t], a[r[3] + t]);
    acc1 += bm * mat4x4f(a[r[4] + t], a[r[5] + t], a[r[6] + t], a[r[7] + t]);
  }
  for (var i = 0u; i < 4u; i++) {
    store_row(row0 + i, col4, n4, acc0[i]);
    store_row(row0 + 4u + i, col4, n4, acc1[i]);
  }
}
