// Experiment 01: one invocation per output, scalar loads straight from storage. The floor every
// other matmul experiment has to beat. C[M, N] = A[M, K] · B[K, N], any M, N, K.
// @bench wg=8x8 block=1x1

struct Params { m: u32, n: u32, k: u32, pad: u32 }

@group(0) @binding(0) var<storage, read> a: array<f32>;        // [M, K]
@group(0) @binding(1) var<storage, read> b: array<f32>;        // [K, N]
@group(0) @binding(2) var<storage, read_write> c: array<f32>;  // [M, N]
@group(0) @binding(3) var<uniform> p: Params;

override WG_X: u32 = 8;
override WG_Y: u32 = 8;

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let col = gid.x;
  let row = gid.y;
  if (row >= p.m || col >= p.n) { return; }
  var sum = 0.0;
  for (var i = 0u; i < p.k; i++) {
    sum += a[row * p.k + i] * b[i * p.n + col];
  }
  c[row * p.n + col] = sum;
}
