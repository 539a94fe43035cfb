// Layer normalisation over the last dimension (PyTorch's nn.LayerNorm(C), biased variance), forward
// and backward. The reference is shared/layers/layernorm.ts.
//   layernorm:                 mean[r], rstd[r] of row r; y[r, k] = (x[r, k] - mean[r]) * rstd[r] * w[k] + b[k]
//   layernorm_backward_input:  dx[r, k] = rstd[r] * (g[r, k] - mean_k(g) - xhat[r, k] * mean_k(g * xhat))
//                              with g = dy * w and xhat = (x - mean) * rstd recomputed
//   layernorm_backward_params: dw[k] (+)= sum_r dy[r, k] * xhat[r, k]; db[k] (+)= sum_r dy[r, k]
// Shapes: x, y, dy, dx f32[R, C] (R rows: B*T for [T, C] inputs); w, b, dw, db f32[C];
// stats f32[2, R] (mean, then rstd). The per-row passes take one invocation per row (a row is a
// model's width, short); the parameter gradients sum columns in a fixed order, as reduce.wgsl's
// col_sum does. Each entry point declares its own bindings (WGSL allows the same binding number
// in different entry points), so every layout is a plain prefix with no unused slot:
//   layernorm:                 p, x, weight, bias, y, stats_out
//   layernorm_backward_input:  p, x, weight, dy, dx, stats
//   layernorm_backward_params: p, x, dweight, dy, dbias, stats

struct Params {
  rows: u32, // R
  cols: u32, // C
  eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;               // [R, C]
// layernorm, layernorm_backward_input
@group(0) @binding(2) var<storage, read> weight: array<f32>;          // [C]
// layernorm
@group(0) @binding(3) var<storage, read> bias: array<f32>;            // [C]
@group(0) @binding(4) var<storage, read_write> y: array<f32>;         // [R, C]
@group(0) @binding(5) var<storage, read_write> stats_out: array<f32>; // [2, R]
// layernorm_backward_input, layernorm_backward_params
@group(0) @binding(3) var<storage, read> dy: array<f32>;              // [R, C]
@group(0) @binding(5) var<storage, read> stats: array<f32>;           // [2, R]
// layernorm_backward_input
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;        // [R, C]
// layernorm_backward_params
@group(0) @binding(2) var<storage, read_write> dweight: array<f32>;   // [C]
@group(0) @binding(4) var<storage, read_write> dbias: array<f32>;     // [C]

override WG: u32 = 64;
override ACCUMULATE: bool = false;

fn row_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn layernorm(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = row_index(gid, nwg);
  if (r >= p.rows) {
    return;
  }
  let base = r * p.cols;
  var sum = 0.0;
  for (var k = 0u; k < p.cols; k++) {
    sum += x[base + k];
  }
  let mean = sum / f32(p.cols);
  // Two passes, as the reference: the variance of values far from zero keeps its digits.
  var sq = 0.0;
  for (var k = 0u; k < p.cols; k++) {
    let d = x[base + k] - mean;
    sq += d * d;
  }
  let rstd = 1.0 / sqrt(sq / f32(p.cols) + p.eps);
  stats_out[r] = mean;
  stats_out[p.rows + r] = rstd;
  for (var k = 0u; k < p.cols; k++) {
    y[base + k] = (x[base + k] - mean) * rstd * weight[k] + bias[k];
  }
}

@compute @workgroup_size(WG)
fn layernorm_backward_input(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = row_index(gid, nwg);
  if (r >= p.rows) {
    return;
  }
  let base = r * p.cols;
  let mean = stats[r];
  let rstd = stats[p.rows + r];
  var m1 = 0.0;
  var m2 = 0.0;
  for (var k = 0u; k < p.cols; k++) {
    let g = dy[base + k] * weight[k];
    m1 += g;
    m2 += g * (x[base + k] - mean) * rstd;
  }
  m1 = m1 / f32(p.cols);
  m2 = m2 / f32(p.cols);
  for (var k = 0u; k < p.cols; k++) {
    let xhat = (x[base + k] - mean) * rstd;
    dx[base + k] = rstd * (dy[base + k] * weight[k] - m1 - xhat * m2);
  }
}

// ---- parameter gradients: a workgroup covers COL_WG adjacent columns with ROW_WG threads per
// column striding over the rows; the ROW_WG partial sums are then added in a fixed order.
override COL_WG: u32 = 64;
override ROW_WG: u32 = 4;

var<workgroup> partial: array<vec2f, COL_WG * ROW_WG>;

@compute @workgroup_size(COL_WG, ROW_WG)
fn layernorm_backward_params(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let k = (wid.x + wid.y * nwg.x) * COL_WG + lid.x;
  var s = vec2f(); // (dw, db)
  if (k < p.cols) {
    for (var r = lid.y; r < p.rows; r += ROW_WG) {
      let g = dy[r * p.cols + k];
      s += vec2f(g * (x[r * p.cols + k] - stats[r]) * stats[p.rows + r], g);
    }
  }
  partial[lid.y * COL_WG + lid.x] = s;
  workgroupBarrier();
  if (lid.y == 0u && k < p.cols) {
    var total = vec2f();
    for (var j = 0u; j < ROW_WG; j++) {
      total += partial[j * COL_WG + lid.x];
    }
    if (ACCUMULATE) {
      dweight[k] += total.x;
      dbias[k] += total.y;
    } else {
      dweight[k] = total.x;
      dbias[k] = total.y;
    }
  }
}
