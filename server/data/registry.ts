// The datasets runs can name: the built-ins (mnist, mnist-10k, fashion-mnist, moby-dick),
// converted from their packages at first use, and the uploaded ones, kept under
// <dataDir>/datasets/ (<name>.ctds: train examples then test examples, or a text's characters;
// <name>.json: where they came from and how they were split), all served at content-hashed URLs.
// A text is trained on as windows of the spec's context, '<name>@<context>', made on first use.
// Parsing an upload is upload.ts's, converting a built-in mnist.ts's, fashion-mnist.ts's and
// text-corpus.ts's; the HTTP routes only call answer() and addUpload().
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeDataset, encodeDataset, selectExamples, sliceExamples, type Dataset } from '../../shared/dataset.ts';
import type { ShardInfo } from '../../shared/protocol.ts';
import { RunSpecError, RunSpecSchema } from '../../shared/run-spec.ts';
import { stratifiedSplit } from '../../shared/split.ts';
import type { DatasetInfo, Datasets, LoadedDataset } from '../context.ts';
import { logToStderr, writeFileAtomic, type ProgressLog } from './builtin-cache.ts';
import { FASHION_CLASS_NAMES, FASHION_COUNTS, loadFashionMnist } from './fashion-mnist.ts';
import { DATASET_PREFIX, immutableAnswer, jsonAnswer, type HttpAnswer } from './http-answer.ts';
import { loadMnist10k, loadMnistFull, MNIST_CLASSES, MNIST_FEATURES, MNIST_FULL_COUNTS, MNIST_SHAPE, MNIST_TEST_COUNT } from './mnist.ts';
import { decodeCorpusIds, DEFAULT_CONTEXT, encodeCorpusIds, loadMobyDick, MOBY_DICK_CHARS, MOBY_DICK_VOCAB, trainCharsOf, windowCount, windowsOf, type TextCorpus } from './text-corpus.ts';
import { DatasetUploadError, isTextUpload, parseText, parseUpload, type ParsedUpload, type UploadFile } from './upload.ts';

/** Folder under the data dir that holds uploaded datasets. */
export const DATASETS_DIR = 'datasets';
/** Examples per shard of every dataset's train split (a shard of MNIST is 1000 digits, 0.8 MB). */
export const SHARD_SIZE = 1000;
/** Examples per shard of an uploaded dataset's train split (as MNIST's). */
export const UPLOAD_SHARD_SIZE = SHARD_SIZE;
/** Share of an uploaded table or image dataset held out for the test split. */
export const UPLOAD_TEST_FRACTION = 0.2;
/** Fixed, so that an upload's split does not depend on when or where it was made. */
export const UPLOAD_SPLIT_SEED = 20251126;
/** Longest window a text dataset is cut into (as the run spec's `context`). */
export const MAX_CONTEXT = 4096;
const META_VERSION = 1;

/** What <name>.json records about an uploaded dataset. */
export interface UploadedDatasetMeta {
  version: typeof META_VERSION;
  name: string;
  format: ParsedUpload['format'] | 'text';
  /** The uploaded files as they arrived (before any gunzip). */
  files: { filename: string; bytes: number; sha256: string }[];
  /** A text: its characters (<name>.ctds holds them as one example). */
  features: number;
  /** A text: its vocabulary size. */
  classes: number;
  /** A text: characters of the training split (the first 90 %). */
  trainCount: number;
  /** A text: characters of the validation split (the last 10 %). */
  testCount: number;
  /** A text: unused (its split is by position). */
  splitSeed: number;
  /** sha256 of <name>.ctds, checked when it is loaded. */
  sha256: string;
  scale?: ParsedUpload['scale'];
  columns?: ParsedUpload['columns'];
  exampleShape?: ParsedUpload['exampleShape'];
  /** A text: its characters, index = token id. */
  vocab?: string[];
  createdAt: number;
}

/** What a dataset's examples are: images (an example shape of rank 2 or more), table rows, or a text. */
export type DatasetKind = 'images' | 'table' | 'text';

/** One entry of GET /api/datasets: the dataset without its shards, and how it was made. */
export type DatasetSummary = Omit<DatasetInfo, 'shards' | 'vocab'> & {
  kind: DatasetKind;
  format: 'builtin' | UploadedDatasetMeta['format'];
  /** Present when feature values were min-max scaled to bytes (see ParsedUpload.scale). */
  scale?: ParsedUpload['scale'];
  columns?: ParsedUpload['columns'];
  exampleShape?: number[];
  /** A text: how many distinct characters (the model's vocabulary), and its characters per split. */
  vocabSize?: number;
  characters?: { train: number; test: number };
};

/** GET /api/datasets/<name>: a dataset's splits and shards, each at a content-hashed URL. */
export interface DatasetIndexBody extends DatasetSummary {
  splits: Record<'train' | 'test', { url: string; bytes: number; sha256: string; count: number }>;
  shards: ShardInfo[];
  /** A text: its characters, index = token id. */
  vocab?: string[];
}

interface SplitRef {
  sha256: string;
  bytes: number;
  count: number;
  /** The split's CTDS bytes; may be built on each call (a large train split is). */
  encode: () => Uint8Array;
}

interface Entry {
  loaded: LoadedDataset;
  summary: DatasetSummary;
  splits: Record<'train' | 'test', SplitRef>;
  shards: Map<string, Uint8Array>;
}

/** A dataset a name stands for, before it is loaded: its listing, and how to load it. */
interface Source {
  summary: () => DatasetSummary;
  /** An image or table dataset's examples. */
  entry?: () => Entry;
  /** A text's characters: its windows are made per context. */
  corpus?: () => TextCorpus;
}

/**
 * An uploaded IDX file's example shape as runs see it: rows x columns get one channel in front,
 * [1, rows, columns], as the built-in MNIST's (convolutions take [channels, height, width]).
 */
const imageShape = (idxShape: number[]): number[] => (idxShape.length === 2 ? [1, ...idxShape] : idxShape);

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function splitRef(ds: Dataset, bytes?: Uint8Array): SplitRef {
  const encoded = bytes ?? encodeDataset(ds);
  // Bytes given (a built-in's cache) or small are kept; a large split is encoded when asked for.
  const keep = bytes !== undefined || encoded.byteLength <= 16 << 20;
  return { sha256: sha256(encoded), bytes: encoded.byteLength, count: ds.count, encode: keep ? () => encoded : () => encodeDataset(ds) };
}

function kindOf(info: Pick<DatasetInfo, 'text' | 'exampleShape'>): DatasetKind {
  if (info.text) return 'text';
  return (info.exampleShape?.length ?? 1) >= 2 ? 'images' : 'table';
}

function summaryOf(info: DatasetInfo, extra: Partial<DatasetSummary> & Pick<DatasetSummary, 'format'>): DatasetSummary {
  const { shards: _shards, vocab, ...rest } = info;
  return { ...rest, kind: kindOf(info), ...(vocab ? { vocabSize: vocab.length } : {}), ...extra };
}

/**
 * An entry of examples: the train split in SHARD_SIZE shards at /api/datasets/<name>/<sha256>.
 * `bytes`: the splits' CTDS when already at hand (a built-in's cache files).
 */
function makeEntry(base: Omit<DatasetInfo, 'shards' | 'trainCount' | 'testCount' | 'features' | 'classes'>, train: Dataset, test: Dataset, extra: Partial<DatasetSummary> & Pick<DatasetSummary, 'format'>, bytes?: { train: Uint8Array; test: Uint8Array }): Entry {
  const shards: ShardInfo[] = [];
  const shardBytes = new Map<string, Uint8Array>();
  for (let start = 0; start < train.count; start += SHARD_SIZE) {
    const count = Math.min(SHARD_SIZE, train.count - start);
    const encoded = encodeDataset(sliceExamples(train, start, count));
    const hash = sha256(encoded);
    shards.push({ url: `${DATASET_PREFIX}${base.name}/${hash}`, sha256: hash, start, count, bytes: encoded.byteLength });
    shardBytes.set(hash, encoded);
  }
  const info: DatasetInfo = { ...base, features: train.features, classes: train.classes, trainCount: train.count, testCount: test.count, shards };
  return {
    loaded: { info, train, test },
    summary: summaryOf(info, extra),
    splits: { train: splitRef(train, bytes?.train), test: splitRef(test, bytes?.test) },
    shards: shardBytes,
  };
}

/** Built-in entries and text windows, shared by every registry of this process (the data are the same). */
const entryMemo = new WeakMap<object, Entry>();
const windowMemo = new WeakMap<TextCorpus, Map<number, Entry>>();

function memoEntry(key: object, make: () => Entry): Entry {
  let e = entryMemo.get(key);
  if (!e) {
    e = make();
    entryMemo.set(key, e);
  }
  return e;
}

const IMAGE_SHAPE_INFO = { exampleShape: MNIST_SHAPE, source: 'builtin' as const, createdAt: 0 };

/** The summary a text dataset is listed with: its windows of the default context. */
function textSummary(name: string, chars: { train: number; test: number }, vocabSize: number, source: 'builtin' | 'upload', createdAt: number, format: DatasetSummary['format']): DatasetSummary {
  const T = DEFAULT_CONTEXT;
  return {
    name,
    features: T,
    exampleShape: [T],
    classes: vocabSize,
    labelWidth: T,
    inputs: 'tokens',
    text: { corpus: name, context: T },
    trainCount: windowCount(chars.train, T),
    testCount: windowCount(chars.test, T),
    source,
    createdAt,
    kind: 'text',
    format,
    vocabSize,
    characters: chars,
  };
}

/** The built-in datasets, in the order they are listed; listed from constants until first used. */
function builtinSources(dataDir: string, log: ProgressLog): Map<string, Source> {
  const images = (name: string, counts: { train: number; test: number }, load: () => { train: Dataset; test: Dataset; trainBytes?: Uint8Array; testBytes?: Uint8Array }, classNames?: string[]): Source => {
    let loaded: Entry | undefined;
    const base = { name, ...IMAGE_SHAPE_INFO, ...(classNames ? { classNames } : {}) };
    const listed: DatasetSummary = { ...base, features: MNIST_FEATURES, classes: MNIST_CLASSES, trainCount: counts.train, testCount: counts.test, kind: 'images', format: 'builtin' };
    return {
      summary: () => loaded?.summary ?? listed,
      entry: () => {
        if (!loaded) {
          const splits = load();
          loaded = memoEntry(splits, () => makeEntry(base, splits.train, splits.test, { format: 'builtin' }, splits.trainBytes && splits.testBytes ? { train: splits.trainBytes, test: splits.testBytes } : undefined));
        }
        return loaded;
      },
    };
  };
  const mobyTrain = trainCharsOf(MOBY_DICK_CHARS);
  return new Map<string, Source>([
    ['mnist', images('mnist', MNIST_FULL_COUNTS, () => loadMnistFull(dataDir, log))],
    ['mnist-10k', images('mnist-10k', { train: 10_000 - MNIST_TEST_COUNT, test: MNIST_TEST_COUNT }, () => loadMnist10k(dataDir, log))],
    ['fashion-mnist', images('fashion-mnist', FASHION_COUNTS, () => loadFashionMnist(dataDir, log), FASHION_CLASS_NAMES)],
    [
      'moby-dick',
      {
        summary: () => textSummary('moby-dick', { train: mobyTrain, test: MOBY_DICK_CHARS - mobyTrain }, MOBY_DICK_VOCAB, 'builtin', 0, 'builtin'),
        corpus: () => loadMobyDick(dataDir, log),
      },
    ],
  ]);
}

export interface DatasetRegistryOptions {
  /** Where progress lines go while a built-in dataset is converted (default: stderr). */
  log?: ProgressLog;
}

/**
 * The built-in datasets and every dataset uploaded to this data dir. Nothing is converted or
 * read in the constructor but the uploads' small metadata and bytes; a built-in is converted
 * (once, then cached under <dataDir>/cache/) when a run or a request first names it.
 * @example
 * const datasets = new DatasetRegistry('./data');
 * datasets.addUpload('iris', [{ filename: 'iris.csv', bytes }]);
 * datasets.get('iris')?.info.shards; // what workers fetch
 * datasets.forSpec({ dataset: 'moby-dick', context: 128 })?.info.name; // 'moby-dick@128'
 */
export class DatasetRegistry implements Datasets {
  private readonly builtins: Map<string, Source>;
  private readonly uploads = new Map<string, Source>();
  /** Saved datasets that could not be loaded, and why (the app logs them). */
  readonly skipped: { name: string; reason: string }[] = [];
  private readonly dir: string;

  constructor(
    private readonly dataDir: string,
    opts: DatasetRegistryOptions = {},
  ) {
    this.dir = join(dataDir, DATASETS_DIR);
    this.builtins = builtinSources(dataDir, opts.log ?? logToStderr);
    this.loadSaved();
  }

  /**
   * The dataset of that name, loaded (a built-in is converted on first use). A text's name
   * gives its windows of the default context; '<text>@<context>' its windows of that context.
   */
  get(name: string): LoadedDataset | undefined {
    return this.entry(name)?.loaded;
  }

  /** The named dataset, or for a text the windows of the spec's `context` (default 64). */
  forSpec(spec: { dataset: string; context?: number }): LoadedDataset | undefined {
    const source = this.source(spec.dataset);
    if (!source?.corpus) return this.get(spec.dataset);
    const context = spec.context ?? DEFAULT_CONTEXT;
    const entry = this.windows(spec.dataset, context);
    if (!entry) throw new RunSpecError([{ path: 'context', message: `context must be an integer in [2, ${MAX_CONTEXT}], got ${context}` }]);
    const { train, test } = entry.loaded;
    if (train.count < 1 || test.count < 1) {
      const chars = source.summary().characters!;
      throw new RunSpecError([{ path: 'context', message: `${spec.dataset} has ${chars.train} training and ${chars.test} validation characters: too few for one window of ${context} (and the character after it) in each; use a smaller context` }]);
    }
    return entry.loaded;
  }

  /** Every dataset without its shards, the built-ins first, then the uploads by name (nothing is converted). */
  list(): DatasetSummary[] {
    return this.summaries();
  }

  /** The body of GET /api/datasets. */
  summaries(): DatasetSummary[] {
    return this.names().map((n) => this.source(n)!.summary());
  }

  /** One dataset as GET /api/datasets lists it: what the upload route answers with. */
  summary(name: string): DatasetSummary | undefined {
    return this.source(name)?.summary();
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
    let name = parts[0];
    try {
      name = decodeURIComponent(name);
    } catch {
      // Not percent-encoding: looked up as it is, and not found.
    }
    const entry = this.entry(name);
    if (!entry) return jsonAnswer(404, { error: 'unknown_dataset', message: `no dataset named "${name}"; there are: ${this.names().join(', ')}` });
    if (parts.length === 1) return jsonAnswer(200, this.index(entry));
    const hash = parts[1];
    const shard = parts.length === 2 ? entry.shards.get(hash) : undefined;
    if (shard) return immutableAnswer(hash, shard);
    const split = parts.length === 2 ? Object.values(entry.splits).find((s) => s.sha256 === hash) : undefined;
    if (split) return immutableAnswer(hash, split.encode());
    return jsonAnswer(404, { error: 'unknown_shard', message: `no ${entry.loaded.info.name} data at ${clean}` });
  }

  /**
   * Parses an upload (one CSV file, two IDX files: images and labels, or one UTF-8 text file:
   * .txt or text/plain; any of them gzip'd), splits it (tables and images 80/20 stratified, a text
   * 90/10 by position), saves it and makes it available to runs.
   * Throws DatasetUploadError: `code` 'invalid_name' | 'name_taken' | 'bad_file' | 'too_large',
   * `status` the HTTP status to answer with, `message` naming the file, line and column.
   */
  addUpload(name: string, files: UploadFile[]): LoadedDataset {
    this.checkNewName(name);
    const provenance = files.map((f) => ({ filename: f.filename, bytes: f.bytes.byteLength, sha256: sha256(f.bytes) }));
    if (isTextUpload(files)) {
      const { corpus } = parseText(files[0]);
      const bytes = encodeCorpusIds(corpus);
      const meta: UploadedDatasetMeta = {
        version: META_VERSION,
        name,
        format: 'text',
        files: provenance,
        features: corpus.ids.length,
        classes: corpus.vocab.length,
        trainCount: corpus.trainChars,
        testCount: corpus.ids.length - corpus.trainChars,
        splitSeed: 0,
        sha256: sha256(bytes),
        vocab: corpus.vocab,
        createdAt: Date.now(),
      };
      this.save(meta, bytes);
      this.uploads.set(name, this.textSource(meta, corpus));
      return this.get(name)!;
    }
    const parsed = parseUpload(files);
    const all = parsed.exampleShape ? { ...parsed.dataset, shape: imageShape(parsed.exampleShape) } : parsed.dataset;
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
      files: provenance,
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
    this.save(meta, bytes);
    const entry = this.uploadEntry(meta, decodeDataset(bytes));
    this.uploads.set(name, { summary: () => entry.summary, entry: () => entry });
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
    if (this.builtins.has(name)) throw new DatasetUploadError(`"${name}" is a built-in dataset; choose another name`, 'name_taken');
    if (this.uploads.has(name)) throw new DatasetUploadError(`a dataset named "${name}" exists already; choose another name`, 'name_taken');
  }

  /** The built-ins in their order, then the uploads by name. */
  private names(): string[] {
    return [...this.builtins.keys(), ...[...this.uploads.keys()].sort()];
  }

  private source(name: string): Source | undefined {
    return this.builtins.get(name) ?? this.uploads.get(name);
  }

  /** A dataset's entry by name: a table or images, a text's default windows, or '<text>@<context>'. */
  private entry(name: string): Entry | undefined {
    const at = name.lastIndexOf('@');
    if (at >= 0) {
      const digits = name.slice(at + 1);
      // One spelling per window length, so that one set of windows has one set of URLs.
      if (!/^[1-9]\d*$/.test(digits)) return undefined;
      return this.windows(name.slice(0, at), Number(digits));
    }
    const source = this.source(name);
    if (!source) return undefined;
    return source.corpus ? this.windows(name, DEFAULT_CONTEXT) : source.entry!();
  }

  /** A text's windows of `context` characters, named '<text>@<context>', made once. */
  private windows(name: string, context: number): Entry | undefined {
    const source = this.source(name);
    if (!source?.corpus || !Number.isInteger(context) || context < 2 || context > MAX_CONTEXT) return undefined;
    const corpus = source.corpus();
    let byContext = windowMemo.get(corpus);
    if (!byContext) {
      byContext = new Map();
      windowMemo.set(corpus, byContext);
    }
    let entry = byContext.get(context);
    if (!entry) {
      const listed = source.summary();
      const base = { name: `${name}@${context}`, exampleShape: [context], labelWidth: context, inputs: 'tokens' as const, vocab: corpus.vocab, text: { corpus: name, context }, source: listed.source, createdAt: listed.createdAt };
      const chars = { train: corpus.trainChars, test: corpus.ids.length - corpus.trainChars };
      entry = makeEntry(base, windowsOf(corpus, 'train', context), windowsOf(corpus, 'test', context), { format: listed.format, characters: chars });
      byContext.set(context, entry);
    }
    return entry;
  }

  private index(entry: Entry): DatasetIndexBody {
    const name = entry.loaded.info.name;
    const split = (s: SplitRef) => ({ url: `${DATASET_PREFIX}${name}/${s.sha256}`, bytes: s.bytes, sha256: s.sha256, count: s.count });
    const vocab = entry.loaded.info.vocab;
    return { ...entry.summary, ...(vocab ? { vocab } : {}), splits: { train: split(entry.splits.train), test: split(entry.splits.test) }, shards: entry.loaded.info.shards };
  }

  private save(meta: UploadedDatasetMeta, bytes: Uint8Array): void {
    mkdirSync(this.dir, { recursive: true });
    // The .json goes last: a dataset without it is not loaded, so a crash between the two
    // leaves nothing half-made behind the name.
    writeFileAtomic(join(this.dir, `${meta.name}.ctds`), bytes);
    writeFileAtomic(join(this.dir, `${meta.name}.json`), `${JSON.stringify(meta, null, 2)}\n`);
  }

  private textSource(meta: UploadedDatasetMeta, corpus: TextCorpus): Source {
    const summary = textSummary(meta.name, { train: meta.trainCount, test: meta.testCount }, meta.classes, 'upload', meta.createdAt, 'text');
    return { summary: () => summary, corpus: () => corpus };
  }

  private uploadEntry(meta: UploadedDatasetMeta, saved: Dataset): Entry {
    const shape = meta.exampleShape && imageShape(meta.exampleShape);
    const all = shape ? { ...saved, shape } : saved;
    const train = sliceExamples(all, 0, meta.trainCount);
    const test = sliceExamples(all, meta.trainCount, meta.testCount);
    const base = { name: meta.name, ...(shape ? { exampleShape: shape } : {}), source: 'upload' as const, createdAt: meta.createdAt };
    const extra = {
      format: meta.format,
      ...(meta.scale ? { scale: meta.scale } : {}),
      ...(meta.columns ? { columns: meta.columns } : {}),
    };
    return makeEntry(base, train, test, extra);
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
        if (meta.name !== name || this.builtins.has(name)) throw new Error(`metadata names "${meta.name}"`);
        const bytes = new Uint8Array(readFileSync(join(this.dir, `${name}.ctds`)));
        if (sha256(bytes) !== meta.sha256) throw new Error(`${name}.ctds does not match the sha256 its metadata records`);
        if (meta.format === 'text') {
          const corpus = decodeCorpusIds(bytes, meta.vocab ?? [], meta.trainCount);
          if (corpus.ids.length !== meta.trainCount + meta.testCount) throw new Error(`${name}.ctds holds ${corpus.ids.length} characters, not what its metadata records`);
          this.uploads.set(name, this.textSource(meta, corpus));
          continue;
        }
        const all = decodeDataset(bytes);
        if (all.count !== meta.trainCount + meta.testCount || all.features !== meta.features || all.classes !== meta.classes) {
          throw new Error(`${name}.ctds holds ${all.count}x${all.features} with ${all.classes} classes, not what its metadata records`);
        }
        const entry = this.uploadEntry(meta, all);
        this.uploads.set(name, { summary: () => entry.summary, entry: () => entry });
      } catch (err) {
        this.skipped.push({ name, reason: (err as Error).message });
      }
    }
  }
}
