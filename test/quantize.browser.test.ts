// Gradient compression kernels (shaders/quantize.wgsl) against the CPU reference in real
// Chromium WebGPU: block-wise int8 and f16, both ways.
import { describe, expect, test } from 'vitest';
import { dequantizeInt8, packF16, quantizeInt8, unpackF16 } from '../client/gpu/ops/quantize.ts';
import type { Gpu } from '../client/gpu/runtime.ts';
import { dequantizeInt8Ref, f16BitsToF32, f32ToF16Bits, quantizeInt8Ref } from '../shared/reference/quantize.ts';
import { createRng, type Rng } from '../shared/rng.ts';
import { expectClose } from './helpers/check-op.ts';
import { testGpu } from './helpers/gpu.ts';

/** `bytes` zero bytes at byte 256 of a larger buffer, bound as a range (size a multiple of 4). */
function rangedOut(gpu: Gpu, bytes: number): GPUBufferBinding {
  const buffer = gpu.buffer(256 + bytes + 256, 'ranged');
  return { buffer, offset: 256, size: bytes };
}

/** Raw bytes of a buffer or range; for a range, also checks that nothing outside it was written. */
async function readBytes(gpu: Gpu, b: GPUBuffer | GPUBufferBinding, bytes: number): Promise<ArrayBuffer> {
  if (b instanceof GPUBuffer) return gpu.readBytes(b, 0, bytes);
  const all = new Uint8Array(await gpu.readBytes(b.buffer));
  const outside = [...all.subarray(0, 256), ...all.subarray(256 + b.size!)];
  expect(outside.every((v) => v === 0), 'writes stay inside the bound range').toBe(true);
  return all.slice(256, 256 + bytes).buffer;
}

/** Gradient-like values: normal, magnitudes spread over 4 decades, with all-zero runs. */
function gradientLike(rng: Rng, n: number, zeroFrom = -1, zeroTo = -1): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => (i >= zeroFrom && i < zeroTo ? 0 : rng.normal() * 10 ** rng.uniform(-3, 1)));
}

describe('int8 block quantization vs reference', () => {
  // The GPU's x / scale is within 2.5 ulp (WGSL), not correctly rounded, so a value within an ulp
  // of a rounding tie may land on the other integer: q may differ from the reference by 1. The
  // round trip is then still within scale/2 up to that ulp. Scales: maxabs / 127, 2.5 ulp too.
  test.for([
    { count: 1, block: 256, zero: [-1, -1], ranges: false },
    { count: 7, block: 3, zero: [3, 6], ranges: true },
    { count: 33, block: 4, zero: [-1, -1], ranges: false },
    { count: 129, block: 7, zero: [14, 21], ranges: true },
    { count: 517, block: 256, zero: [256, 512], ranges: false }, // a zero block, then a tail of 5
    { count: 1000, block: 33, zero: [0, 33], ranges: false },
    { count: 3001, block: 1024, zero: [-1, -1], ranges: true },
    { count: 1031, block: 1, zero: [5, 9], ranges: false },
  ])('N=$count block=$block zeros=$zero ranges=$ranges', async ({ count, block, zero, ranges }) => {
    const gpu = await testGpu();
    const rng = createRng(count * 7 + block);
    const x = gradientLike(rng, count, zero[0], zero[1]);
    const words = Math.ceil(count / 4);
    const blocks = Math.ceil(count / block);
    const q = ranges ? rangedOut(gpu, words * 4) : gpu.upload(new Uint32Array(words).fill(0xdeadbeef)); // garbage the kernel must overwrite
    const scales = ranges ? rangedOut(gpu, blocks * 4) : gpu.buffer(blocks * 4);
    const back = gpu.buffer(count * 4);
    const xBuf = gpu.upload(x);
    gpu.submit([
      quantizeInt8(gpu, { x: xBuf, q, scales, count, block }),
      dequantizeInt8(gpu, { q, scales, x: back, count, block }),
    ]);
    const qBytes = new Int8Array(await readBytes(gpu, q, words * 4));
    const gotScales = new Float32Array(await readBytes(gpu, scales, blocks * 4));
    const gotBack = await gpu.read(back, count);
    const ref = quantizeInt8Ref(x, block);

    expectClose(gotScales, ref.scales, { atol: 0, rtol: 3e-7 }, 'scales');
    for (let b = zero[0]; b >= 0 && b + block <= zero[1]; b += block) expect(gotScales[b / block], `zero block ${b / block}`).toBe(0);
    expectClose(qBytes.subarray(0, count), ref.q, { atol: 1, rtol: 0 }, 'q');
    expect([...qBytes.subarray(count)], 'padding bytes after N').toEqual(new Array(words * 4 - count).fill(0));
    // Dequantization is exact given q and the scales (one correctly rounded f32 product).
    expectClose(gotBack, dequantizeInt8Ref(qBytes.subarray(0, count), gotScales, block), { atol: 0, rtol: 0 }, 'dequantized');
    for (let i = 0; i < count; i++) {
      const s = gotScales[Math.floor(i / block)];
      expect(Math.abs(gotBack[i] - x[i]), `round trip of element ${i}`).toBeLessThanOrEqual(s / 2 + 1e-6 * s + 2e-7 * Math.abs(x[i]));
    }
  });

  test('more than 65535 blocks: the workgroup index folds into y', async () => {
    const gpu = await testGpu();
    const [count, block] = [70_003, 1];
    const x = gradientLike(createRng(70_003), count);
    const q = gpu.buffer(Math.ceil(count / 4) * 4);
    const scales = gpu.buffer(count * 4);
    const d = quantizeInt8(gpu, { x: gpu.upload(x), q, scales, count, block });
    expect(d.workgroups[1]).toBeGreaterThan(1);
    gpu.submit([d]);
    const ref = quantizeInt8Ref(x, block);
    expectClose(new Int8Array(await gpu.readBytes(q, 0, count)), ref.q, { atol: 0, rtol: 0 }, 'q'); // x / (|x|/127) is ±127 up to an ulp
    expectClose(await gpu.read(scales, count), ref.scales, { atol: 0, rtol: 3e-7 }, 'scales');
  });
});

/** Distance in ulps between two halves of the same sign (their bit patterns are ordered). */
function halfUlps(a: number, b: number): number {
  return (a & 0x8000) === (b & 0x8000) ? Math.abs(a - b) : Math.abs(a & 0x7fff) + Math.abs(b & 0x7fff);
}

describe('f16 pack / unpack vs reference', () => {
  // WGSL's pack2x16float may round either way (SwiftShader is round-to-nearest-even except, seen
  // once in 1e5, 1 ulp on a subnormal), and a GPU may flush subnormal halves to zero: finite
  // values may differ by 1 ulp of the half, or be ±0 where the reference is subnormal. inf, NaN
  // and overflow are converted by hand: exact.
  const specials = [0, -0, 1, -2, 1 / 3, 0.1, 65504, 65510, 65519.99, 65520, -65520, 1e6, -1e30, Infinity, -Infinity, NaN, 2 ** -14, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 1e-10, 1 + 2 ** -11, 1 + 3 * 2 ** -11];
  test.for([
    { count: 1, ranges: false },
    { count: 7, ranges: true },
    { count: 33, ranges: false },
    { count: 129, ranges: true },
    { count: 517, ranges: false },
    { count: 5001, ranges: true },
  ])('N=$count ranges=$ranges', async ({ count, ranges }) => {
    const gpu = await testGpu();
    const rng = createRng(count);
    const x = Float32Array.from({ length: count }, (_, i) => (i < specials.length && i % 2 === 0 ? specials[i >> 1] : (rng.float() < 0.5 ? -1 : 1) * 2 ** rng.uniform(-26, 16)));
    const words = Math.ceil(count / 2);
    const packed = ranges ? rangedOut(gpu, words * 4) : gpu.upload(new Uint32Array(words).fill(0xdeadbeef));
    const back = gpu.buffer(count * 4);
    gpu.submit([packF16(gpu, { x: gpu.upload(x), packed, count }), unpackF16(gpu, { packed, x: back, count })]);
    const halves = new Uint16Array(await readBytes(gpu, packed, words * 4));
    const gotBack = await gpu.read(back, count);
    for (let i = 0; i < count; i++) {
      const want = f32ToF16Bits(x[i]);
      const got = halves[i];
      const finite = (want & 0x7c00) !== 0x7c00 && Math.abs(x[i]) <= 65504;
      const flushed = (want & 0x7c00) === 0 && (got & 0x7fff) === 0;
      const ok = finite ? halfUlps(got, want) <= 1 || flushed : got === want;
      expect(ok, `half ${i} of x = ${x[i]}: got 0x${got.toString(16)}, reference 0x${want.toString(16)}`).toBe(true);
      // Unpacking is exact (subnormals may flush to zero): what came back is what was packed.
      const value = f16BitsToF32(got);
      const same = Object.is(gotBack[i], value) || (Number.isNaN(value) && Number.isNaN(gotBack[i])) || ((got & 0x7c00) === 0 && gotBack[i] === 0);
      expect(same, `unpacked ${i}: got ${gotBack[i]}, expected ${value}`).toBe(true);
      if (finite && Math.abs(x[i]) >= 2 ** -14) expect(Math.abs(gotBack[i] - x[i])).toBeLessThanOrEqual(2 ** -10 * Math.abs(x[i])); // 1 ulp: 2^-11 rounding + the allowed ulp
    }
    if (count % 2 === 1) expect(halves[count], 'padding half of a ragged tail').toBe(0);
  });

  test('every one of the 65536 halves unpacks to its value', async () => {
    const gpu = await testGpu();
    const all = Uint32Array.from({ length: 32768 }, (_, i) => (2 * i) | ((2 * i + 1) << 16));
    const out = gpu.buffer(65536 * 4);
    gpu.submit([unpackF16(gpu, { packed: gpu.upload(all), x: out, count: 65536 })]);
    const got = await gpu.read(out);
    const bad: string[] = [];
    for (let h = 0; h < 65536; h++) {
      const want = f16BitsToF32(h);
      const subnormalFlushed = (h & 0x7c00) === 0 && got[h] === 0;
      if (!(Object.is(got[h], want) || (Number.isNaN(want) && Number.isNaN(got[h])) || subnormalFlushed)) bad.push(`0x${h.toString(16)}: ${got[h]} vs ${want}`);
    }
    expect(bad.slice(0, 5), `${bad.length} halves differ`).toEqual([]);
  });
});
