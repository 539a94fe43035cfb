// Elementwise add with the second operand repeated: out[i] = a[i] + b[i % nb]. One kernel for the
// residual add (nb = n), a learned position embedding added to every example (nb = T*C) and a bias
// added to every row (nb = C); `add_inplace` adds into a (a bias after a matmul, a gradient summed
// into another). Reductions (the bias and position-embedding gradients) live in reduce.wgsl.
//   add:         out[i]  = a[i] + b[i % nb]      a, out f32[n]; b f32[nb]
//   add_inplace: out[i] += b[i % nb]             out f32[n];    b f32[nb]
// One invocation per element, the flat index folded into y past 65535 workgroups.

struct Params {
  n: u32,  // elements of a and out
  nb: u32, // elements of b (n is a multiple of it)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> b: array<f32>;          // [nb]
@group(0) @binding(2) var<storage, read_write> out: array<f32>;  // [n]
@group(0) @binding(3) var<storage, read> a: array<f32>;          // [n] (add only)

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn add(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) {
    return;
  }
  out[i] = a[i] + b[i % p.nb];
}

@compute @workgroup_size(WG)
fn add_inplace(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) {
    return;
  }
  out[i] += b[i % p.nb];
}
