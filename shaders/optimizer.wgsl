// The optimizer update of a flat parameter vector, in place, with PyTorch's semantics: one
// invocation per parameter, one dispatch per step. The step's scalars (learning rate, bias
// corrections) are computed on the CPU and written as uniforms, so lr may change between steps.
//   sgd_step:      p -= lr * (g + wd p)
//   momentum_step: g' = g + wd p; m = first ? g' : mu m + g'; p -= lr m
//   adam_step:     g' = g + l2 p; m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2   (m = v = 0 before the first step)
//                  p = p * decay - step_size * m / (sqrt(v) / bc2_sqrt + eps)
//                  adam: l2 = wd, decay = 1; adamw: l2 = 0, decay = 1 - lr wd.
// Shapes: params, grads, m, v f32[N].

struct Params {
  count: u32,     // N
  first: u32,     // 1 on step t = 1
  lr: f32,
  l2: f32,        // weight decay added to the gradient
  decay: f32,     // factor on p before the adam update
  momentum: f32,
  beta1: f32,
  beta2: f32,
  one_minus_beta1: f32, // 1 - beta1, rounded once from float64 (as PyTorch does)
  one_minus_beta2: f32,
  eps: f32,
  step_size: f32, // lr / (1 - beta1^t)
  bc2_sqrt: f32,  // sqrt(1 - beta2^t)
}

@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read_write> params: array<f32>; // [N]
@group(0) @binding(2) var<storage, read> grads: array<f32>;        // [N]
@group(0) @binding(3) var<storage, read_write> m: array<f32>;      // [N] momentum buffer / Adam first moment
@group(0) @binding(4) var<storage, read_write> v: array<f32>;      // [N] Adam second moment

override WG: u32 = 256;

fn index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn sgd_step(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= u.count) {
    return;
  }
  let p = params[i];
  params[i] = p - u.lr * (grads[i] + u.l2 * p);
}

@compute @workgroup_size(WG)
fn momentum_step(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= u.count) {
    return;
  }
  let p = params[i];
  let g = grads[i] + u.l2 * p;
  let buf = select(u.momentum * m[i] + g, g, u.first == 1u);
  m[i] = buf;
  params[i] = p - u.lr * buf;
}

@compute @workgroup_size(WG)
fn adam_step(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= u.count) {
    return;
  }
  let p = params[i];
  let g = grads[i] + u.l2 * p;
  let first = u.first == 1u;
  let m1 = select(u.beta1 * m[i], 0.0, first) + u.one_minus_beta1 * g;
  let m2 = select(u.beta2 * v[i], 0.0, first) + u.one_minus_beta2 * g * g;
  m[i] = m1;
  v[i] = m2;
  params[i] = p * u.decay - u.step_size * m1 / (sqrt(m2) / u.bc2_sqrt + u.eps);
}
