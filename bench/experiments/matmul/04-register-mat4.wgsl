// Experiment 04: experiment 03 written with mat4x4f: the 4x4 block of C is one matrix and each
// step along K is one 4x4x4 matrix product, so layouts differ only in how the two loaded 4x4
// blocks are oriented (a transpose()), not in the arithmetic. Same limits as 03.
// @bench wg=8x8 block=4x4 vec4

struct Params { m: u32, n: u32, k: u32, pad: u32 }

@group(0) @binding(0) var<storage, read> a: array<vec4f>;        // [M, K/4]
@group(0) @binding(1) var<storage, read> b: array<vec4f>;        // [K, N/4]
@group(0) @binding(2) var<storage, read_write> c: array<vec4f>;  // [M, N/4]
@group(0) @binding(3) var<uniform> p: Params;

override WG_X: u32 = 8;
override WG_Y: u32 = 8;

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let n4 = p.n / 4u;
  let k4 = p.k / 4u;
  let col4 = gid.x;
  let row0 = gid.y * 4u;
  if (col4 >= n4 || row0 >= p.m) { return; }
  let last = p.m - 1u;
  let r0 = min(row0, last) * k4;
  let r1 = min(row0 + 1u, last) * k4;
  let r2 = min(row0 + 2u, last) * k4;
  let r3 = min(row0 + 3u, last) * k4;
  // acc[r] is row r of the C block; column q of bm is row (4t + q) of B's block.
  var acc = mat4x4f();
  for (var t = 0u; t < k4; t++) {
    let at = mat4x4f(a[r0 + t], a[r1 + t], a[r2 + t], a[r3 + t]);
    let base = 4u * t * n4 + col4;
    let bm = mat4x4f(b[base], b[base + n4], b[base + 2u * n4], b[base + 3u * n4]);
    acc += bm * at;
  }
  c[row0 * n4 + col4] = acc[0];
  if (row0 + 1u < p.m) { c[(row0 + 1u) * n4 + col4] = acc[1]; }
  if (row0 + 2u < p.m) { c[(row0 + 2u) * n4 + col4] = acc[2]; }
  if (row0 + 3u < p.m) { c[(row0 + 3u) * n4 + col4] = acc[3]; }
}
