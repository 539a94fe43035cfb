// 2-D pooling over windows of size K x K, stride S, no padding (PyTorch's MaxPool2d / AvgPool2d),
// forward and backward. Convolution and the layer's reference live elsewhere
// (shaders/conv2d.wgsl, shared/layers/maxpool2d.ts and avgpool2d.ts).
//   max_pool:          y[n,c,i,j] = max over the window; argmax[n,c,i,j] = flat index into x of it
//                      (the first on ties, as PyTorch)
//   max_pool_backward: dx[e] = sum of dy over the outputs whose argmax is e
//   avg_pool:          y[n,c,i,j] = mean over the window
//   avg_pool_backward: dx[n,c,r,q] = sum over the windows holding (r, q) of dy / K²
// Backward passes gather, one invocation per input element, so overlapping windows (S < K) need
// no atomics and sum in a fixed order; inputs no window reaches get 0.
// Shapes: x, dx f32[B, C, H, W]; y, dy f32[B, C, Ho, Wo]; argmax u32[B, C, Ho, Wo].

struct Params {
  batch: u32, // B
  c: u32,     // C
  h: u32,     // H
  w: u32,     // W
  ho: u32,    // Ho = (H - K) / S + 1
  wo: u32,    // Wo = (W - K) / S + 1
  k: u32,     // K, window size
  s: u32,     // S, stride
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;          // x [B, C, H, W] (forward) or dy [B, C, Ho, Wo] (backward)
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;    // y [B, C, Ho, Wo] (forward) or dx [B, C, H, W] (backward)
// [B, C, Ho, Wo], max pooling only: written by max_pool, read by max_pool_backward (one binding for
// both, so it is read_write in the backward's layout too).
@group(0) @binding(3) var<storage, read_write> argmax: array<u32>;

override WG: u32 = 256;

fn flat_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// Output (plane, i, j) of flat output index o; plane = n * C + c.
fn out_coords(o: u32) -> vec3u {
  let j = o % p.wo;
  let t = o / p.wo;
  return vec3u(t / p.ho, t % p.ho, j);
}

@compute @workgroup_size(WG)
fn max_pool(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let o = flat_index(gid, nwg);
  if (o >= p.batch * p.c * p.ho * p.wo) {
    return;
  }
  let at = out_coords(o);
  let corner = (at.x * p.h + at.y * p.s) * p.w + at.z * p.s;
  var best = src[corner];
  var best_at = corner;
  for (var a = 0u; a < p.k; a++) {
    for (var b = 0u; b < p.k; b++) {
      let e = corner + a * p.w + b;
      let v = src[e];
      if (v > best) {
        best = v;
        best_at = e;
      }
    }
  }
  dst[o] = best;
  argmax[o] = best_at;
}

// Output windows along one axis that hold input coordinate r: i in [lo, hi) (empty when lo >= hi).
fn windows(r: u32, out_len: u32) -> vec2u {
  // i * S <= r < i * S + K  <=>  (r - K) / S < i <= r / S
  let lo = select(0u, (r - p.k) / p.s + 1u, r >= p.k);
  let hi = min(r / p.s + 1u, out_len);
  return vec2u(lo, hi);
}

@compute @workgroup_size(WG)
fn max_pool_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = flat_index(gid, nwg);
  if (e >= p.batch * p.c * p.h * p.w) {
    return;
  }
  let q = e % p.w;
  let t = e / p.w;
  let r = t % p.h;
  let plane = t / p.h;
  let rows = windows(r, p.ho);
  let cols = windows(q, p.wo);
  var g = 0.0;
  for (var i = rows.x; i < rows.y; i++) {
    for (var j = cols.x; j < cols.y; j++) {
      let o = (plane * p.ho + i) * p.wo + j;
      if (argmax[o] == e) {
        g += src[o];
      }
    }
  }
  dst[e] = g;
}

@compute @workgroup_size(WG)
fn avg_pool(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let o = flat_index(gid, nwg);
  if (o >= p.batch * p.c * p.ho * p.wo) {
    return;
  }
  let at = out_coords(o);
  let corner = (at.x * p.h + at.y * p.s) * p.w + at.z * p.s;
  var sum = 0.0;
  for (var a = 0u; a < p.k; a++) {
    for (var b = 0u; b < p.k; b++) {
      sum += src[corner + a * p.w + b];
    }
  }
  dst[o] = sum * (1.0 / f32(p.k * p.k));
}

@compute @workgroup_size(WG)
fn avg_pool_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = flat_index(gid, nwg);
  if (e >= p.batch * p.c * p.h * p.w) {
    return;
  }
  let q = e % p.w;
  let t = e / p.w;
  let r = t % p.h;
  let plane = t / p.h;
  let rows = windows(r, p.ho);
  let cols = windows(q, p.wo);
  let inv = 1.0 / f32(p.k * p.k);
  var g = 0.0;
  for (var i = rows.x; i < rows.y; i++) {
    for (var j = cols.x; j < cols.y; j++) {
      g += src[(plane * p.ho + i) * p.wo + j] * inv;
    }
  }
  dst[e] = g;
}
