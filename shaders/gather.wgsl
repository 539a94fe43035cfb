// Batch gather: rows of a uint8 dataset held on the GPU -> float32 model input and u32 labels.
// Lets a worker keep its whole shard on the GPU and pick each batch with an index list.
// Shapes: data u8[N, F] packed 4 per u32; labels u8[N] packed 4 per u32;
//         order u32[S] (an epoch's permutation); x f32[B, F]; y u32[B].

struct Params {
  batch: u32,     // B
  features: u32,  // F
  start: u32,     // first position in `order` for this batch
  count: u32,     // N, examples in the dataset (positions wrap modulo S)
  order_len: u32, // S
}

@group(0) @binding(0) var<storage, read> data: array<u32>;      // u8[N*F], packed
@group(0) @binding(1) var<storage, read> labels: array<u32>;    // u8[N], packed
@group(0) @binding(2) var<storage, read> order: array<u32>;     // [S]
@group(0) @binding(3) var<storage, read_write> x: array<f32>;   // [B, F]
@group(0) @binding(4) var<storage, read_write> y: array<u32>;   // [B]
@group(0) @binding(5) var<uniform> p: Params;

override WG: u32 = 256;

fn byte_at(word: u32, i: u32) -> u32 {
  return (word >> ((i & 3u) * 8u)) & 0xffu;
}

@compute @workgroup_size(WG)
fn gather_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.batch * p.features) { return; }
  let b = i / p.features;
  let f = i - b * p.features;
  let row = order[(p.start + b) % p.order_len];
  let at = row * p.features + f;
  x[i] = f32(byte_at(data[at >> 2u], at)) / 255.0;
  if (f == 0u) {
    y[b] = byte_at(labels[row >> 2u], row);
  }
}
