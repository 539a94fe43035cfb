// Experiment 08: the 8x8 block of experiment 06 written generically, with the block as a local
// array of mat4x4f walked by loops (as block sizes as overrides would suggest). Correct, but on
// SwiftShader the loop-indexed locals live in memory: it is several times slower than 06, which
// is why the shipped kernels spell the sub-blocks out.
// @bench wg=8x8 block=8x8 vec4

struct Params { m: u32, n: u32, k: u32, pad: u32 }

@group(0) @binding(0) var<storage, read> a: array<vec4f>;        // [M, K/4]
@group(0) @binding(1) var<storage, read> b: array<vec4f>;        // [K, N/4]
@group(0) @binding(2) var<storage, read_write> c: array<vec4f>;  // [M, N/4]
@group(0) @binding(3) var<uniform> p: Params;

override WG_X: u32 = 8;
override WG_Y: u32 = 8;
override BM: u32 = 8;
override BN: u32 = 8;

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let n4 = p.n / 4u;
  let k4 = p.k / 4u;
  let j0 = gid.x * BN / 4u; // first column block
  let i0 = gid.y * BM;
  if (j0 >= n4 || i0 >= p.m) { return; }
  var acc: array<mat4x4f, 4>;
  var bl: array<mat4x4f, 2>;
  for (var t = 0u; t < k4; t++) {
    for (var bj = 0u; bj < BN / 4u; bj++) {
      let col = min(j0 + bj, n4 - 1u);
      for (var q = 0u; q < 4u; q++) {
        bl[bj][q] = b[(4u * t + q) * n4 + col];
      }
    }
    for (var bi = 0u; bi < BM / 4u; bi++) {
      var al: mat4x4f;
      for (var r = 0u; r < 4u; r++) {
        al[r] = a[min(i0 + 4u * bi + r, p.m - 1u) * k4 + t];
      }
      for (var bj = 0u; bj < BN / 4u; bj++) {
        acc[bi * 2u + bj] += bl[bj] * al;
      }
    }
  }
  for (var bi = 0u; bi < BM / 4u; bi++) {
    for (var bj = 0u; bj < BN / 4u; bj++) {
      for (var r = 0u; r < 4u; r++) {
        let row = i0 + 4u * bi + r;
        if (row < p.m && j0 + bj < n4) { c[row * n4 + j0 + bj] = acc[bi * 2u + bj][r]; }
      }
    }
  }
}
