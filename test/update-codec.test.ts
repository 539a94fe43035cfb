// Compressed updates: each coding's round trip within its bound, folding in place equals decoding
// then adding, error feedback keeps what was not sent (its residual stays bounded over 1,000
// steps and the sum of what was sent tracks the sum of the updates), and a malformed update is
// refused with its reason before it touches the round's sum.
import { describe, expect, test } from 'vitest';
import { createRng } from '../shared/rng.ts';
import { codedBytes, encodeUpdate, ErrorFeedback, foldUpdate, topkCount, topkIndices, UpdateCodecError, type UpdateCoding } from '../shared/update-codec.ts';
import { quantizeInt8Ref } from '../shared/reference/quantize.ts';

const n = 1000;
const rng = createRng(5);
const update = () => Float32Array.from({ length: n }, () => rng.normal() * 0.01);
const CODINGS: UpdateCoding[] = [{ kind: 'none' }, { kind: 'fp16' }, { kind: 'int8', block: 256 }, { kind: 'topk', fraction: 0.05, block: 64 }];
const decode = (c: UpdateCoding, bytes: Uint8Array) => {
  const out = new Float32Array(n);
  foldUpdate(c, bytes, n, 1, out);
  return out;
};

describe.each(CODINGS)('$kind', (coding) => {
  test('its size, and a round trip within its bound', () => {
    const x = update();
    const bytes = encodeUpdate(coding, x);
    expect(bytes.byteLength).toBe(codedBytes(coding, n));
    const back = decode(coding, bytes);
    const maxAbs = Math.max(...x.map(Math.abs));
    if (coding.kind === 'none') expect([...back]).toEqual([...x]);
    if (coding.kind === 'fp16') for (let i = 0; i < n; i++) expect(Math.abs(back[i] - x[i])).toBeLessThanOrEqual(Math.abs(x[i]) * 2 ** -11 + 2 ** -25);
    if (coding.kind === 'int8') for (let i = 0; i < n; i++) expect(Math.abs(back[i] - x[i])).toBeLessThanOrEqual(maxAbs / 127 / 2 + 1e-9);
    if (coding.kind === 'topk') {
      const kept = back.filter((v) => v !== 0).length;
      expect(kept).toBeLessThanOrEqual(topkCount(n, coding.fraction));
      // The kept values are the largest: every dropped one is no larger than the smallest kept.
      const smallestKept = Math.min(...[...x].filter((_, i) => back[i] !== 0).map(Math.abs));
      for (let i = 0; i < n; i++) if (back[i] === 0) expect(Math.abs(x[i])).toBeLessThanOrEqual(smallestKept + 1e-9);
    }
  });

  test('folding in place adds weight × the decoded update', () => {
    const x = update();
    const bytes = encodeUpdate(coding, x);
    const sum = Float32Array.from({ length: n }, (_, i) => i * 1e-3);
    const expected = decode(coding, bytes).map((v, i) => i * 1e-3 + 3 * v);
    foldUpdate(coding, bytes, n, 3, sum);
    for (let i = 0; i < n; i++) expect(sum[i]).toBeCloseTo(expected[i], 6);
  });

  test('with error feedback, what was sent plus the residual is what was given, and the residual stays bounded over 1,000 steps', () => {
    const ef = new ErrorFeedback(n);
    const given = new Float64Array(n);
    const sent = new Float32Array(n);
    let worst = 0;
    for (let step = 0; step < 1000; step++) {
      const x = update();
      for (let i = 0; i < n; i++) given[i] += x[i];
      foldUpdate(coding, encodeUpdate(coding, x, ef), n, 1, sent);
      worst = Math.max(worst, ...ef.residual.map(Math.abs));
    }
    for (let i = 0; i < n; i++) expect(Math.abs(sent[i] + ef.residual[i] - given[i])).toBeLessThan(1e-3);
    // One update's values are about 0.01; the residual never grows past a few updates' worth.
    expect(worst).toBeLessThan(coding.kind === 'topk' ? 0.5 : 0.01);
  });
});

describe('a malformed update is refused with its reason, the sum untouched', () => {
  const refused = (coding: UpdateCoding, bytes: Uint8Array, message: RegExp) => {
    const sum = new Float32Array(n).fill(7);
    expect(() => foldUpdate(coding, bytes, n, 1, sum)).toThrow(UpdateCodecError);
    expect(() => foldUpdate(coding, bytes, n, 1, sum)).toThrow(message);
    expect(sum.every((v) => v === 7)).toBe(true);
  };
  const int8: UpdateCoding = { kind: 'int8', block: 256 };
  const topk: UpdateCoding = { kind: 'topk', fraction: 0.05, block: 64 };
  test('wrong length', () => refused(int8, encodeUpdate(int8, update()).subarray(1), /is 1016 bytes, got 1015/));
  test('a scale that is not finite', () => {
    const bytes = encodeUpdate(int8, update());
    new DataView(bytes.buffer).setFloat32(4, Number.NaN, true);
    refused(int8, bytes, /scale 1 of the int8 update is NaN/);
  });
  test('top-k index out of range, repeated, or out of order', () => {
    const bytes = () => encodeUpdate(topk, update());
    const a = bytes();
    new DataView(a.buffer).setUint32(4 + 4 * 3, n + 5, true);
    refused(topk, a, /index 1005 \(entry 3\) is outside \[0, 1000\)/);
    const b = bytes();
    const v = new DataView(b.buffer);
    v.setUint32(8, v.getUint32(4, true), true);
    refused(topk, b, /repeats/);
    const c = bytes();
    const w = new DataView(c.buffer);
    w.setUint32(4, w.getUint32(8, true) + 1, true);
    refused(topk, c, /out of order/);
  });
  test('a top-k count that is not the coding\'s', () => {
    const bytes = encodeUpdate(topk, update());
    new DataView(bytes.buffer).setUint32(0, 49, true);
    refused(topk, bytes, /holds 50 values, it says 49/);
  });
  test('an fp16 value that is not finite', () => {
    const bytes = encodeUpdate({ kind: 'fp16' }, update());
    new DataView(bytes.buffer).setUint16(10, 0x7c00, true);
    refused({ kind: 'fp16' }, bytes, /value 5 of the fp16 update is not finite/);
  });
});

describe('top-k selection', () => {
  // The definition: a stable sort of all indices by |x| descending, then index ascending; the first k.
  const bySort = (x: Float32Array, k: number) =>
    Uint32Array.from(
      Array.from({ length: x.length }, (_, i) => i)
        .sort((a, b) => Math.abs(x[b]) - Math.abs(x[a]) || a - b)
        .slice(0, k),
    ).sort();
  // Coded as the format says, from the sort's indices.
  const topkBySort = (coding: { fraction: number; block: number }, x: Float32Array) => {
    const k = topkCount(x.length, coding.fraction);
    const indices = bySort(x, k);
    const { q, scales } = quantizeInt8Ref(Array.from(indices, (i) => x[i]), coding.block);
    const out = new Uint8Array(4 + 4 * k + 4 * scales.length + k);
    const view = new DataView(out.buffer);
    view.setUint32(0, k, true);
    indices.forEach((idx, j) => view.setUint32(4 + 4 * j, idx, true));
    scales.forEach((s, b) => view.setFloat32(4 + 4 * k + 4 * b, s, true));
    out.set(new Uint8Array(q.buffer), 4 + 4 * k + 4 * scales.length);
    return out;
  };
  const r = createRng(77);
  // Few distinct magnitudes with both signs and many zeros, so the k-th largest is tied many times over.
  const tied = (len: number, levels: number) => Float32Array.from({ length: len }, () => (r.float() < 0.3 ? 0 : (r.int(levels) + 1) * 0.125 * (r.float() < 0.5 ? -1 : 1)));
  const cases: [string, Float32Array][] = [
    ['normal values', Float32Array.from({ length: 5000 }, () => r.normal())],
    ['four magnitudes, zeros and signs', tied(3001, 4)],
    ['one magnitude', tied(777, 1)],
    ['all zeros', new Float32Array(513)],
    ['one value', Float32Array.of(-2)],
    ['-0 and 0', Float32Array.from({ length: 64 }, (_, i) => (i % 3 === 0 ? -0 : i % 3 === 1 ? 0 : 1))],
  ];
  test.each(cases)('the k largest magnitudes equal the stable sort\'s first k: %s', (_, x) => {
    for (const k of [0, 1, 2, Math.floor(x.length / 7), Math.floor(x.length / 2), x.length - 1, x.length].filter((k) => k >= 0 && k <= x.length)) {
      expect([...topkIndices(x, k)], `k = ${k}`).toEqual([...bySort(x, k)]);
    }
  });
  test.each(cases)('encodeUpdate gives the same bytes as the sort-based coding: %s', (_, x) => {
    for (const fraction of [0.01, 0.05, 0.3, 1]) {
      const coding = { kind: 'topk', fraction, block: 64 } as const;
      expect(encodeUpdate(coding, x)).toEqual(topkBySort(coding, x));
    }
  });
});
