// A labelled dataset held as bytes (uint8 features, uint8 labels) and its binary wire format.
// Splitting and batching live elsewhere; this file only knows the layout.

export interface Dataset {
  /** Number of examples. */
  count: number;
  /** Features per example (784 for MNIST, row-major 28x28). */
  features: number;
  /** Number of classes; labels are in [0, classes). */
  classes: number;
  /** Features, [count, features] row-major; a feature's value is byte/255. */
  x: Uint8Array;
  /** Labels, [count]. */
  y: Uint8Array;
}

const MAGIC = 0x53445443; // "CTDS" little-endian
const FORMAT_VERSION = 1;
const HEADER_BYTES = 20;

/**
 * Layout: u32 magic "CTDS", u32 version, u32 count, u32 features, u32 classes,
 * then labels u8[count], then features u8[count * features].
 */
export function encodeDataset(ds: Dataset): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + ds.count + ds.count * ds.features);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, FORMAT_VERSION, true);
  view.setUint32(8, ds.count, true);
  view.setUint32(12, ds.features, true);
  view.setUint32(16, ds.classes, true);
  out.set(ds.y.subarray(0, ds.count), HEADER_BYTES);
  out.set(ds.x.subarray(0, ds.count * ds.features), HEADER_BYTES + ds.count);
  return out;
}

export class DatasetFormatError extends Error {
  override name = 'DatasetFormatError';
}

/** Parses what encodeDataset wrote; throws DatasetFormatError naming what is wrong. */
export function decodeDataset(bytes: Uint8Array): Dataset {
  if (bytes.byteLength < HEADER_BYTES) {
    throw new DatasetFormatError(`dataset is ${bytes.byteLength} bytes, shorter than its ${HEADER_BYTES}-byte header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw new DatasetFormatError('dataset does not start with the magic "CTDS"');
  const version = view.getUint32(4, true);
  if (version !== FORMAT_VERSION) throw new DatasetFormatError(`dataset format version ${version}, expected ${FORMAT_VERSION}`);
  const count = view.getUint32(8, true);
  const features = view.getUint32(12, true);
  const classes = view.getUint32(16, true);
  const expected = HEADER_BYTES + count + count * features;
  if (bytes.byteLength !== expected) {
    throw new DatasetFormatError(`dataset of ${count}x${features} should be ${expected} bytes, got ${bytes.byteLength}`);
  }
  const y = bytes.subarray(HEADER_BYTES, HEADER_BYTES + count);
  for (let i = 0; i < count; i++) {
    if (y[i] >= classes) throw new DatasetFormatError(`label ${y[i]} of example ${i} is not below classes=${classes}`);
  }
  const x = bytes.subarray(HEADER_BYTES + count, expected);
  return { count, features, classes, x, y };
}

/** The examples at `indices`, in that order, as a new Dataset. */
export function selectExamples(ds: Dataset, indices: ArrayLike<number>): Dataset {
  const n = indices.length;
  const x = new Uint8Array(n * ds.features);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const src = indices[i];
    y[i] = ds.y[src];
    x.set(ds.x.subarray(src * ds.features, (src + 1) * ds.features), i * ds.features);
  }
  return { count: n, features: ds.features, classes: ds.classes, x, y };
}

/** Features of examples [start, start+n) as float32 in [0, 1] (byte/255, no other normalisation). */
export function featuresAsFloat(ds: Dataset, start = 0, n = ds.count): Float32Array {
  const bytes = ds.x.subarray(start * ds.features, (start + n) * ds.features);
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i] / 255;
  return out;
}
