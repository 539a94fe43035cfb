// Plain-loop CPU reference of gradient compression (shaders/quantize.wgsl): block-wise int8 with
// one f32 scale per block, and IEEE binary16 (rounded to nearest even, by hand: Node 20 has no
// Math.f16round). Packing is little-endian: int8 element i is byte i of the u32 words, f16
// element i is half-word i, so a packed buffer's bytes read as Int8Array / Uint16Array directly.
//
// Round-trip bounds: int8 |x - dequant(quant(x))| <= scale/2 per element (scale = maxabs/127 of
// its block); f16 relative error <= 2^-11 in the normal range (|x| >= 2^-14), absolute <= 2^-25 below.

/** Round half to even, the rounding of WGSL's round(). */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * x: f32[N] -> q: i8[N], scales: f32[ceil(N / block)]. Per block: scale = maxabs / 127 (f32),
 * q = round(x / scale) clamped to [-127, 127]; an all-zero block has scale 0 and q 0.
 * @example quantizeInt8Ref(new Float32Array([1, -0.5]), 256); // q [127, -64] (-63.5 rounds to even), scales [1/127]
 */
export function quantizeInt8Ref(x: ArrayLike<number>, block: number): { q: Int8Array; scales: Float32Array } {
  if (!Number.isInteger(block) || block < 1) throw new Error(`quantizeInt8Ref: block must be a positive integer, got ${block}`);
  const n = x.length;
  const blocks = Math.ceil(n / block);
  const q = new Int8Array(n);
  const scales = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    const start = b * block;
    const end = Math.min(start + block, n);
    let maxAbs = 0;
    for (let i = start; i < end; i++) maxAbs = Math.max(maxAbs, Math.abs(x[i]));
    const scale = Math.fround(maxAbs / 127);
    scales[b] = scale;
    if (scale === 0) continue;
    for (let i = start; i < end; i++) {
      const r = roundHalfEven(Math.fround(x[i] / scale));
      q[i] = Math.max(-127, Math.min(127, r));
    }
  }
  return { q, scales };
}

/** q: i8[N], scales: f32[ceil(N / block)] -> x: f32[N], x[i] = q[i] · scales[floor(i / block)]. */
export function dequantizeInt8Ref(q: ArrayLike<number>, scales: ArrayLike<number>, block: number): Float32Array {
  if (scales.length !== Math.ceil(q.length / block)) {
    throw new Error(`dequantizeInt8Ref: ${scales.length} scales for ${q.length} values in blocks of ${block}`);
  }
  const x = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) x[i] = q[i] * scales[Math.floor(i / block)];
  return x;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * The binary16 bits of float32(v), rounded to nearest even; overflow gives ±inf, NaN a quiet NaN
 * (0x7e00), values below half the smallest subnormal ±0.
 * @example f32ToF16Bits(1); // 0x3c00
 */
export function f32ToF16Bits(v: number): number {
  f32[0] = v;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | (mant ? 0x7e00 : 0x7c00);
  if (exp > 142) return sign | 0x7c00; // >= 2^16: past the largest finite half
  if (exp >= 113) {
    // Normal half: rebias the exponent (127 -> 15), keep 10 of 23 mantissa bits, round on the rest.
    // A carry out of the mantissa bumps the exponent, and past 65504 lands exactly on inf (0x7c00).
    let h = ((exp - 112) << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++;
    return sign | h;
  }
  if (exp < 102) return sign; // below 2^-25: rounds to zero
  // Subnormal half: value = full · 2^(exp-150) = h · 2^-24, so h = full >> (126 - exp), rounded.
  const full = mant | 0x800000;
  const shift = 126 - exp;
  let h = full >>> shift;
  const rest = full & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && (h & 1) === 1)) h++;
  return sign | h;
}

/** The value of binary16 bits h (exact in float32). @example f16BitsToF32(0x3555); // 0.333251953125 */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** x: f32[N] -> u32[ceil(N / 2)], element 2i in the low half-word of word i, a ragged tail padded with 0. */
export function packF16Ref(x: ArrayLike<number>): Uint32Array {
  const out = new Uint32Array(Math.ceil(x.length / 2));
  for (let i = 0; i < x.length; i++) out[i >> 1] |= f32ToF16Bits(x[i]) << (16 * (i & 1));
  return out;
}

/** packed: u32[ceil(N / 2)] -> f32[N]. */
export function unpackF16Ref(packed: ArrayLike<number>, count: number): Float32Array {
  if (packed.length < Math.ceil(count / 2)) throw new Error(`unpackF16Ref: ${packed.length} words cannot hold ${count} halves`);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = f16BitsToF32((packed[i >> 1] >>> (16 * (i & 1))) & 0xffff);
  return out;
}
