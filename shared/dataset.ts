// A labelled dataset held as bytes (uint8 features, uint8 labels) and its binary wire format.
// Two kinds of example share the format: images or table rows (a byte is a feature value,
// byte/255 as input; one label per example) and token windows of a text (a byte is a token id,
// given to the model as is; one label per position: the next token). Splitting and batching
// live elsewhere; this file only knows the layout.

/** How an example's bytes become model inputs. */
export type InputCoding = 'scaled' | 'tokens';

export interface Dataset {
  /** Number of examples. */
  count: number;
  /** Bytes per example (784 for MNIST, row-major 28x28; the window length for text). */
  features: number;
  /** Number of classes (the vocabulary size for text); labels are in [0, classes). */
  classes: number;
  /** Features, [count, features] row-major. */
  x: Uint8Array;
  /** Labels, [count, labelWidth]. */
  y: Uint8Array;
  /** Labels per example: 1 (default) for a classifier, the window length for next-token labels. */
  labelWidth?: number;
  /** 'scaled' (default): input = byte/255. 'tokens': input = the byte, a token id. */
  inputs?: InputCoding;
  /** Shape of one example, its product = features ([1, 28, 28]); unset: [features]. */
  shape?: number[];
}

export const labelWidthOf = (ds: Pick<Dataset, 'labelWidth'>): number => ds.labelWidth ?? 1;
export const inputCodingOf = (ds: Pick<Dataset, 'inputs'>): InputCoding => ds.inputs ?? 'scaled';

const MAGIC = 0x53445443; // "CTDS" little-endian
const FORMAT_VERSION = 2;
const V1_HEADER_BYTES = 20;
const MAX_RANK = 8;

/**
 * Layout (version 2): u32 magic "CTDS", u32 version, u32 count, u32 features, u32 classes,
 * u32 labelWidth, u32 inputs (0 scaled, 1 tokens), u32 rank, u32 shape[rank],
 * then labels u8[count * labelWidth], then features u8[count * features].
 * Version 1 (read, no longer written) stopped after classes: one label, scaled, shape [features].
 */
export function encodeDataset(ds: Dataset): Uint8Array {
  const width = labelWidthOf(ds);
  const shape = ds.shape ?? [ds.features];
  const header = 32 + 4 * shape.length;
  const out = new Uint8Array(header + ds.count * width + ds.count * ds.features);
  const view = new DataView(out.buffer);
  const words = [MAGIC, FORMAT_VERSION, ds.count, ds.features, ds.classes, width, inputCodingOf(ds) === 'tokens' ? 1 : 0, shape.length, ...shape];
  words.forEach((w, i) => view.setUint32(4 * i, w, true));
  out.set(ds.y.subarray(0, ds.count * width), header);
  out.set(ds.x.subarray(0, ds.count * ds.features), header + ds.count * width);
  return out;
}

export class DatasetFormatError extends Error {
  override name = 'DatasetFormatError';
}

/** Parses what encodeDataset wrote (version 1 or 2); throws DatasetFormatError naming what is wrong. */
export function decodeDataset(bytes: Uint8Array): Dataset {
  if (bytes.byteLength < V1_HEADER_BYTES) {
    throw new DatasetFormatError(`dataset is ${bytes.byteLength} bytes, shorter than its ${V1_HEADER_BYTES}-byte header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw new DatasetFormatError('dataset does not start with the magic "CTDS"');
  const version = view.getUint32(4, true);
  if (version !== 1 && version !== FORMAT_VERSION) throw new DatasetFormatError(`dataset format version ${version}, expected 1 or ${FORMAT_VERSION}`);
  const count = view.getUint32(8, true);
  const features = view.getUint32(12, true);
  const classes = view.getUint32(16, true);
  let header = V1_HEADER_BYTES;
  let labelWidth = 1;
  let inputs: InputCoding = 'scaled';
  let shape = [features];
  if (version === 2) {
    if (bytes.byteLength < 32) throw new DatasetFormatError(`dataset is ${bytes.byteLength} bytes, shorter than its 32-byte header`);
    labelWidth = view.getUint32(20, true);
    const coding = view.getUint32(24, true);
    const rank = view.getUint32(28, true);
    if (labelWidth < 1) throw new DatasetFormatError('dataset has 0 labels per example');
    if (coding > 1) throw new DatasetFormatError(`dataset input coding ${coding} is not 0 (scaled) or 1 (tokens)`);
    if (rank < 1 || rank > MAX_RANK) throw new DatasetFormatError(`dataset example rank ${rank} is not in [1, ${MAX_RANK}]`);
    header = 32 + 4 * rank;
    if (bytes.byteLength < header) throw new DatasetFormatError(`dataset is ${bytes.byteLength} bytes, shorter than its ${header}-byte header`);
    shape = Array.from({ length: rank }, (_, i) => view.getUint32(32 + 4 * i, true));
    if (shape.reduce((a, b) => a * b, 1) !== features) throw new DatasetFormatError(`dataset example shape [${shape.join(', ')}] does not hold ${features} features`);
    inputs = coding === 1 ? 'tokens' : 'scaled';
  }
  const labelBytes = count * labelWidth;
  const expected = header + labelBytes + count * features;
  if (bytes.byteLength !== expected) {
    throw new DatasetFormatError(`dataset of ${count}x${features} with ${labelWidth} label(s) each should be ${expected} bytes, got ${bytes.byteLength}`);
  }
  const y = bytes.subarray(header, header + labelBytes);
  for (let i = 0; i < labelBytes; i++) {
    if (y[i] >= classes) throw new DatasetFormatError(`label ${y[i]} of example ${Math.floor(i / labelWidth)} is not below classes=${classes}`);
  }
  const x = bytes.subarray(header + labelBytes, expected);
  if (inputs === 'tokens') {
    for (let i = 0; i < x.length; i++) {
      if (x[i] >= classes) throw new DatasetFormatError(`token ${x[i]} of example ${Math.floor(i / features)} is not below the vocabulary size ${classes}`);
    }
  }
  return { count, features, classes, x, y, ...(labelWidth !== 1 ? { labelWidth } : {}), ...(inputs !== 'scaled' ? { inputs } : {}), ...(version === 2 && (shape.length !== 1) ? { shape } : {}) };
}

/** The same dataset's layout fields, for building a new one of the same kind. */
function layoutOf(ds: Dataset): Pick<Dataset, 'labelWidth' | 'inputs' | 'shape'> {
  return { ...(ds.labelWidth !== undefined ? { labelWidth: ds.labelWidth } : {}), ...(ds.inputs ? { inputs: ds.inputs } : {}), ...(ds.shape ? { shape: ds.shape } : {}) };
}

/** The examples at `indices`, in that order, as a new Dataset. */
export function selectExamples(ds: Dataset, indices: ArrayLike<number>): Dataset {
  const n = indices.length;
  const width = labelWidthOf(ds);
  const x = new Uint8Array(n * ds.features);
  const y = new Uint8Array(n * width);
  for (let i = 0; i < n; i++) {
    const src = indices[i];
    y.set(ds.y.subarray(src * width, (src + 1) * width), i * width);
    x.set(ds.x.subarray(src * ds.features, (src + 1) * ds.features), i * ds.features);
  }
  return { count: n, features: ds.features, classes: ds.classes, x, y, ...layoutOf(ds) };
}

/** Examples [start, start+count) as a view, without copying. */
export function sliceExamples(ds: Dataset, start: number, count: number): Dataset {
  const width = labelWidthOf(ds);
  return { count, features: ds.features, classes: ds.classes, x: ds.x.subarray(start * ds.features, (start + count) * ds.features), y: ds.y.subarray(start * width, (start + count) * width), ...layoutOf(ds) };
}

/** Writes example bytes as model inputs: byte/255 for 'scaled', the byte itself for 'tokens'. */
export function decodeInputs(coding: InputCoding, bytes: Uint8Array, out: Float32Array, at = 0): void {
  if (coding === 'tokens') for (let i = 0; i < bytes.length; i++) out[at + i] = bytes[i];
  else for (let i = 0; i < bytes.length; i++) out[at + i] = bytes[i] / 255;
}

/** Model inputs of examples [start, start+n) as float32: byte/255, or token ids for a text. */
export function featuresAsFloat(ds: Dataset, start = 0, n = ds.count): Float32Array {
  const bytes = ds.x.subarray(start * ds.features, (start + n) * ds.features);
  const out = new Float32Array(bytes.length);
  decodeInputs(inputCodingOf(ds), bytes, out);
  return out;
}
