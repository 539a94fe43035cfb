// Bias + activation of a dense layer, forward and backward (elementwise; matmul lives elsewhere).
//   bias_act:          y[r, c]  = act(x[r, c] + bias[c])
//   bias_act_backward: dx[r, c] = dy[r, c] * act'(x[r, c] + bias[c])
// x is the forward's pre-bias input, kept by the caller, so no pre-activation buffer is stored.
// Shapes: x, y, dy, dx f32[B, C]; bias f32[C]. One invocation per element, the flat index
// folded into y when B*C needs more than 65535 workgroups.

struct Params {
  rows: u32, // B
  cols: u32, // C
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [B, C] pre-bias input
@group(0) @binding(2) var<storage, read> bias: array<f32>;       // [C]
@group(0) @binding(3) var<storage, read_write> out: array<f32>;  // [B, C] y (forward) or dx (backward)
@group(0) @binding(4) var<storage, read> dy: array<f32>;         // [B, C] backward only

override WG: u32 = 256;
// 0 = none, 1 = relu, 2 = gelu (tanh approximation, as PyTorch's approximate='tanh').
override ACT: u32 = 0u;

const GELU_K: f32 = 0.7978845608028654; // sqrt(2 / pi)
const GELU_A: f32 = 0.044715;
// Past |z| > 10 tanh-GELU is relu to within 1e-35: switching there keeps z^3 and exp() in range.
const GELU_SATURATION: f32 = 10.0;

// For u = GELU_K * (z + GELU_A z^3): returns (sigmoid(2u), sigmoid(2u) * (1 - sigmoid(2u))), from
// e = exp(-2|u|) <= 1 so nothing overflows (0.5 * (1 + tanh(u)) = sigmoid(2u); WGSL's tanh of large
// arguments is not reliable everywhere).
fn gelu_parts(z: f32) -> vec2f {
  let u = GELU_K * (z + GELU_A * z * z * z);
  let e = exp(-2.0 * abs(u));
  let s = select(e, 1.0, u >= 0.0) / (1.0 + e);
  return vec2f(s, e / ((1.0 + e) * (1.0 + e)));
}

fn act(z: f32) -> f32 {
  if (ACT == 1u) {
    return select(0.0, z, z > 0.0);
  }
  if (ACT == 2u) {
    if (abs(z) > GELU_SATURATION) {
      return select(0.0, z, z > 0.0);
    }
    return z * gelu_parts(z).x;
  }
  return z;
}

fn act_grad(z: f32) -> f32 {
  if (ACT == 1u) {
    return select(0.0, 1.0, z > 0.0);
  }
  if (ACT == 2u) {
    if (abs(z) > GELU_SATURATION) {
      return select(0.0, 1.0, z > 0.0);
    }
    // d/dz [z * sigmoid(2u)] = sigmoid(2u) + z * 2 sigmoid(2u)(1 - sigmoid(2u)) * du/dz
    let g = gelu_parts(z);
    return g.x + 2.0 * z * g.y * GELU_K * (1.0 + 3.0 * GELU_A * z * z);
  }
  return 1.0;
}

@compute @workgroup_size(WG)
fn bias_act(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * p.cols) {
    return;
  }
  out[i] = act(x[i] + bias[i % p.cols]);
}

@compute @workgroup_size(WG)
fn bias_act_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * p.cols) {
    return;
  }
  out[i] = dy[i] * act_grad(x[i] + bias[i % p.cols]);
}
