// mnistFromDrawing: a drawing of any size and place becomes an MNIST-style 28x28 digit (ink in a
// 20x20 box, centre of mass at (14, 14)), and MNIST's own digits come back as they were.
import { resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { centreOfMass, mnistFromDrawing } from '../shared/preprocess.ts';
import { loadMnist } from '../server/data/mnist.ts';
import { featuresAsFloat } from '../shared/dataset.ts';

const SIDE = 280;

/** Bounding box (half-open) of the nonzero pixels of a 28x28 image. */
function box28(img: Float32Array): { w: number; h: number; x0: number; y0: number } {
  let [x0, y0, x1, y1] = [28, 28, 0, 0];
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      if (img[y * 28 + x] > 0) {
        x0 = Math.min(x0, x);
        y0 = Math.min(y0, y);
        x1 = Math.max(x1, x + 1);
        y1 = Math.max(y1, y + 1);
      }
    }
  }
  return { w: x1 - x0, h: y1 - y0, x0, y0 };
}

/** A filled rectangle [x0, x0+w) × [y0, y0+h) of full ink on an empty SIDE x SIDE canvas. */
function rect(x0: number, y0: number, w: number, h: number): Float32Array {
  const img = new Float32Array(SIDE * SIDE);
  for (let y = y0; y < y0 + h; y++) img.fill(1, y * SIDE + x0, y * SIDE + x0 + w);
  return img;
}

describe('mnistFromDrawing', () => {
  test('a thick, oversized, off-centre stroke lands in the 20x20 box with its centre of mass at (14, 14)', () => {
    // A thick "7" in bytes (alpha-like), squeezed into the top-left corner and taller than the box.
    const alpha = new Uint8ClampedArray(SIDE * SIDE);
    const disc = (cx: number, cy: number, r: number) => {
      for (let y = Math.max(0, cy - r); y < Math.min(SIDE, cy + r); y++) {
        for (let x = Math.max(0, cx - r); x < Math.min(SIDE, cx + r); x++) {
          const d = Math.hypot(x - cx, y - cy);
          if (d < r) alpha[y * SIDE + x] = Math.max(alpha[y * SIDE + x], Math.round(255 * Math.min(1, r - d)));
        }
      }
    };
    for (let t = 0; t <= 1; t += 0.01) disc(Math.round(10 + 150 * t), 12, 11); // the bar
    for (let t = 0; t <= 1; t += 0.01) disc(Math.round(160 - 110 * t), Math.round(12 + 255 * t), 11); // the stem
    const out = mnistFromDrawing(alpha, SIDE, SIDE);

    expect(out.length).toBe(784);
    expect(Math.min(...out)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...out)).toBeLessThanOrEqual(1);
    const { w, h } = box28(out);
    expect(Math.max(w, h)).toBe(20);
    expect(Math.min(w, h)).toBeLessThanOrEqual(20);
    const com = centreOfMass(out, 28, 28)!;
    expect(Math.abs(com.x - 14)).toBeLessThanOrEqual(1);
    expect(Math.abs(com.y - 14)).toBeLessThanOrEqual(1);
  });

  test('an empty drawing, or one with only faint haze, gives all zeros', () => {
    expect([...mnistFromDrawing(new Uint8ClampedArray(SIDE * SIDE), SIDE, SIDE)].every((v) => v === 0)).toBe(true);
    expect([...mnistFromDrawing(new Float32Array(SIDE * SIDE), SIDE, SIDE)].every((v) => v === 0)).toBe(true);
    const haze = new Uint8ClampedArray(SIDE * SIDE).fill(3); // anti-aliasing leftovers, ~1% ink
    expect([...mnistFromDrawing(haze, SIDE, SIDE)].every((v) => v === 0)).toBe(true);
  });

  test.for([
    { name: 'tall', w: 40, h: 160, expectW: 5, expectH: 20 },
    { name: 'wide', w: 200, h: 100, expectW: 20, expectH: 10 },
    { name: 'square dot (scaled up)', w: 6, h: 6, expectW: 20, expectH: 20 },
  ])('the aspect ratio is kept: $name', ({ w, h, expectW, expectH }) => {
    const out = mnistFromDrawing(rect(250 - w, 7, w, h), SIDE, SIDE);
    const b = box28(out);
    expect([b.w, b.h]).toEqual([expectW, expectH]);
    // A solid rectangle scaled by area averaging stays solid: full ink inside, nothing outside.
    const inside = [...out].filter((v) => v > 0);
    expect(inside.length).toBe(expectW * expectH);
    for (const v of inside) expect(v).toBeCloseTo(1, 5);
  });

  test('a partly covered edge pixel comes out fainter (area averaging, not nearest neighbour)', () => {
    // 30 px wide x 200 tall -> 3 x 20 after scaling by 0.1; 35 px wide -> 3.5: the last column half-inked.
    const out = mnistFromDrawing(rect(10, 10, 35, 200), SIDE, SIDE);
    const b = box28(out);
    expect([b.w, b.h]).toEqual([4, 20]);
    const row = out.subarray((b.y0 + 10) * 28 + b.x0, (b.y0 + 10) * 28 + b.x0 + 4);
    expect([...row].map((v) => Number(v.toFixed(3)))).toEqual([1, 1, 1, 0.5]);
  });

  test('MNIST test digits, replayed at 10x, come back as they were', () => {
    const { test: held } = loadMnist(process.env.CROWDTRAIN_DATA_DIR ?? resolve(import.meta.dirname, '../data'));
    let same = 0;
    for (let i = 0; i < held.count; i++) {
      const digit = featuresAsFloat(held, i, 1);
      const drawn = new Float32Array(SIDE * SIDE);
      for (let y = 0; y < SIDE; y++) for (let x = 0; x < SIDE; x++) drawn[y * SIDE + x] = digit[Math.floor(y / 10) * 28 + Math.floor(x / 10)];
      const back = mnistFromDrawing(drawn, SIDE, SIDE);
      let worst = 0;
      for (let k = 0; k < 784; k++) worst = Math.max(worst, Math.abs(back[k] - digit[k]));
      if (worst <= 0.03) same++;
    }
    // Measured: 1996 of 2000 within 0.03 (8 grey levels); the rest are shifted by one pixel.
    expect(same / held.count).toBeGreaterThanOrEqual(0.99);
  });

  test('rejects a pixel count that does not match the size', () => {
    expect(() => mnistFromDrawing(new Float32Array(10), 4, 4)).toThrow(/expected 4x4/);
  });
});
