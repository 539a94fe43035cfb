// The datasets runs can name: the built-in MNIST and the uploaded ones, which are kept under
// <dataDir>/datasets/ (<name>.ctds: train examples then test examples; <name>.json: where they
// came from and how they were split) and served at content-hashed URLs. Parsing an uploaded
// file is upload.ts's; the HTTP routes only call answer() and addUpload().
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { decodeDataset, encodeDataset, selectExamples, type Dataset } from '../../shared/dataset.ts';
import type { ShardInfo } from '../../shared/protocol.ts';
import { RunSpecSchema } from '../../shared/run-spec.ts';
import { stratifiedSplit } from '../../shared/split.ts';
import type { DatasetInfo, Datasets, LoadedDataset } from '../context.ts';
import { DATASET_PREFIX, immutableAnswer, jsonAnswer, mnistShardInfo, type HttpAnswer } from './dataset-files.ts';
import { encodedMnist, encodedMnistShards, loadMnist } from './mnist.ts';
import { DatasetUploadError, parseUpload, type ParsedUpload, type UploadFile } from './upload.ts';

/** Folder under the data dir that holds uploaded datasets. */
export const DATASETS_DIR = 'datasets';
/** Examples per shard of an uploaded dataset's train split (as MNIST's). */
export const UPLOAD_SHARD_SIZE = 1000;
/** Share of an uploaded dataset held out for the test split. */
export const UPLOAD_TEST_FRACTION = 0.2;
/** Fixed, so that an upload's split does not depend on when or where it was made. */
export const UPLOAD_SPLIT_SEED = 20251126;
const BUILTIN = new Set(['mnist']);
const META_VERSION = 1;

/** What <name>.json records about an uploaded dataset. */
export interface UploadedDatasetMeta {
  version: typeof META_VERSION;
  name: string;
  format: ParsedUpload['format'];
  /** The uploaded files as they arrived (before any gunzip). */
  files: { filename: string; bytes: number; sha256: string }[];
  features: number;
  classes: number;
  trainCount: number;
  testCount: number;
  splitSeed: number;
  /** sha256 of <name>.ctds, checked when it is loaded. */
  sha256: string;
  scale?: ParsedUpload['scale'];
  columns?: ParsedUpload['columns'];
  exampleShape?: ParsedUpload['exampleShape'];
  createdAt: number;
}

/** One entry of GET /api/datasets: the dataset without its shard list, and how it was made. */
export type DatasetSummary = Omit<DatasetInfo, 'shards'> & {
  format: 'builtin' | ParsedUpload['format'];
  /** Present when feature values were min-max scaled to bytes (see ParsedUpload.scale). */
  scale?: ParsedUpload['scale'];
  columns?: ParsedUpload['columns'];
  exampleShape?: number[];
};

/** GET /api/datasets/<name>: a dataset's splits and shards, each at a content-hashed URL. */
export interface DatasetIndexBody extends DatasetSummary {
  splits: Record<'train' | 'test', { url: string; bytes: number; sha256: string; count: number }>;
  shards: ShardInfo[];
}

interface SplitRef {
  sha256: string;
  bytes: number;
  count: number;
  /** The split's CTDS bytes; may be built on each call (the train split of an upload is). */
  encode: () => Uint8Array;
}

interface Entry {
  loaded: LoadedDataset;
  summary: DatasetSummary;
  splits: Record<'train' | 'test', SplitRef>;
  shards: Map<string, Uint8Array>;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Writes a file so that it is either absent or complete: temporary file, fsync, rename. */
function writeFileAtomic(path: string, data: Uint8Array | string): void {
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

/** The dataset's examples [start, start+count) as a view, without copying. */
function slice(ds: Dataset, start: number, count: number): Dataset {
  return { count, features: ds.features, classes: ds.classes, x: ds.x.subarray(start * ds.features, (start + count) * ds.features), y: ds.y.subarray(start, start + count) };
}

function splitRef(ds: Dataset, keep: boolean): SplitRef {
  const bytes = encodeDataset(ds);
  return { sha256: sha256(bytes), bytes: bytes.byteLength, count: ds.count, encode: keep ? () => bytes : () => encodeDataset(ds) };
}

/**
 * The built-in MNIST and every dataset uploaded to this data dir.
 * @example
 * const datasets = new DatasetRegistry('./data');
 * datasets.addUpload('iris', [{ filename: 'iris.csv', bytes }]);
 * datasets.get('iris')?.info.shards; // what workers fetch
 */
export class DatasetRegistry implements Datasets {
  private readonly entries = new Map<string, Entry>();
  /** Saved datasets that could not be loaded, and why (the app logs them). */
  readonly skipped: { name: string; reason: string }[] = [];
  private readonly dir: string;

  constructor(private readonly dataDir: string) {
    this.dir = join(dataDir, DATASETS_DIR);
    this.entries.set('mnist', this.mnistEntry());
    this.loadSaved();
  }

  get(name: string): LoadedDataset | undefined {
    return this.entries.get(name)?.loaded;
  }

  forSpec(spec: { dataset: string; context?: number }): LoadedDataset | undefined {
    return this.get(spec.dataset);
  }

  /** The built-in datasets first, then the uploads by name. */
  list(): DatasetInfo[] {
    return this.sorted().map((e) => e.loaded.info);
  }

  /** Like list(), without shards and with how each dataset was made: the body of GET /api/datasets. */
  summaries(): DatasetSummary[] {
    return this.sorted().map((e) => e.summary);
  }

  /** One dataset as GET /api/datasets lists it: what the upload route answers with. */
  summary(name: string): DatasetSummary | undefined {
    return this.entries.get(name)?.summary;
  }

  /**
   * Answers a GET under /api/datasets (see DATASET_PREFIX), or undefined for a path it does not own:
   *   /api/datasets                 -> { datasets: DatasetSummary[] }
   *   /api/datasets/<name>          -> DatasetIndexBody
   *   /api/datasets/<name>/<sha256> -> a split's or shard's CTDS bytes, immutable
   */
  answer(path: string): HttpAnswer | undefined {
    const clean = path.split('?')[0];
    const root = DATASET_PREFIX.replace(/\/$/, '');
    if (clean !== root && !clean.startsWith(DATASET_PREFIX)) return undefined;
    const parts = clean.slice(root.length).split('/').filter(Boolean);
    if (parts.length === 0) return jsonAnswer(200, { datasets: this.summaries() });
    const entry = this.entries.get(parts[0]);
    if (!entry) {
      const known = this.sorted().map((e) => e.loaded.info.name).join(', ');
      return jsonAnswer(404, { error: 'unknown_dataset', message: `no dataset named "${parts[0]}"; there are: ${known}` });
    }
    if (parts.length === 1) return jsonAnswer(200, this.index(entry));
    const hash = parts[1];
    const shard = parts.length === 2 ? entry.shards.get(hash) : undefined;
    if (shard) return immutableAnswer(hash, shard);
    const split = parts.length === 2 ? Object.values(entry.splits).find((s) => s.sha256 === hash) : undefined;
    if (split) return immutableAnswer(hash, split.encode());
    return jsonAnswer(404, { error: 'unknown_shard', message: `no ${entry.loaded.info.name} data at ${clean}` });
  }

  /**
   * Parses an upload (one CSV file, or an IDX images file and an IDX labels file, any of them
   * gzip'd), splits it 80/20 stratified, saves it and makes it available to runs.
   * Throws DatasetUploadError: `code` 'invalid_name' | 'name_taken' | 'bad_file' | 'too_large',
   * `status` the HTTP status to answer with, `message` naming the file, line and column.
   */
  addUpload(name: string, files: UploadFile[]): LoadedDataset {
    this.checkNewName(name);
    const parsed = parseUpload(files);
    const all = parsed.dataset;
    const testCount = Math.round(all.count * UPLOAD_TEST_FRACTION);
    const split = stratifiedSplit(all.y, all.classes, testCount, UPLOAD_SPLIT_SEED);
    const order = new Uint32Array(all.count);
    order.set(split.train);
    order.set(split.test, split.train.length);
    const bytes = encodeDataset(selectExamples(all, order));
    const meta: UploadedDatasetMeta = {
      version: META_VERSION,
      name,
      format: parsed.format,
      files: files.map((f) => ({ filename: f.filename, bytes: f.bytes.byteLength, sha256: sha256(f.bytes) })),
      features: all.features,
      classes: all.classes,
      trainCount: split.train.length,
      testCount,
      splitSeed: UPLOAD_SPLIT_SEED,
      sha256: sha256(bytes),
      ...(parsed.scale ? { scale: parsed.scale } : {}),
      ...(parsed.columns ? { columns: parsed.columns } : {}),
      ...(parsed.exampleShape ? { exampleShape: parsed.exampleShape } : {}),
      createdAt: Date.now(),
    };
    mkdirSync(this.dir, { recursive: true });
    // The .json goes last: a dataset without it is not loaded, so a crash between the two
    // leaves nothing half-made behind the name.
    writeFileAtomic(join(this.dir, `${name}.ctds`), bytes);
    writeFileAtomic(join(this.dir, `${name}.json`), `${JSON.stringify(meta, null, 2)}\n`);
    const entry = this.uploadEntry(meta, decodeDataset(bytes));
    this.entries.set(name, entry);
    return entry.loaded;
  }

  /** Throws DatasetUploadError unless `name` is a valid dataset name no dataset has yet. */
  checkNewName(name: string): void {
    // The spec's own rule for its dataset field, so that every uploaded name can be named in a spec.
    const r = RunSpecSchema.shape.dataset.safeParse(typeof name === 'string' ? name : null);
    if (!r.success) {
      const why = r.error.issues[0]?.code === 'invalid_format' ? r.error.issues[0].message : 'a dataset name: lowercase letters, digits, - and _, at most 64';
      throw new DatasetUploadError(`the dataset name ${JSON.stringify(name ?? '')} is not valid: ${why}`, 'invalid_name');
    }
    if (BUILTIN.has(name)) throw new DatasetUploadError(`"${name}" is a built-in dataset; choose another name`, 'name_taken');
    if (this.entries.has(name)) throw new DatasetUploadError(`a dataset named "${name}" exists already; choose another name`, 'name_taken');
  }

  private sorted(): Entry[] {
    const all = [...this.entries.values()];
    const builtin = all.filter((e) => e.loaded.info.source === 'builtin');
    const uploads = all.filter((e) => e.loaded.info.source === 'upload').sort((a, b) => (a.loaded.info.name < b.loaded.info.name ? -1 : 1));
    return [...builtin, ...uploads];
  }

  private index(entry: Entry): DatasetIndexBody {
    const name = entry.loaded.info.name;
    const split = (s: SplitRef) => ({ url: `${DATASET_PREFIX}${name}/${s.sha256}`, bytes: s.bytes, sha256: s.sha256, count: s.count });
    return { ...entry.summary, splits: { train: split(entry.splits.train), test: split(entry.splits.test) }, shards: entry.loaded.info.shards };
  }

  private mnistEntry(): Entry {
    const { train, test } = loadMnist(this.dataDir);
    const encoded = encodedMnist(this.dataDir);
    const ref = (name: 'train' | 'test', ds: Dataset): SplitRef => {
      const e = encoded.find((s) => s.name === name)!;
      return { sha256: e.hash, bytes: e.bytes.byteLength, count: ds.count, encode: () => e.bytes };
    };
    const info: DatasetInfo = {
      name: 'mnist',
      features: train.features,
      exampleShape: [1, 28, 28],
      classes: train.classes,
      trainCount: train.count,
      testCount: test.count,
      shards: mnistShardInfo(this.dataDir),
      source: 'builtin',
      createdAt: 0,
    };
    const { shards: _omit, ...rest } = info;
    // mnistShardInfo reads the same cache, so these are the bytes behind its URLs.
    const shardBytes = new Map(encodedMnistShards(this.dataDir).map((s) => [s.hash, s.bytes]));
    return { loaded: { info, train, test }, summary: { ...rest, format: 'builtin' }, splits: { train: ref('train', train), test: ref('test', test) }, shards: shardBytes };
  }

  private uploadEntry(meta: UploadedDatasetMeta, all: Dataset): Entry {
    const train = slice(all, 0, meta.trainCount);
    const test = slice(all, meta.trainCount, meta.testCount);
    const shards: ShardInfo[] = [];
    const shardBytes = new Map<string, Uint8Array>();
    for (let start = 0; start < train.count; start += UPLOAD_SHARD_SIZE) {
      const bytes = encodeDataset(slice(train, start, Math.min(UPLOAD_SHARD_SIZE, train.count - start)));
      const hash = sha256(bytes);
      shards.push({ url: `${DATASET_PREFIX}${meta.name}/${hash}`, sha256: hash, start, count: Math.min(UPLOAD_SHARD_SIZE, train.count - start), bytes: bytes.byteLength });
      shardBytes.set(hash, bytes);
    }
    const info: DatasetInfo = {
      name: meta.name,
      features: meta.features,
      ...(meta.exampleShape ? { exampleShape: meta.exampleShape } : {}),
      classes: meta.classes,
      trainCount: meta.trainCount,
      testCount: meta.testCount,
      shards,
      source: 'upload',
      createdAt: meta.createdAt,
    };
    const { shards: _omit, exampleShape: _shape, ...rest } = info;
    const summary: DatasetSummary = {
      ...rest,
      format: meta.format,
      ...(meta.scale ? { scale: meta.scale } : {}),
      ...(meta.columns ? { columns: meta.columns } : {}),
      ...(meta.exampleShape ? { exampleShape: meta.exampleShape } : {}),
    };
    // The test split is small and fetched for evaluation; the train split is rebuilt when asked
    // for (workers fetch shards), so its bytes are not held twice.
    return { loaded: { info, train, test }, summary, splits: { train: splitRef(train, false), test: splitRef(test, true) }, shards: shardBytes };
  }

  private loadSaved(): void {
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -'.json'.length)).sort();
    } catch {
      return; // No uploads yet.
    }
    for (const name of names) {
      try {
        const meta = JSON.parse(readFileSync(join(this.dir, `${name}.json`), 'utf8')) as UploadedDatasetMeta;
        if (meta.version !== META_VERSION) throw new Error(`metadata version ${meta.version}, expected ${META_VERSION}`);
        if (meta.name !== name || BUILTIN.has(name)) throw new Error(`metadata names "${meta.name}"`);
        const bytes = new Uint8Array(readFileSync(join(this.dir, `${name}.ctds`)));
        if (sha256(bytes) !== meta.sha256) throw new Error(`${name}.ctds does not match the sha256 its metadata records`);
        const all = decodeDataset(bytes);
        if (all.count !== meta.trainCount + meta.testCount || all.features !== meta.features || all.classes !== meta.classes) {
          throw new Error(`${name}.ctds holds ${all.count}x${all.features} with ${all.classes} classes, not what its metadata records`);
        }
        this.entries.set(name, this.uploadEntry(meta, all));
      } catch (err) {
        this.skipped.push({ name, reason: (err as Error).message });
      }
    }
  }
}
