// Reductions: column sums (the bias gradient, over the batch) and per-row sum / mean / max
// (rows = 1 reduces a whole vector, e.g. the batch's losses). With ACCUMULATE the result is added
// to what `out` holds, so a loss can be summed over steps without reading it back.
//   col_sum:     out[c] (+)= sum_r x[r, c]        x f32[B, C] -> out f32[C]
//   reduce_rows: out[r] (+)= op_c x[r, c]         x f32[B, C] -> out f32[B]
// Elementwise maps and the fused softmax do not belong here.

struct Params {
  rows: u32, // B
  cols: u32, // C
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [B, C]
@group(0) @binding(2) var<storage, read_write> out: array<f32>;  // [C] (col_sum) or [B] (reduce_rows)

override ACCUMULATE: bool = false;

fn store(i: u32, v: f32) {
  if (ACCUMULATE) {
    out[i] += v;
  } else {
    out[i] = v;
  }
}

// ---- col_sum: a workgroup covers COL_WG adjacent columns (coalesced loads along a row) with
// ROW_WG threads per column striding over the rows; the ROW_WG partial sums are then added.
override COL_WG: u32 = 64;
override ROW_WG: u32 = 4;

var<workgroup> col_partial: array<f32, COL_WG * ROW_WG>;

@compute @workgroup_size(COL_WG, ROW_WG)
fn col_sum(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let c = (wid.x + wid.y * nwg.x) * COL_WG + lid.x;
  var s = 0.0;
  if (c < p.cols) {
    for (var r = lid.y; r < p.rows; r += ROW_WG) {
      s += x[r * p.cols + c];
    }
  }
  col_partial[lid.y * COL_WG + lid.x] = s;
  workgroupBarrier();
  if (lid.y == 0u && c < p.cols) {
    var total = 0.0;
    for (var k = 0u; k < ROW_WG; k++) {
      total += col_partial[k * COL_WG + lid.x];
    }
    store(c, total);
  }
}

// ---- reduce_rows: one workgroup per row (folded into y past 65535 rows); each thread strides
// over the row, then a tree reduction in workgroup memory. WG must be a power of two.
override WG: u32 = 256;
// 0 = sum, 1 = mean, 2 = max.
override OP: u32 = 0u;

const LOWEST: f32 = -0x1.fffffep+127f; // the lowest finite f32

var<workgroup> row_partial: array<f32, WG>;

fn combine(a: f32, b: f32) -> f32 {
  if (OP == 2u) {
    return max(a, b);
  }
  return a + b;
}

@compute @workgroup_size(WG)
fn reduce_rows(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) {
    return;
  }
  let base = row * p.cols;
  var acc = select(0.0, LOWEST, OP == 2u);
  for (var c = lid; c < p.cols; c += WG) {
    acc = combine(acc, x[base + c]);
  }
  row_partial[lid] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      row_partial[lid] = combine(row_partial[lid], row_partial[lid + s]);
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    var v = row_partial[0];
    if (OP == 1u) {
      v = v / f32(p.cols);
    }
    store(row, v);
  }
}
