// 2-D convolution (PyTorch's nn.Conv2d with zero padding) as im2col + the shared matmul: the
// layout changes around the matmuls that client/gpu/ops/conv2d.ts chains. Pooling lives in
// pool.wgsl; the reference is shared/layers/conv2d.ts. On SwiftShader, on the MNIST CNN's two
// convolutions at batch 64, a training step of both took half the time of direct kernels
// (bench/experiments/conv2d/01-direct.wgsl; `npm run bench -- conv2d`): the matmul's tight loop
// beats per-element index arithmetic, most of all in the weight gradient.
//   forward:          cols = conv2d_im2col(x); rows = cols · wᵀ; y = conv2d_rows_to_output(rows) + b
//   input gradient:   dY = conv2d_output_to_rows(dy); dcols = dY · w; dx = conv2d_col2im(dcols)
//   weight gradient:  dw = dYᵀ · cols; db = column sums of dY
// Shapes (P = Ho*Wo output positions, CKK = C*K*K taps in weight order (c, kh, kw)):
//   x, dx f32[B, C, H, W]; cols, dcols f32[B*P, CKK]; rows, dY f32[B*P, O];
//   y, dy f32[B, O, Ho, Wo]; w f32[O, C, K, K] (= [O, CKK]); b f32[O].
// Outside the image x reads as 0. col2im gathers (one invocation per input element, its taps in a
// fixed order), so nothing needs atomics. Each entry point declares its own bindings:
//   conv2d_im2col:         p, x, cols
//   conv2d_rows_to_output: p, rows, y, bias
//   conv2d_output_to_rows: p, dy, dy_rows
//   conv2d_col2im:         p, dcols, dx

struct Params {
  batch: u32, // B
  c: u32,     // C, input channels
  h: u32,     // H
  w: u32,     // W
  o: u32,     // O, output channels
  k: u32,     // K, kernel size
  s: u32,     // S, stride
  pad: u32,   // zero padding on each side
  ho: u32,    // Ho = (H + 2 pad - K) / S + 1
  wo: u32,    // Wo = (W + 2 pad - K) / S + 1
}

@group(0) @binding(0) var<uniform> p: Params;
// conv2d_im2col
@group(0) @binding(1) var<storage, read> x: array<f32>;              // [B, C, H, W]
@group(0) @binding(2) var<storage, read_write> cols: array<f32>;     // [B*P, CKK]
// conv2d_rows_to_output
@group(0) @binding(1) var<storage, read> rows: array<f32>;           // [B*P, O]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;        // [B, O, Ho, Wo]
@group(0) @binding(3) var<storage, read> bias: array<f32>;           // [O]
// conv2d_output_to_rows
@group(0) @binding(1) var<storage, read> dy: array<f32>;             // [B, O, Ho, Wo]
@group(0) @binding(2) var<storage, read_write> dy_rows: array<f32>;  // [B*P, O]
// conv2d_col2im
@group(0) @binding(1) var<storage, read> dcols: array<f32>;          // [B*P, CKK]
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;       // [B, C, H, W]

override WG: u32 = 256;

fn flat_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// One invocation per (row, c, kh): the K taps along kw, adjacent in cols and (mostly) in x.
@compute @workgroup_size(WG)
fn conv2d_im2col(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = flat_index(gid, nwg); // (n * P + i * Wo + j) * C*K + c * K + kh
  let ck = p.c * p.k;
  let positions = p.ho * p.wo;
  if (e >= p.batch * positions * ck) {
    return;
  }
  let row = e / ck;
  let c = (e % ck) / p.k;
  let kh = e % p.k;
  let n = row / positions;
  let ij = row % positions;
  let i = ij / p.wo;
  let j = ij % p.wo;
  let out = e * p.k; // = row * CKK + (c * K + kh) * K
  let r = i32(i * p.s + kh) - i32(p.pad);
  if (r < 0 || r >= i32(p.h)) {
    for (var kw = 0u; kw < p.k; kw++) {
      cols[out + kw] = 0.0;
    }
    return;
  }
  let xrow = ((n * p.c + c) * p.h + u32(r)) * p.w;
  let q0 = i32(j * p.s) - i32(p.pad);
  for (var kw = 0u; kw < p.k; kw++) {
    let q = q0 + i32(kw);
    cols[out + kw] = select(0.0, x[xrow + u32(clamp(q, 0, i32(p.w) - 1))], q >= 0 && q < i32(p.w));
  }
}

@compute @workgroup_size(WG)
fn conv2d_rows_to_output(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = flat_index(gid, nwg); // (n * O + o) * P + pos
  let positions = p.ho * p.wo;
  if (e >= p.batch * p.o * positions) {
    return;
  }
  let pos = e % positions;
  let no = e / positions;
  let o = no % p.o;
  let n = no / p.o;
  y[e] = rows[(n * positions + pos) * p.o + o] + bias[o];
}

@compute @workgroup_size(WG)
fn conv2d_output_to_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = flat_index(gid, nwg); // (n * P + pos) * O + o
  let positions = p.ho * p.wo;
  if (e >= p.batch * p.o * positions) {
    return;
  }
  let o = e % p.o;
  let row = e / p.o;
  let pos = row % positions;
  let n = row / positions;
  dy_rows[e] = dy[(n * p.o + o) * positions + pos];
}

@compute @workgroup_size(WG)
fn conv2d_col2im(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = flat_index(gid, nwg); // ((n * C + c) * H + r) * W + q
  if (e >= p.batch * p.c * p.h * p.w) {
    return;
  }
  let q = e % p.w;
  let t = e / p.w;
  let r = t % p.h;
  let nc = t / p.h;
  let c = nc % p.c;
  let n = nc / p.c;
  let kk = p.k * p.k;
  let ckk = p.c * kk;
  let s = i32(p.s);
  var g = 0.0;
  // The output positions (i, j) whose window holds (r, q) at tap (kh, kw): i*S + kh - pad = r.
  for (var kh = 0u; kh < p.k; kh++) {
    let ti = i32(r + p.pad) - i32(kh);
    if (ti < 0 || ti % s != 0 || ti / s >= i32(p.ho)) {
      continue;
    }
    for (var kw = 0u; kw < p.k; kw++) {
      let tj = i32(q + p.pad) - i32(kw);
      if (tj < 0 || tj % s != 0 || tj / s >= i32(p.wo)) {
        continue;
      }
      let row = (n * p.ho + u32(ti / s)) * p.wo + u32(tj / s);
      g += dcols[row * ckk + c * kk + kh * p.k + kw];
    }
  }
  dx[e] = g;
}
