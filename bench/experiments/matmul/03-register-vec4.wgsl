// Experiment 03: register blocking without workgroup memory. Each invocation computes a 4x4 block
// of C from vec4 loads (4 of A, 4 of B per step of 4 along K: 8 loads for 64 multiply-adds) and
// never synchronises. Needs K and N multiples of 4 (vec4 rows); any M (rows past M are clamped
// on load and not stored).
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
  let col4 = gid.x;          // column block: columns 4*col4 .. 4*col4+3
  let row0 = gid.y * 4u;     // rows row0 .. row0+3
  if (col4 >= n4 || row0 >= p.m) { return; }
  let last = p.m - 1u;
  let r0 = min(row0, last) * k4;
  let r1 = min(row0 + 1u, last) * k4;
  let r2 = min(row0 + 2u, last) * k4;
  let r3 = min(row0 + 3u, last) * k4;
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var t = 0u; t < k4; t++) {
    let b0 = b[(4u * t) * n4 + col4];
    let b1 = b[(4u * t + 1u) * n4 + col4];
    let b2 = b[(4u * t + 2u) * n4 + col4];
    let b3 = b[(4u * t + 3u) * n4 + col4];
    let a0 = a[r0 + t];
    let a1 = a[r1 + t];
    let a2 = a[r2 + t];
    let a3 = a[r3 + t];
    acc0 += a0.x * b0 + a0.y * b1 + a0.z * b2 + a0.w * b3;
    acc1 += a1.x * b0 + a1.y * b1 + a1.z * b2 + a1.w * b3;
    acc2 += a2.x * b0 + a2.y * b1 + a2.z * b2 + a2.w * b3;
    acc3 += a3.x * b0 + a3.y * b1 + a3.z * b2 + a3.w * b3;
  }
  c[row0 * n4 + col4] = acc0;
  if (row0 + 1u < p.m) { c[(row0 + 1u) * n4 + col4] = acc1; }
  if (row0 + 2u < p.m) { c[(row0 + 2u) * n4 + col4] = acc2; }
  if (row0 + 3u < p.m) { c[(row0 + 3u) * n4 + col4] = acc3; }
}
