// Gradient compression: float32 <-> block-wise int8 (one f32 scale per BLOCK values) and
// float32 <-> binary16 (two per u32, through pack2x16float / unpack2x16float; no shader-f16
// feature needed). Packing is little-endian: int8 element i is byte i of `q`, half i is half-word
// i of `packed`. Anything beyond conversion (error feedback, top-k) does not belong here.
//   quantize_int8:   scale[b] = maxabs(block b) / 127; q[i] = clamp(round(x[i] / scale), -127, 127)
//                    (an all-zero block: scale 0, q 0)
//   dequantize_int8: x[i] = q[i] * scale[i / BLOCK]
//   pack_f16, unpack_f16: round-trip through binary16; inf, NaN and values past 65504 are
//                    converted by hand (the builtins leave them indeterminate).
// Shapes: x f32[N]; q i8[N] as u32[ceil(N/4)]; scales f32[ceil(N/BLOCK)]; packed u32[ceil(N/2)].

struct Params {
  count: u32, // N
}

@group(0) @binding(0) var<uniform> p: Params;

// quantize_int8
@group(0) @binding(1) var<storage, read> qx: array<f32>;                   // [N]
@group(0) @binding(2) var<storage, read_write> q_out: array<atomic<u32>>;   // [ceil(N/4)]
@group(0) @binding(3) var<storage, read_write> scales_out: array<f32>;     // [ceil(N/BLOCK)]
// dequantize_int8
@group(0) @binding(1) var<storage, read> q_in: array<u32>;                 // [ceil(N/4)]
@group(0) @binding(2) var<storage, read> scales_in: array<f32>;            // [ceil(N/BLOCK)]
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;             // [N]
// pack_f16 (x read as raw bits so NaN and inf are recognised exactly)
@group(0) @binding(1) var<storage, read> fx_bits: array<u32>;              // [N]
@group(0) @binding(2) var<storage, read_write> packed_out: array<u32>;     // [ceil(N/2)]
// unpack_f16 (x written as raw bits, for the same reason)
@group(0) @binding(1) var<storage, read> packed_in: array<u32>;            // [ceil(N/2)]
@group(0) @binding(2) var<storage, read_write> fx_out_bits: array<u32>;    // [N]

override WG: u32 = 64;     // quantize: threads per block, a power of two; elementwise kernels: group size
override BLOCK: u32 = 256; // values per int8 scale, at most 1024

var<workgroup> block_max: array<f32, WG>;

// One workgroup per block (folded into y past 65535 blocks). The block's bytes may share their
// first and last u32 words with the neighbouring blocks (BLOCK need not be a multiple of 4), so
// those words are updated with atomicAnd/atomicOr on this block's bytes only: the result does not
// depend on the order the workgroups run. The last block also zeroes the padding bytes after N.
@compute @workgroup_size(WG)
fn quantize_int8(
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let b = wid.x + wid.y * nwg.x;
  let start = b * BLOCK;
  if (start >= p.count) {
    return;
  }
  let end = min(start + BLOCK, p.count);

  var m = 0.0;
  for (var i = start + lid; i < end; i += WG) {
    m = max(m, abs(qx[i]));
  }
  block_max[lid] = m;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      block_max[lid] = max(block_max[lid], block_max[lid + s]);
    }
    workgroupBarrier();
  }
  let scale = block_max[0] / 127.0;
  if (lid == 0u) {
    scales_out[b] = scale;
  }

  let owned_end = select(end, (p.count + 3u) & ~3u, end == p.count);
  for (var w = start / 4u + lid; w * 4u < owned_end; w += WG) {
    var word = 0u;
    var mask = 0u;
    for (var k = 0u; k < 4u; k++) {
      let i = w * 4u + k;
      if (i >= start && i < owned_end) {
        mask |= 0xffu << (8u * k);
        if (i < end && scale > 0.0) {
          let v = i32(round(clamp(qx[i] / scale, -127.0, 127.0)));
          word |= (bitcast<u32>(v) & 0xffu) << (8u * k);
        }
      }
    }
    if (mask == 0xffffffffu) {
      atomicStore(&q_out[w], word);
    } else {
      atomicAnd(&q_out[w], ~mask);
      atomicOr(&q_out[w], word);
    }
  }
}

@compute @workgroup_size(WG)
fn dequantize_int8(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.count) {
    return;
  }
  let v = extractBits(bitcast<i32>(q_in[i / 4u]), 8u * (i % 4u), 8u); // sign-extends
  dx[i] = f32(v) * scales_in[i / BLOCK];
}

// binary16 bits of the f32 with bits `b` (low 16 bits of the result).
fn to_f16_bits(b: u32) -> u32 {
  let mag = b & 0x7fffffffu;
  let sign = (b >> 16u) & 0x8000u;
  if (mag > 0x7f800000u) {
    return sign | 0x7e00u; // NaN
  }
  if (mag >= 0x477ff000u) {
    return sign | 0x7c00u; // >= 65520 rounds to inf (and inf stays inf)
  }
  if (mag > 0x477fe000u) {
    return sign | 0x7bffu; // (65504, 65520) rounds down to 65504, the largest half
  }
  return pack2x16float(vec2f(bitcast<f32>(b), 0.0)) & 0xffffu;
}

// f32 bits of the binary16 `h`.
fn from_f16_bits(h: u32) -> u32 {
  if ((h & 0x7c00u) == 0x7c00u) {
    return ((h & 0x8000u) << 16u) | 0x7f800000u | ((h & 0x3ffu) << 13u); // inf, NaN
  }
  return bitcast<u32>(unpack2x16float(h).x);
}

// One invocation per output word: halves 2w and 2w + 1 (a ragged tail is padded with 0).
@compute @workgroup_size(WG)
fn pack_f16(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let w = gid.x + gid.y * nwg.x * WG;
  if (w * 2u >= p.count) {
    return;
  }
  let lo = to_f16_bits(fx_bits[w * 2u]);
  var hi = 0u;
  if (w * 2u + 1u < p.count) {
    hi = to_f16_bits(fx_bits[w * 2u + 1u]);
  }
  packed_out[w] = lo | (hi << 16u);
}

@compute @workgroup_size(WG)
fn unpack_f16(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.count) {
    return;
  }
  fx_out_bits[i] = from_f16_bits((packed_in[i / 2u] >> (16u * (i % 2u))) & 0xffffu);
}
