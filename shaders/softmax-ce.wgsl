// Fused softmax + cross-entropy: per-row loss and the gradient of the batch's MEAN loss, in one
// pass over the logits per row. Stable for any logits: everything is computed from x - max(x), so
// exp() never overflows and the sum is at least 1.
//   loss[b]       = log(sum_c exp(x[b, c] - m_b)) - (x[b, label_b] - m_b)
//   dlogits[b, c] = (softmax(x[b])[c] - (c == label_b)) / B
// A label >= V marks an ignored row: loss 0 and gradient 0.
// Shapes: logits f32[B, V]; labels u32[B]; loss f32[B]; dlogits f32[B, V].
// Two entry points, the same maths:
//   softmax_ce:      one workgroup of WG threads per row (workgroup ids folded into y past 65535
//                    rows), tree reductions over V: for wide rows.
//   softmax_ce_rows: one invocation per row, plain loops over V, no barriers: for rows of up to a
//                    few hundred classes. On SwiftShader (a machine shared with other jobs), the
//                    workgroup kind took 110-140 times as long on the transformer benchmark's 2048
//                    rows of 83 classes and 11-16 times on the CNN's 64 rows of 10: its barriers cost more
//                    than the arithmetic (bench/experiments/softmax-ce/;
//                    `npm run bench -- models --query 'only=none&experiments=1'`).

struct Params {
  rows: u32,     // B
  classes: u32,  // V
  inv_rows: f32, // 1 / B
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;         // [B, V]
@group(0) @binding(2) var<storage, read> labels: array<u32>;         // [B]
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;     // [B]
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;  // [B, V]

// softmax_ce: threads per row, a power of two (the tree reduction halves it).
// softmax_ce_rows: rows per workgroup.
override WG: u32 = 64;

const LOWEST: f32 = -0x1.fffffep+127f; // the lowest finite f32

var<workgroup> scratch: array<f32, WG>;

@compute @workgroup_size(WG)
fn softmax_ce(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) {
    return;
  }
  let base = row * p.classes;

  var m = LOWEST;
  for (var c = lid; c < p.classes; c += WG) {
    m = max(m, logits[base + c]);
  }
  scratch[lid] = m;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      scratch[lid] = max(scratch[lid], scratch[lid + s]);
    }
    workgroupBarrier();
  }
  let row_max = scratch[0];
  workgroupBarrier();

  var sum = 0.0;
  for (var c = lid; c < p.classes; c += WG) {
    sum += exp(logits[base + c] - row_max);
  }
  scratch[lid] = sum;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      scratch[lid] += scratch[lid + s];
    }
    workgroupBarrier();
  }
  let total = scratch[0];

  let label = labels[row];
  let valid = label < p.classes;
  if (lid == 0u) {
    loss[row] = select(0.0, log(total) - (logits[base + min(label, p.classes - 1u)] - row_max), valid);
  }
  let scale = select(0.0, p.inv_rows, valid);
  let inv_total = 1.0 / total;
  for (var c = lid; c < p.classes; c += WG) {
    let prob = exp(logits[base + c] - row_max) * inv_total;
    dlogits[base + c] = (prob - select(0.0, 1.0, c == label)) * scale;
  }
}

@compute @workgroup_size(WG)
fn softmax_ce_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * WG;
  if (row >= p.rows) {
    return;
  }
  let base = row * p.classes;
  var row_max = LOWEST;
  for (var c = 0u; c < p.classes; c++) {
    row_max = max(row_max, logits[base + c]);
  }
  var total = 0.0;
  for (var c = 0u; c < p.classes; c++) {
    total += exp(logits[base + c] - row_max);
  }
  let label = labels[row];
  let valid = label < p.classes;
  loss[row] = select(0.0, log(total) - (logits[base + min(label, p.classes - 1u)] - row_max), valid);
  let scale = select(0.0, p.inv_rows, valid);
  let inv_total = 1.0 / total;
  for (var c = 0u; c < p.classes; c++) {
    let prob = exp(logits[base + c] - row_max) * inv_total;
    dlogits[base + c] = (prob - select(0.0, 1.0, c == label)) * scale;
  }
}
