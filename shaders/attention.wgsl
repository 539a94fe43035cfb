// The core of causal multi-head self-attention, forward and backward: scores, softmax and the
// weighted sum of values, and their gradients. The q/k/v and output projections are matmuls
// (client/gpu/ops/attention.ts chains them); the reference is shared/layers/attention.ts.
//   attention_scores:           P[b,h,i,j] = softmax_j<=i(q_i · k_j · scale), 0 for j > i
//   attention_values:           o[b,i,h*D+k] = sum_j<=i P[b,h,i,j] v[b,j,h*D+k]
//   attention_backward_scores:  dS[b,h,i,j] = P[i,j] (dP[i,j] - sum_j' P[i,j'] dP[i,j']) scale,
//                               dP[i,j] = dO_i · v_j (0 for j > i)
//   attention_backward_qkv:     dq_i = sum_j<=i dS[i,j] k_j;  dk_j = sum_i>=j dS[i,j] q_i;
//                               dv_j = sum_i>=j P[i,j] dO_i      (per head)
// Shapes: qkv, dqkv f32[B*T, 3C], row b*T+i holding q (columns 0..C), k (C..2C), v (2C..3C), head h
// in columns h*D..(h+1)*D of each (D = C / H, as PyTorch's in_proj); o, dO f32[B*T, C];
// P, dS f32[B, H, T, T]. Rows of P and dS take one invocation each; o and dqkv one per 4 channels
// of a head, each a gather over its row or column of P, so nothing needs atomics and every sum has
// a fixed order. One element per invocation (bench/experiments/attention/01-channel-per-invocation.wgsl)
// loaded each weight 4 times as often: on SwiftShader, at B 32, T 64, C 64, 4 heads, its values
// pass took 1.4x as long and its qkv backward 1.1x (`npm run bench -- models --query
// 'only=none&experiments=1'`); the backward's dk and dv walk a column of dS and P, which stays slow.
// Each entry point declares its own bindings:
//   attention_scores:          p, qkv, probs_out
//   attention_values:          p, qkv, probs, o
//   attention_backward_scores: p, qkv, probs, d_o, dscores_out
//   attention_backward_qkv:    p, qkv, probs, d_o, dscores, dqkv

struct Params {
  batch: u32, // B
  t: u32,     // T
  c: u32,     // C
  heads: u32, // H
  d: u32,     // D = C / H
  scale: f32, // 1 / sqrt(D)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;             // [B*T, 3C]
// attention_scores
@group(0) @binding(2) var<storage, read_write> probs_out: array<f32>; // [B, H, T, T]
// attention_values and the backward passes
@group(0) @binding(2) var<storage, read> probs: array<f32>;           // [B, H, T, T]
// attention_values
@group(0) @binding(3) var<storage, read_write> o: array<f32>;         // [B*T, C]
// the backward passes
@group(0) @binding(3) var<storage, read> d_o: array<f32>;             // [B*T, C]
// attention_backward_scores
@group(0) @binding(4) var<storage, read_write> dscores_out: array<f32>; // [B, H, T, T]
// attention_backward_qkv
@group(0) @binding(4) var<storage, read> dscores: array<f32>;         // [B, H, T, T]
@group(0) @binding(5) var<storage, read_write> dqkv: array<f32>;      // [B*T, 3C]

override WG: u32 = 64;

fn flat_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// Offset in qkv of part (0 q, 1 k, 2 v) of head h at position i of example b.
fn qkv_at(b: u32, i: u32, part: u32, h: u32) -> u32 {
  return (b * p.t + i) * 3u * p.c + part * p.c + h * p.d;
}

@compute @workgroup_size(WG)
fn attention_scores(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = flat_index(gid, nwg); // (b * H + h) * T + i
  if (row >= p.batch * p.heads * p.t) {
    return;
  }
  let i = row % p.t;
  let bh = row / p.t;
  let h = bh % p.heads;
  let b = bh / p.heads;
  let q = qkv_at(b, i, 0u, h);
  let base = row * p.t;
  // Scores into the output row, then exp(score - max) in place, then normalised.
  var m = -3.0e38;
  for (var j = 0u; j <= i; j++) {
    let kj = qkv_at(b, j, 1u, h);
    var s = 0.0;
    for (var k = 0u; k < p.d; k++) {
      s += qkv[q + k] * qkv[kj + k];
    }
    s *= p.scale;
    probs_out[base + j] = s;
    m = max(m, s);
  }
  var sum = 0.0;
  for (var j = 0u; j <= i; j++) {
    let e = exp(probs_out[base + j] - m);
    probs_out[base + j] = e;
    sum += e;
  }
  let inv = 1.0 / sum;
  for (var j = 0u; j <= i; j++) {
    probs_out[base + j] *= inv;
  }
  for (var j = i + 1u; j < p.t; j++) {
    probs_out[base + j] = 0.0;
  }
}

// Channels of one head per invocation in attention_values and attention_backward_qkv: each load of
// P or dS serves CH of them.
const CH: u32 = 4u;

// Blocks of CH channels in one head's D.
fn blocks_per_head() -> u32 {
  return (p.d + CH - 1u) / CH;
}

@compute @workgroup_size(WG)
fn attention_values(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = flat_index(gid, nwg); // ((b * T + i) * H + h) * blocks + kb
  let blocks = blocks_per_head();
  if (e >= p.batch * p.t * p.heads * blocks) {
    return;
  }
  let kb = e % blocks;
  let h = (e / blocks) % p.heads;
  let bi = e / (blocks * p.heads);
  let i = bi % p.t;
  let b = bi / p.t;
  let k0 = kb * CH;
  let n = min(CH, p.d - k0);
  let prow = ((b * p.heads + h) * p.t + i) * p.t;
  var s = vec4f(0.0);
  for (var j = 0u; j <= i; j++) {
    let w = probs[prow + j];
    let v = qkv_at(b, j, 2u, h) + k0;
    s.x += w * qkv[v];
    if (n > 1u) { s.y += w * qkv[v + 1u]; }
    if (n > 2u) { s.z += w * qkv[v + 2u]; }
    if (n > 3u) { s.w += w * qkv[v + 3u]; }
  }
  let out = bi * p.c + h * p.d + k0;
  for (var j = 0u; j < n; j++) {
    o[out + j] = s[j];
  }
}

@compute @workgroup_size(WG)
fn attention_backward_scores(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = flat_index(gid, nwg); // (b * H + h) * T + i
  if (row >= p.batch * p.heads * p.t) {
    return;
  }
  let i = row % p.t;
  let bh = row / p.t;
  let h = bh % p.heads;
  let b = bh / p.heads;
  let go = (b * p.t + i) * p.c + h * p.d;
  let base = row * p.t;
  // dP into the output row, then the softmax's backward in place.
  var dot = 0.0;
  for (var j = 0u; j <= i; j++) {
    let vj = qkv_at(b, j, 2u, h);
    var s = 0.0;
    for (var k = 0u; k < p.d; k++) {
      s += d_o[go + k] * qkv[vj + k];
    }
    dscores_out[base + j] = s;
    dot += s * probs[base + j];
  }
  for (var j = 0u; j <= i; j++) {
    dscores_out[base + j] = probs[base + j] * (dscores_out[base + j] - dot) * p.scale;
  }
  for (var j = i + 1u; j < p.t; j++) {
    dscores_out[base + j] = 0.0;
  }
}

@compute @workgroup_size(WG)
fn attention_backward_qkv(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = flat_index(gid, nwg); // (((b * T + i) * 3 + part) * H + h) * blocks + kb
  let blocks = blocks_per_head();
  if (e >= p.batch * p.t * 3u * p.heads * blocks) {
    return;
  }
  let kb = e % blocks;
  let h = (e / blocks) % p.heads;
  let part = (e / (blocks * p.heads)) % 3u;
  let bi = e / (blocks * p.heads * 3u);
  let i = bi % p.t;
  let b = bi / p.t;
  let k0 = kb * CH;
  let n = min(CH, p.d - k0);
  let plane = (b * p.heads + h) * p.t * p.t;
  var s = vec4f(0.0);
  if (part == 0u) {
    // dq_i = sum_j<=i dS[i, j] k_j
    for (var j = 0u; j <= i; j++) {
      let w = dscores[plane + i * p.t + j];
      let x = qkv_at(b, j, 1u, h) + k0;
      s.x += w * qkv[x];
      if (n > 1u) { s.y += w * qkv[x + 1u]; }
      if (n > 2u) { s.z += w * qkv[x + 2u]; }
      if (n > 3u) { s.w += w * qkv[x + 3u]; }
    }
  } else if (part == 1u) {
    // dk_i = sum_r>=i dS[r, i] q_r
    for (var r = i; r < p.t; r++) {
      let w = dscores[plane + r * p.t + i];
      let x = qkv_at(b, r, 0u, h) + k0;
      s.x += w * qkv[x];
      if (n > 1u) { s.y += w * qkv[x + 1u]; }
      if (n > 2u) { s.z += w * qkv[x + 2u]; }
      if (n > 3u) { s.w += w * qkv[x + 3u]; }
    }
  } else {
    // dv_i = sum_r>=i P[r, i] dO_r
    for (var r = i; r < p.t; r++) {
      let w = probs[plane + r * p.t + i];
      let x = (b * p.t + r) * p.c + h * p.d + k0;
      s.x += w * d_o[x];
      if (n > 1u) { s.y += w * d_o[x + 1u]; }
      if (n > 2u) { s.z += w * d_o[x + 2u]; }
      if (n > 3u) { s.w += w * d_o[x + 3u]; }
    }
  }
  let out = bi * 3u * p.c + part * p.c + h * p.d + k0;
  for (var j = 0u; j < n; j++) {
    dqkv[out + j] = s[j];
  }
}
