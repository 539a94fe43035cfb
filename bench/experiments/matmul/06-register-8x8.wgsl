// Experiment 06: 8x8 outputs per invocation (four 4x4 accumulators; 16 vec4 loads per 256
// multiply-adds). Fewer, wider loads; more registers. Same limits as 03.
// @bench wg=8x8 block=8x8 vec4

struct Params { m: u32, n: u32, k: u32, pad: u32 }

@group(0) @binding(0) var<storage, read> a: array<vec4f>;        // [M, K/4]
@group(0) @binding(1) var<storage, read> b: array<vec4f>;        // [K, N/4]
@group(0) @binding(2) var<storage, read_write> c: array<vec4f>;  // [M, N/4]
@group(0) @binding(3) var<uniform> p: Params;

override WG_X: u32 = 8;
override WG_Y: u32 = 8;

fn store(row: u32, col4: u32, n4: u32, v: vec4f) {
  if (row < p.m && col4 < n4) { c[row * n4 + col4] = v; }
}

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let n4 = p.n / 4u;
  let k4 = p.k / 4u;
  let c0 = gid.x * 2u;
  let c1 = min(c0 + 1u, n4 - 1u);
  let row0 = gid.y * 8u;
  if (c0 >= n4 || row0 >= p.m) { return; }
  let last = p.m - 1u;
  var r: array<u32, 8>;
  for (var i = 0u; i < 8u; i++) { r[i] = min(row0 + i, last) * k4; }
  var acc00 = mat4x4f();
  var acc01 = mat4x4f();
  var acc10 = mat4x4f();
  var acc11 = mat4x4f();
  for (var t = 0u; t < k4; t++) {
    let base = 4u * t * n4;
    let b0 = mat4x4f(b[base + c0], b[base + n4 + c0], b[base + 2u * n4 + c0], b[base + 3u * n4 + c0]);
    let b1 = mat4x4f(b[base + c1], b[base + n4 + c1], b[base + 2u * n4 + c1], b[base + 3u * n4 + c1]);
    let a0 = mat4x4f(a[r[0] + t], a[r[1] + t], a[r[2] + t], a[r[3] + t]);
    let a1 = mat4x4f(a[r[4] + t], a[r[5] + t], a[r[6] + t], a[r[7] + t]);
    acc00 += b0 * a0;
    acc01 += b1 * a0;
    acc10 += b0 * a1;
    acc11 += b1 * a1;
  }
  for (var i = 0u; i < 4u; i++) {
    store(row0 + i, c0, n4, acc00[i]);
    store(row0 + i, c0 + 1u, n4, acc01[i]);
    store(row0 + 4u + i, c0, n4, acc10[i]);
    store(row0 + 4u + i, c0 + 1u, n4, acc11[i]);
  }
}
