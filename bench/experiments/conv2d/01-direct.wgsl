// Experiment 01: convolution computed directly, without im2col: forward, the input gradient and
// the weight and bias gradients. bench/pages/conv2d.ts checks it against shared/layers/conv2d.ts
// and times it against the shipped im2col + matmul (shaders/conv2d.wgsl). On SwiftShader (2 shared
// cores), batch 64: [1,28,28] -> 8, k5: forward 64 ms vs 112 (faster), weight gradient 86 vs 34,
// a step (forward + weight gradient) 134 vs 138; [8,12,12] -> 16, k5: forward 140 vs 49, input
// gradient 192 vs 115, weight gradient 322 vs 32, a step 512 vs 139. The per-element index
// arithmetic and bounds checks, and the weight gradient's workgroup tree sums, cost more than the
// matmul's tight loop. Splitting the im2col weight gradient's long reduction into 16 chunks (for
// real GPUs' parallelism) did not help on SwiftShader either.
//   conv2d:                 y[n,o,i,j] = b[o] + sum_{c,kh,kw} w[o,c,kh,kw] x[n,c,i*S+kh-P,j*S+kw-P]
//   conv2d_backward_input:  dx[n,c,r,q] = sum over (o,kh,kw) and the (i,j) with i*S+kh-P = r,
//                           j*S+kw-P = q of dy[n,o,i,j] w[o,c,kh,kw]
//   conv2d_backward_weight: dw[o,c,kh,kw] (+)= sum_{n,i,j} dy[n,o,i,j] x[n,c,i*S+kh-P,j*S+kw-P]
//   conv2d_backward_bias:   db[o] (+)= sum_{n,i,j} dy[n,o,i,j]
// Shapes: x, dx f32[B, C, H, W]; w, dw f32[O, C, K, K]; b, db f32[O]; y, dy f32[B, O, Ho, Wo].
// Outside the image x reads as 0. Every output is written by one invocation or one workgroup (the
// gradients gather, summing in a fixed order), so nothing needs atomics.
// Register blocking: forward invocations compute 4 output channels x PX adjacent output columns,
// input-gradient invocations 4 input channels x PX adjacent input columns, weight-gradient
// workgroups 4 output channels of one (c, kh, kw) tap, their threads splitting the (n, i) rows.
// Each entry point declares its own bindings:
//   conv2d:                 p, x, w, b, y
//   conv2d_backward_input:  p, dy, w, dx
//   conv2d_backward_weight: p, dy, x, dw
//   conv2d_backward_bias:   p, dy, db

struct Params {
  batch: u32, // B
  c: u32,     // C, input channels
  h: u32,     // H
  w: u32,     // W
  o: u32,     // O, output channels
  k: u32,     // K, kernel size
  s: u32,     // S, stride
  pad: u32,   // P, zero padding on each side
  ho: u32,    // Ho = (H + 2P - K) / S + 1
  wo: u32,    // Wo = (W + 2P - K) / S + 1
}

@group(0) @binding(0) var<uniform> p: Params;
// conv2d
@group(0) @binding(1) var<storage, read> x: array<f32>;             // [B, C, H, W]
@group(0) @binding(2) var<storage, read> weight: array<f32>;        // [O, C, K, K]
@group(0) @binding(3) var<storage, read> bias: array<f32>;          // [O]
@group(0) @binding(4) var<storage, read_write> y: array<f32>;       // [B, O, Ho, Wo]
// the backward passes
@group(0) @binding(1) var<storage, read> dy: array<f32>;            // [B, O, Ho, Wo]
// conv2d_backward_input (weight as above)
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;      // [B, C, H, W]
// conv2d_backward_weight
@group(0) @binding(2) var<storage, read> x_saved: array<f32>;       // [B, C, H, W] the forward's input
@group(0) @binding(3) var<storage, read_write> dweight: array<f32>; // [O, C, K, K]
// conv2d_backward_bias
@group(0) @binding(2) var<storage, read_write> dbias: array<f32>;   // [O]

override WG: u32 = 64;
// Adjacent output (forward) or input (input gradient) columns per invocation.
override PX: u32 = 4;
override ACCUMULATE: bool = false;

const MAX_PX: u32 = 8;

fn flat_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// Four channel indices from c0, clamped to the last (the extra lanes' results are not stored).
fn lanes(c0: u32, count: u32) -> vec4u {
  return min(vec4u(c0, c0 + 1u, c0 + 2u, c0 + 3u), vec4u(count - 1u));
}

// ---- forward: invocation (n, i, column block) along x, a block of 4 output channels along z.
@compute @workgroup_size(WG)
fn conv2d(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let blocks = (p.wo + PX - 1u) / PX;
  let cell = flat_index(gid, nwg);
  if (cell >= p.batch * p.ho * blocks) {
    return;
  }
  let j0 = (cell % blocks) * PX;
  let ni = cell / blocks;
  let i = ni % p.ho;
  let n = ni / p.ho;
  let o4 = lanes(gid.z * 4u, p.o);
  let kk = p.k * p.k;
  let ckk = p.c * kk;
  let wrow = o4 * ckk;
  var acc: array<vec4f, MAX_PX>;
  let b4 = vec4f(bias[o4.x], bias[o4.y], bias[o4.z], bias[o4.w]);
  for (var px = 0u; px < PX; px++) {
    acc[px] = b4;
  }
  for (var c = 0u; c < p.c; c++) {
    for (var kh = 0u; kh < p.k; kh++) {
      let r = i32(i * p.s + kh) - i32(p.pad);
      if (r < 0 || r >= i32(p.h)) {
        continue;
      }
      let xrow = ((n * p.c + c) * p.h + u32(r)) * p.w;
      let tap = c * kk + kh * p.k;
      for (var kw = 0u; kw < p.k; kw++) {
        let wv = vec4f(weight[wrow.x + tap + kw], weight[wrow.y + tap + kw], weight[wrow.z + tap + kw], weight[wrow.w + tap + kw]);
        for (var px = 0u; px < PX; px++) {
          let q = i32((j0 + px) * p.s + kw) - i32(p.pad);
          let inside = q >= 0 && q < i32(p.w);
          let xv = select(0.0, x[xrow + u32(clamp(q, 0, i32(p.w) - 1))], inside);
          acc[px] += xv * wv;
        }
      }
    }
  }
  for (var px = 0u; px < PX; px++) {
    let j = j0 + px;
    if (j >= p.wo) {
      break;
    }
    let base = (n * p.o * p.ho + i) * p.wo + j;
    let plane = p.ho * p.wo;
    y[base + o4.x * plane] = acc[px].x;
    if (gid.z * 4u + 1u < p.o) { y[base + o4.y * plane] = acc[px].y; }
    if (gid.z * 4u + 2u < p.o) { y[base + o4.z * plane] = acc[px].z; }
    if (gid.z * 4u + 3u < p.o) { y[base + o4.w * plane] = acc[px].w; }
  }
}

// ---- input gradient: invocation (n, r, column block) along x, a block of 4 input channels along z.
@compute @workgroup_size(WG)
fn conv2d_backward_input(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let blocks = (p.w + PX - 1u) / PX;
  let cell = flat_index(gid, nwg);
  if (cell >= p.batch * p.h * blocks) {
    return;
  }
  let q0 = (cell % blocks) * PX;
  let nr = cell / blocks;
  let r = nr % p.h;
  let n = nr / p.h;
  let c4 = lanes(gid.z * 4u, p.c);
  let kk = p.k * p.k;
  let ckk = p.c * kk;
  let s = i32(p.s);
  var acc: array<vec4f, MAX_PX>;
  for (var o = 0u; o < p.o; o++) {
    let wo_base = o * ckk;
    for (var kh = 0u; kh < p.k; kh++) {
      // Output row i with i*S + kh - P = r.
      let ti = i32(r + p.pad) - i32(kh);
      if (ti < 0 || ti % s != 0 || ti / s >= i32(p.ho)) {
        continue;
      }
      let dyrow = ((n * p.o + o) * p.ho + u32(ti / s)) * p.wo;
      let tap = wo_base + kh * p.k;
      for (var kw = 0u; kw < p.k; kw++) {
        let wv = vec4f(weight[tap + c4.x * kk + kw], weight[tap + c4.y * kk + kw], weight[tap + c4.z * kk + kw], weight[tap + c4.w * kk + kw]);
        for (var px = 0u; px < PX; px++) {
          let tj = i32(q0 + px + p.pad) - i32(kw);
          let inside = tj >= 0 && tj % s == 0 && tj / s < i32(p.wo);
          let g = select(0.0, dy[dyrow + u32(clamp(tj / s, 0, i32(p.wo) - 1))], inside);
          acc[px] += g * wv;
        }
      }
    }
  }
  for (var px = 0u; px < PX; px++) {
    let q = q0 + px;
    if (q >= p.w) {
      break;
    }
    let base = (n * p.c * p.h + r) * p.w + q;
    let plane = p.h * p.w;
    dx[base + c4.x * plane] = acc[px].x;
    if (gid.z * 4u + 1u < p.c) { dx[base + c4.y * plane] = acc[px].y; }
    if (gid.z * 4u + 2u < p.c) { dx[base + c4.z * plane] = acc[px].z; }
    if (gid.z * 4u + 3u < p.c) { dx[base + c4.w * plane] = acc[px].w; }
  }
}

// ---- weight and bias gradients: one workgroup per output (4 output channels of one tap, or one
// bias), its WG threads striding over the B*Ho rows (n, i), then a tree sum in workgroup memory.
var<workgroup> partial: array<vec4f, WG>;

fn tree_sum(lid: u32, v: vec4f) -> vec4f {
  partial[lid] = v;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half >>= 1u) {
    if (lid < half) {
      partial[lid] += partial[lid + half];
    }
    workgroupBarrier();
  }
  return partial[0];
}

@compute @workgroup_size(WG)
fn conv2d_backward_weight(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  // Workgroup g: channel block g / (C*K*K), tap (c, kh, kw) = g % (C*K*K).
  let g = wid.x + wid.y * nwg.x;
  let kk = p.k * p.k;
  let ckk = p.c * kk;
  let blocks = (p.o + 3u) / 4u;
  if (g >= blocks * ckk) {
    return; // uniform across the workgroup: the barriers below stay in uniform control flow
  }
  let tap = g % ckk;
  let first = (g / ckk) * 4u;
  let o4 = lanes(first, p.o);
  let c = tap / kk;
  let kh = (tap % kk) / p.k;
  let kw = tap % p.k;
  let plane = p.ho * p.wo;
  var acc = vec4f();
  for (var row = lid; row < p.batch * p.ho; row += WG) {
    let i = row % p.ho;
    let n = row / p.ho;
    let r = i32(i * p.s + kh) - i32(p.pad);
    if (r < 0 || r >= i32(p.h)) {
      continue;
    }
    let xrow = ((n * p.c + c) * p.h + u32(r)) * p.w;
    let dyrow = n * p.o * plane + i * p.wo;
    for (var j = 0u; j < p.wo; j++) {
      let q = i32(j * p.s + kw) - i32(p.pad);
      if (q < 0 || q >= i32(p.w)) {
        continue;
      }
      let xv = x_saved[xrow + u32(q)];
      let at = dyrow + j;
      acc += xv * vec4f(dy[at + o4.x * plane], dy[at + o4.y * plane], dy[at + o4.z * plane], dy[at + o4.w * plane]);
    }
  }
  let total = tree_sum(lid, acc);
  if (lid == 0u) {
    for (var u = 0u; u < 4u && first + u < p.o; u++) {
      let at = (first + u) * ckk + tap;
      if (ACCUMULATE) {
        dweight[at] += total[u];
      } else {
        dweight[at] = total[u];
      }
    }
  }
}

@compute @workgroup_size(WG)
fn conv2d_backward_bias(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let o = wid.x + wid.y * nwg.x;
  if (o >= p.o) {
    return;
  }
  let plane = p.ho * p.wo;
  var acc = 0.0;
  for (var row = lid; row < p.batch * p.ho; row += WG) {
    let i = row % p.ho;
    let n = row / p.ho;
    let base = (n * p.o + o) * plane + i * p.wo;
    for (var j = 0u; j < p.wo; j++) {
      acc += dy[base + j];
    }
  }
  let total = tree_sum(lid, vec4f(acc, 0.0, 0.0, 0.0));
  if (lid == 0u) {
    if (ACCUMULATE) {
      dbias[o] += total.x;
    } else {
      dbias[o] = total.x;
    }
  }
}
