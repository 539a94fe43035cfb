// Turns a hand-drawn digit into a 28x28 MNIST-style input, processed the way the MNIST digits
// themselves were: the ink is cropped to its bounding box, scaled with area averaging (aspect ratio
// kept) to fit a 20x20 box, and placed in a 28x28 field with its centre of mass at the centre.
// No DOM here: the caller reads the pixels (canvas alpha or luminance) and hands them in.
//
// Coordinates: a pixel's position is its (column, row) index, and the centre of mass goes to
// (14, 14) in those terms, which is where MNIST's own digits have it (the mean over the test split
// is (13.99, 13.99); the half-pixel convention would shift a third of them by one pixel). The
// translation is the offset rounded to whole pixels, then clipped so that no ink leaves the field
// (a 20x20 box has 8 px of slack). Replaying an MNIST digit upscaled 10x through this function
// gives back the same digit to a few grey levels.
//
// @example
//   const ctx = canvas.getContext('2d')!;
//   const rgba = ctx.getImageData(0, 0, 280, 280).data;
//   const alpha = new Uint8ClampedArray(280 * 280).map((_, i) => rgba[4 * i + 3]);
//   const x = mnistFromDrawing(alpha, 280, 280); // f32[784] in [0, 1], row-major 28x28

export const MNIST_SIDE = 28;
/** The longer side of the ink after scaling (LeCun et al.: a 20x20 box inside the 28x28 field). */
export const MNIST_BOX = 20;
/** Ink at or below this fraction of full intensity is background (anti-aliasing haze, noise). */
export const INK_THRESHOLD = 0.02;

/**
 * A drawing -> the 784 inputs an MNIST model expects (f32[28*28], row-major, values in [0, 1]).
 * `pixels`: [height, width] row-major ink intensities, where `scale` means full ink (default 255
 * for a Uint8ClampedArray, 1 for a Float32Array). A drawing with no ink gives all zeros.
 */
export function mnistFromDrawing(pixels: Float32Array | Uint8ClampedArray, width: number, height: number, scale?: number): Float32Array {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`mnistFromDrawing: width and height must be positive integers, got ${width}x${height}`);
  }
  if (pixels.length !== width * height) throw new RangeError(`mnistFromDrawing: ${pixels.length} pixels, expected ${width}x${height} = ${width * height}`);
  const full = scale ?? (pixels instanceof Uint8ClampedArray ? 255 : 1);
  if (!(full > 0)) throw new RangeError(`mnistFromDrawing: scale must be positive, got ${full}`);

  const out = new Float32Array(MNIST_SIDE * MNIST_SIDE);
  const box = inkBox(pixels, width, height, full * INK_THRESHOLD);
  if (!box) return out;

  // Crop to the ink, as intensities in [0, 1] (haze below the threshold counts as background).
  const w = box.x1 - box.x0;
  const h = box.y1 - box.y0;
  const crop = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = pixels[(box.y0 + y) * width + box.x0 + x] / full;
      crop[y * w + x] = v > INK_THRESHOLD ? Math.min(v, 1) : 0;
    }
  }

  // One factor for both axes keeps the aspect ratio; the longer side becomes MNIST_BOX pixels.
  const factor = MNIST_BOX / Math.max(w, h);
  const tw = Math.max(1, Math.min(MNIST_BOX, Math.ceil(w * factor - 1e-6)));
  const th = Math.max(1, Math.min(MNIST_BOX, Math.ceil(h * factor - 1e-6)));
  const scaled = resizeAreaAverage(crop, w, h, tw, th, factor);

  const com = centreOfMass(scaled, tw, th);
  if (!com) return out;
  const centre = MNIST_SIDE / 2;
  const left = clamp(Math.round(centre - com.x), 0, MNIST_SIDE - tw);
  const top = clamp(Math.round(centre - com.y), 0, MNIST_SIDE - th);
  for (let y = 0; y < th; y++) out.set(scaled.subarray(y * tw, (y + 1) * tw), (top + y) * MNIST_SIDE + left);
  return out;
}

/** Centre of mass of a [height, width] image in (column, row) index coordinates, or null if it is empty. */
export function centreOfMass(pixels: ArrayLike<number>, width: number, height: number): { x: number; y: number } | null {
  let mass = 0;
  let mx = 0;
  let my = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = pixels[y * width + x];
      mass += v;
      mx += v * x;
      my += v * y;
    }
  }
  return mass > 0 ? { x: mx / mass, y: my / mass } : null;
}

/** Half-open bounding box [x0, x1) × [y0, y1) of the pixels above `threshold`, or null. */
function inkBox(pixels: Float32Array | Uint8ClampedArray, width: number, height: number, threshold: number): { x0: number; y0: number; x1: number; y1: number } | null {
  let x0 = width;
  let y0 = height;
  let x1 = 0;
  let y1 = 0;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      if (pixels[row + x] > threshold) {
        if (x < x0) x0 = x;
        if (x >= x1) x1 = x + 1;
        if (y < y0) y0 = y;
        y1 = y + 1;
      }
    }
  }
  return x1 > x0 ? { x0, y0, x1, y1 } : null;
}

/**
 * Area-averaging resize of src f32[h, w] by `factor` into f32[th, tw]: a target pixel is the mean
 * of the source area it covers, counting area outside the source as empty, so a partly covered
 * edge pixel comes out fainter, as anti-aliased ink does. Separable: rows, then columns.
 */
function resizeAreaAverage(src: Float32Array, w: number, h: number, tw: number, th: number, factor: number): Float32Array {
  const wx = coverage(w, tw, factor);
  const wy = coverage(h, th, factor);
  const rows = new Float32Array(h * tw);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < tw; x++) {
      let sum = 0;
      for (const [s, weight] of wx[x]) sum += src[y * w + s] * weight;
      rows[y * tw + x] = sum;
    }
  }
  const out = new Float32Array(th * tw);
  for (let y = 0; y < th; y++) {
    for (let x = 0; x < tw; x++) {
      let sum = 0;
      for (const [s, weight] of wy[y]) sum += rows[s * tw + x] * weight;
      out[y * tw + x] = Math.min(1, sum);
    }
  }
  return out;
}

/**
 * For each of `m` target pixels along one axis, the source pixels it overlaps and their weights:
 * target pixel t covers source [t/factor, (t+1)/factor); each weight is overlap × factor, so a
 * fully covered target pixel's weights sum to 1.
 */
function coverage(n: number, m: number, factor: number): [number, number][][] {
  const out: [number, number][][] = [];
  for (let t = 0; t < m; t++) {
    const a = t / factor;
    const b = Math.min(n, (t + 1) / factor);
    const taps: [number, number][] = [];
    for (let s = Math.floor(a); s < Math.ceil(b) && s < n; s++) {
      const overlap = Math.min(b, s + 1) - Math.max(a, s);
      if (overlap > 1e-9) taps.push([s, overlap * factor]);
    }
    out.push(taps);
  }
  return out;
}

const clamp = (v: number, lo: number, hi: number): number => Math.max(lo, Math.min(hi, v));
