// Uploaded datasets: CSV, IDX and text parsing with the errors an admin would see, and the
// registry that splits, saves, serves and reloads them next to the built-in datasets.
// (The built-ins' conversion is test/builtin-datasets.test.ts's.)
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { decodeDataset, type Dataset } from '../shared/dataset.ts';
import { DatasetRegistry, UPLOAD_SHARD_SIZE, type DatasetIndexBody, type DatasetSummary } from '../server/data/registry.ts';
import { DatasetUploadError, invalidUtf8At, isTextUpload, parseCsv, parseIdx, parseText, parseUpload, UPLOAD_LIMITS, type UploadFile } from '../server/data/upload.ts';
import { RunSpecError } from '../shared/run-spec.ts';

const enc = (s: string) => new TextEncoder().encode(s);

/** A CSV of `rows` examples: two features and a label cycling through `classes`. */
function csv(rows: number, classes = 3, feature = (r: number, c: number) => (r * 7 + c * 13) % 256): string {
  const lines = ['x1,x2,label'];
  for (let r = 0; r < rows; r++) lines.push(`${feature(r, 0)},${feature(r, 1)},${r % classes}`);
  return `${lines.join('\n')}\n`;
}

/** csv(30) with its line 4 (the third example, "14,27,2") replaced. */
function csvWithLine4(line: string): string {
  const lines = csv(30).split('\n');
  lines[3] = line;
  return lines.join('\n');
}

/** An IDX file: magic 00 00 08 <dims>, big-endian u32 sizes, then bytes. */
function idx(dims: number[], data: Uint8Array, type = 0x08): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  out[2] = type;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

function idxPair(count: number, side = 4, classes = 5): { images: UploadFile; labels: UploadFile } {
  const pixels = Uint8Array.from({ length: count * side * side }, (_, i) => (i * 31) % 256);
  const labels = Uint8Array.from({ length: count }, (_, i) => i % classes);
  return { images: { filename: 'train-images-idx3-ubyte', bytes: idx([count, side, side], pixels) }, labels: { filename: 'train-labels-idx1-ubyte', bytes: idx([count], labels) } };
}

/** The DatasetUploadError `fn` throws (fails the test when it throws nothing or something else). */
function uploadError(fn: () => unknown): DatasetUploadError {
  try {
    fn();
  } catch (err) {
    if (err instanceof DatasetUploadError) return err;
    throw err;
  }
  throw new Error('expected a DatasetUploadError');
}

describe('CSV uploads', () => {
  test('byte-valued features are kept as they are, label column last', () => {
    const p = parseCsv(enc(csv(30)), 'points.csv');
    expect(p.format).toBe('csv');
    expect(p.scale).toBeUndefined();
    expect(p.dataset).toMatchObject({ count: 30, features: 2, classes: 3 });
    expect(Array.from(p.dataset.x.subarray(0, 4))).toEqual([0, 13, 7, 20]);
    expect(Array.from(p.dataset.y.subarray(0, 4))).toEqual([0, 1, 2, 0]);
    expect(p.columns).toEqual({ features: ['x1', 'x2'], label: 'label' });
  });

  test('a column named label is the label wherever it is; CRLF, BOM, quotes and blank lines are fine', () => {
    const rows = Array.from({ length: 25 }, (_, r) => `${r % 2},${r},"${r * 2}"`);
    const text = `\uFEFF"Label",a,"b ""quoted"""\r\n${rows.join('\r\n')}\r\n\r\n`;
    const p = parseCsv(enc(text), 'q.csv');
    expect(p.dataset).toMatchObject({ count: 25, features: 2, classes: 2 });
    expect(p.columns).toEqual({ features: ['a', 'b "quoted"'], label: 'Label' });
    expect(Array.from(p.dataset.x.subarray(2, 4))).toEqual([1, 2]);
    expect(p.dataset.y[1]).toBe(1);
  });

  test('other values are min-max scaled to bytes, and the scaling is recorded', () => {
    const p = parseCsv(enc(csv(20, 2, (r, c) => (c === 0 ? -1 + r * 0.1 : 1000 + r))), 'real.csv');
    expect(p.scale).toEqual({ min: -1, max: 1019 });
    const x = p.dataset.x;
    expect(x[0]).toBe(0); // -1 is the minimum
    expect(x[39]).toBe(255); // 1019 is the maximum
    expect(x[1]).toBe(Math.round((1000 + 1) * (255 / 1020))); // 1000 -> 250
  });

  test.each([
    ['a non-numeric cell, by line and column', csvWithLine4('14,abc,2'), /points\.csv: line 4, column 2 \("x2"\): "abc" is not a number/],
    ['an empty cell', csvWithLine4('14,,2'), /line 4, column 2 \("x2"\): is empty/],
    ['a label out of range', csvWithLine4('14,26,300'), /line 4, column 3 \("label"\): the label 300 is not a class number 0 to 255/],
    ['a negative label', csvWithLine4('14,26,-1'), /line 4, column 3 \("label"\): the label -1 is not a class number/],
    ['a fractional label', csvWithLine4('14,26,1.5'), /line 4, column 3 \("label"\): the label 1\.5 is not a class number/],
    ['a word for a label', csvWithLine4('14,26,cat'), /line 4, column 3 \("label"\): the label "cat" is not a number; labels are class numbers 0 to 255/],
    ['a ragged row', csvWithLine4('14,26'), /line 4 has 2 cells; the header has 3 columns/],
    ['too few rows', csv(19), /19 data rows; a dataset needs at least 20/],
    ['one class', csv(30, 1), /every label is 0; a dataset needs at least 2 classes/],
    ['no header', csv(30).replace('x1,x2,label\n', ''), /line 1 holds numbers, not column names/],
    ['a repeated column name', csv(30).replace('x1,x2,label', 'x1,x1,label'), /column 2: the column name "x1" is used twice/],
    ['an unclosed quote', csvWithLine4('14,"26,2'), /line 4: a quote is not closed/],
    ['an empty file', '\n\n', /the file is empty/],
  ])('refuses %s', (_what, text, message) => {
    const err = uploadError(() => parseCsv(enc(text), 'points.csv'));
    expect(err.message).toMatch(message);
    expect(err.code).toBe('bad_file');
    expect(err.status).toBe(400);
  });

  test('refuses binary that is neither text nor IDX', () => {
    expect(uploadError(() => parseUpload([{ filename: 'photo.jpg', bytes: Uint8Array.of(0xff, 0xd8, 0xff, 0xe0, 0x80, 0x81) }])).message).toMatch(/photo\.jpg: not UTF-8 text/);
  });

  test('refuses more features, rows or bytes than the limits, as too large (413)', () => {
    const wide = `${Array.from({ length: UPLOAD_LIMITS.maxFeatures + 1 }, (_, i) => `f${i}`).join(',')},label\n`;
    const a = uploadError(() => parseCsv(enc(wide), 'wide.csv'));
    expect(a.message).toMatch(/4097 feature columns; at most 4096/);
    expect(a.status).toBe(413);

    const long = `x,label\n${'1,0\n'.repeat(UPLOAD_LIMITS.maxRows + 1)}`;
    expect(uploadError(() => parseCsv(enc(long), 'long.csv')).message).toMatch(/more than 100000 rows/);

    const big = new Uint8Array(UPLOAD_LIMITS.maxBytes + 1).fill(0x31);
    const c = uploadError(() => parseUpload([{ filename: 'big.csv', bytes: big }]));
    expect(c.message).toMatch(/the upload is 64\.0 MiB; at most 64\.0 MiB/);
    expect(c.code).toBe('too_large');
  });

  test('a gzip bomb stops at the size limit', () => {
    const bomb = gzipSync(new Uint8Array(UPLOAD_LIMITS.maxBytes + 1024));
    expect(bomb.length).toBeLessThan(1 << 20);
    const err = uploadError(() => parseUpload([{ filename: 'bomb.csv.gz', bytes: bomb }]));
    expect(err.message).toMatch(/bomb\.csv\.gz: unzips to more than 64\.0 MiB/);
    expect(err.status).toBe(413);
  });
});

describe('IDX uploads', () => {
  test('an images file and a labels file, in either order, gzip\'d or not', () => {
    const { images, labels } = idxPair(40);
    const a = parseIdx(images, labels);
    expect(a.format).toBe('idx');
    expect(a.dataset).toMatchObject({ count: 40, features: 16, classes: 5 });
    expect(a.exampleShape).toEqual([4, 4]);
    expect(a.dataset.x[17]).toBe((17 * 31) % 256);
    expect(a.dataset.y[7]).toBe(2);
    const b = parseUpload([{ filename: 'l.gz', bytes: gzipSync(labels.bytes) }, { filename: 'i.gz', bytes: gzipSync(images.bytes) }]);
    expect(b.dataset).toEqual(a.dataset);
  });

  test('refuses a bad magic number', () => {
    const { images, labels } = idxPair(40);
    const bad = { filename: 'images.bin', bytes: images.bytes.slice() };
    bad.bytes[0] = 0x12;
    const err = uploadError(() => parseIdx(bad, labels));
    expect(err.message).toMatch(/images\.bin: not an IDX file: its magic number is 0x12000803, expected 0x00000803 \(images\) or 0x00000801 \(labels\)/);
  });

  test('refuses images and labels that disagree on the count', () => {
    const { images } = idxPair(40);
    const { labels } = idxPair(39);
    expect(uploadError(() => parseIdx(images, labels)).message).toMatch(/disagree on the count: train-images-idx3-ubyte holds 40 images, train-labels-idx1-ubyte holds 39 labels/);
  });

  test('refuses a file cut short, a non-byte type, too few examples, one file or two labels files', () => {
    const { images, labels } = idxPair(40);
    const short = { filename: 'short', bytes: images.bytes.subarray(0, images.bytes.length - 5) };
    expect(uploadError(() => parseIdx(short, labels)).message).toMatch(/short: the IDX header gives the shape \[40, 4, 4\], 640 bytes of data, but the file holds 635 \(cut short\?\)/);
    const floats = { filename: 'f', bytes: idx([40, 4], new Uint8Array(160), 0x0d) };
    expect(uploadError(() => parseIdx(floats, labels)).message).toMatch(/type 0x0d \(float\) is not supported; features and labels must be unsigned bytes/);
    const few = idxPair(19);
    expect(uploadError(() => parseIdx(few.images, few.labels)).message).toMatch(/19 examples; a dataset needs at least 20/);
    expect(uploadError(() => parseUpload([images])).message).toMatch(/an IDX upload needs two files/);
    expect(uploadError(() => parseUpload([labels, { ...labels, filename: 'again' }])).message).toMatch(/both IDX labels files/);
    expect(uploadError(() => parseUpload([images, { filename: 'x.csv', bytes: enc(csv(30)) }])).message).toMatch(/send one CSV file, or exactly two IDX files/);
  });
});

/** A text of `chars` characters (code points) over a small alphabet with accents and a long dash. */
function poem(chars: number): string {
  const words = ['Call', 'me', 'Ishmael.', 'Some', 'years', 'ago—never', 'mind', 'how', 'long', 'précisément', 'whale', 'sea\n'];
  let out = '';
  for (let i = 0; [...out].length < chars; i++) out += `${words[(i * 7) % words.length]} `;
  return [...out].slice(0, chars).join('');
}

describe('text uploads', () => {
  test('a UTF-8 text becomes characters as token ids, vocabulary sorted by code point, split 90/10 by position', () => {
    const text = poem(1000);
    const { corpus } = parseText({ filename: 'poem.txt', bytes: enc(`\uFEFF${text}`) });
    expect(corpus.vocab).toEqual([...new Set(text)].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!));
    expect(corpus.vocab.slice(0, 3)).toEqual(['\n', ' ', '.']);
    expect(corpus.vocab.at(-1)).toBe('—');
    expect(corpus.ids.length).toBe(1000); // the BOM is dropped; é and — are one character each
    expect(Array.from(corpus.ids, (id) => corpus.vocab[id]).join('')).toBe(text);
    expect(corpus.trainChars).toBe(900);
    // A character outside the BMP (two UTF-16 units) is still one token.
    expect(parseText({ filename: 'e.txt', bytes: enc(`🐋${text}`) }).corpus.ids.length).toBe(1001);
  });

  test('a .txt file or text/plain is a text; a CSV is not', () => {
    expect(isTextUpload([{ filename: 'moby.txt', bytes: enc('x') }])).toBe(true);
    expect(isTextUpload([{ filename: 'MOBY.TXT.gz', bytes: enc('x') }])).toBe(true);
    expect(isTextUpload([{ filename: 'corpus', bytes: enc('x'), type: 'text/plain; charset=utf-8' }])).toBe(true);
    expect(isTextUpload([{ filename: 'points.csv', bytes: enc('x'), type: 'text/csv' }])).toBe(false);
  });

  test('finds the first byte that is not UTF-8', () => {
    expect(invalidUtf8At(enc('plain ascii, é — 🐋'))).toBe(-1);
    expect(invalidUtf8At(Uint8Array.of(0x61, 0xc0, 0x80))).toBe(1); // overlong
    expect(invalidUtf8At(Uint8Array.of(0x61, 0x62, 0xe2, 0x80))).toBe(2); // cut short
    expect(invalidUtf8At(Uint8Array.of(0xed, 0xa0, 0x80))).toBe(0); // a UTF-16 surrogate
    expect(invalidUtf8At(Uint8Array.of(0x61, 0x80))).toBe(1); // a lone continuation byte
  });

  test.each([
    ['bytes that are not UTF-8, by offset and line', () => new Uint8Array([...enc(`${'a'.repeat(700)}\nsecond line `), 0xff, ...enc(poem(700))]), /poem\.txt: not UTF-8 text: the byte at offset 713 \(line 2\), 0xff, does not begin or continue a UTF-8 character/],
    ['an empty file', () => enc(''), /poem\.txt: the file is empty/],
    ['a file holding only a byte-order mark', () => enc('\uFEFF'), /poem\.txt: the file is empty/],
    ['more than 255 distinct characters', () => enc(Array.from({ length: 3000 }, (_, i) => String.fromCodePoint(0x100 + (i % 300))).join('')), /poem\.txt: 300 distinct characters; a text corpus may have at most 255/],
    ['a text too short for a window', () => enc(poem(100)), /poem\.txt: 100 characters, too short for a window: a text corpus needs at least 641, so that its last 10 % \(the validation split\) holds one window of 64 characters/],
  ])('refuses %s', (_what, bytes, message) => {
    const err = uploadError(() => parseText({ filename: 'poem.txt', bytes: bytes() }));
    expect(err.message).toMatch(message);
    expect(err.status).toBe(400);
  });

  test('the shortest text accepted has one window of 64 characters (and the next) in its last 10 %', () => {
    const { corpus } = parseText({ filename: 'short.txt', bytes: enc(poem(641)) });
    expect([corpus.trainChars, corpus.ids.length - corpus.trainChars]).toEqual([576, 65]);
    expect(uploadError(() => parseText({ filename: 'short.txt', bytes: enc(poem(640)) })).message).toMatch(/640 characters, too short for a window/);
  });

  test('refuses a text over 32 MiB as too large (413)', () => {
    const err = uploadError(() => parseText({ filename: 'huge.txt', bytes: new Uint8Array(UPLOAD_LIMITS.maxTextBytes + 1).fill(0x61) }));
    expect(err.message).toMatch(/huge\.txt: 32\.0 MiB of text; a text corpus may be at most 32\.0 MiB/);
    expect(err).toMatchObject({ code: 'too_large', status: 413 });
  });
});

const BUILTINS = ['mnist', 'mnist-10k', 'fashion-mnist', 'moby-dick'];

describe('DatasetRegistry', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'crowdtrain-datasets-'));
  const registry = new DatasetRegistry(dataDir, { log: () => {} });
  const bodyOf = (path: string) => {
    const a = registry.answer(path)!;
    return { status: a.status, headers: a.headers, json: JSON.parse(a.body as string) };
  };

  test('serves the built-in 10,000-digit MNIST (mnist-10k) in 1000-digit shards', () => {
    const mnist = registry.get('mnist-10k')!;
    expect(mnist.info).toMatchObject({ name: 'mnist-10k', features: 784, classes: 10, trainCount: 8000, testCount: 2000, source: 'builtin' });
    expect(mnist.info.shards.map((s) => [s.start, s.count, s.url])).toEqual(Array.from({ length: 8 }, (_, i) => [i * 1000, 1000, `/api/datasets/mnist-10k/${mnist.info.shards[i].sha256}`]));
    const shard = registry.answer(mnist.info.shards[3].url)!;
    expect(shard.status).toBe(200);
    expect(decodeDataset(shard.body as Uint8Array).y).toEqual(mnist.train.y.subarray(3000, 4000));
    const index = bodyOf('/api/datasets/mnist-10k').json as DatasetIndexBody;
    const test = registry.answer(index.splits.test.url)!;
    expect(decodeDataset(test.body as Uint8Array).count).toBe(2000);
  });

  test('adds a CSV upload: stratified 80/20 split, 1000-example shards at content-hashed, immutable URLs', () => {
    const rows = 2600;
    const loaded = registry.addUpload('points', [{ filename: 'points.csv', bytes: enc(csv(rows, 4)) }]);
    expect(loaded.info).toMatchObject({ name: 'points', features: 2, classes: 4, trainCount: 2080, testCount: 520, source: 'upload' });
    // Every class keeps its share in the test split.
    const perClass = [0, 0, 0, 0];
    for (const label of loaded.test.y) perClass[label]++;
    expect(perClass).toEqual([130, 130, 130, 130]);
    expect(loaded.info.shards.map((s) => [s.start, s.count])).toEqual([[0, UPLOAD_SHARD_SIZE], [1000, 1000], [2000, 80]]);
    for (const s of loaded.info.shards) {
      expect(s.url).toBe(`/api/datasets/points/${s.sha256}`);
      const a = registry.answer(s.url)!;
      expect(a.status).toBe(200);
      expect(a.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(a.headers['content-type']).toBe('application/octet-stream');
      expect(a.headers.etag).toBe(`"${s.sha256}"`);
      const shard = decodeDataset(a.body as Uint8Array);
      expect(shard.y).toEqual(loaded.train.y.subarray(s.start, s.start + s.count));
      expect(shard.x).toEqual(loaded.train.x.subarray(s.start * 2, (s.start + s.count) * 2));
    }
    const index = bodyOf('/api/datasets/points?v=1');
    expect(index.status).toBe(200);
    expect(index.json).toMatchObject({ name: 'points', format: 'csv', columns: { features: ['x1', 'x2'], label: 'label' }, splits: { train: { count: 2080 }, test: { count: 520 } } });
    const train = registry.answer(index.json.splits.train.url)!;
    expect(decodeDataset(train.body as Uint8Array).y).toEqual(loaded.train.y);
  });

  test('lists every dataset, without shards', () => {
    const list = bodyOf('/api/datasets').json.datasets as DatasetSummary[];
    expect(list.map((d) => d.name)).toEqual([...BUILTINS, 'points']);
    expect(list[4]).toMatchObject({ kind: 'table', format: 'csv', trainCount: 2080, testCount: 520 });
    expect(list.some((d) => 'shards' in d)).toBe(false);
    expect(registry.list().map((d) => d.name)).toEqual([...BUILTINS, 'points']);
    expect(bodyOf('/api/datasets/').json.datasets).toHaveLength(5);
  });

  test('unknown datasets and hashes are a 404 that says what exists; other paths are not its own', () => {
    const a = bodyOf('/api/datasets/cifar');
    expect(a.status).toBe(404);
    expect(a.json.message).toBe('no dataset named "cifar"; there are: mnist, mnist-10k, fashion-mnist, moby-dick, points');
    const b = bodyOf(`/api/datasets/points/${'0'.repeat(64)}`);
    expect(b.status).toBe(404);
    expect(b.json.error).toBe('unknown_shard');
    const shard = registry.get('points')!.info.shards[0];
    expect(bodyOf(`${shard.url}/extra`).status).toBe(404);
    expect(registry.answer('/api/runs')).toBeUndefined();
    expect(registry.answer('/api/datasetsx')).toBeUndefined();
  });

  test('an IDX upload, and an upload scaled from real values, keep their provenance', () => {
    const { images, labels } = idxPair(60);
    const digits = registry.addUpload('tiny-digits', [labels, { filename: 'images.gz', bytes: gzipSync(images.bytes) }]);
    expect(digits.info).toMatchObject({ features: 16, classes: 5, trainCount: 48, testCount: 12 });
    const scaled = registry.addUpload('real_values', [{ filename: 'r.csv', bytes: enc(csv(40, 2, (r) => r / 8)) }]);
    expect(scaled.info.classes).toBe(2);
    const list = bodyOf('/api/datasets').json.datasets as DatasetSummary[];
    // The IDX file's [4, 4] images get one channel in front, as MNIST's, so that convolutions take them.
    expect(list.find((d) => d.name === 'tiny-digits')).toMatchObject({ kind: 'images', format: 'idx', exampleShape: [1, 4, 4] });
    expect(decodeDataset(registry.answer(digits.info.shards[0].url)!.body as Uint8Array).shape).toEqual([1, 4, 4]);
    expect(list.find((d) => d.name === 'real_values')).toMatchObject({ format: 'csv', scale: { min: 0, max: 39 / 8 } });
    expect(registry.summary('tiny-digits')).toEqual(list.find((d) => d.name === 'tiny-digits'));
    expect(registry.summary('nope')).toBeUndefined();
  });

  test('a text upload trains as windows of the spec\'s context: y is x shifted by one, split 90/10 by position', () => {
    const text = poem(5000);
    const chars = [...text];
    const loaded = registry.addUpload('poems', [{ filename: 'poems.txt', bytes: enc(text) }]);
    const vocab = loaded.info.vocab!;
    expect(loaded.info).toMatchObject({ name: 'poems@64', features: 64, exampleShape: [64], labelWidth: 64, inputs: 'tokens', classes: vocab.length, text: { corpus: 'poems', context: 64 }, source: 'upload' });
    // 4,500 training characters: 70 windows of 64 and the character after the last; 500 validation: 7.
    expect([loaded.train.count, loaded.test.count]).toEqual([70, 7]);
    const chars64 = (ds: Dataset, k: number, of: 'x' | 'y') => Array.from(ds[of].subarray(k * 64, k * 64 + 64), (id) => vocab[id]).join('');
    expect(chars64(loaded.train, 0, 'x')).toBe(chars.slice(0, 64).join(''));
    expect(chars64(loaded.train, 0, 'y')).toBe(chars.slice(1, 65).join(''));
    expect(chars64(loaded.train, 69, 'y')).toBe(chars.slice(69 * 64 + 1, 70 * 64 + 1).join(''));
    // The validation windows start at character 4,500, where training stops.
    expect(chars64(loaded.test, 0, 'x')).toBe(chars.slice(4500, 4564).join(''));
    expect(chars64(loaded.test, 6, 'y')).toBe(chars.slice(4500 + 6 * 64 + 1, 4500 + 7 * 64 + 1).join(''));

    const s16 = registry.forSpec({ dataset: 'poems', context: 16 })!;
    expect(s16.info.name).toBe('poems@16');
    expect(registry.get('poems@16')).toBe(s16);
    expect(registry.forSpec({ dataset: 'poems' })).toBe(loaded);
    expect(registry.get('poems')).toBe(loaded);
    expect([s16.train.count, s16.test.count]).toEqual([Math.floor(4499 / 16), Math.floor(499 / 16)]);
    expect(registry.get('poems@016')).toBeUndefined();
    expect(() => registry.forSpec({ dataset: 'poems', context: 600 })).toThrow(RunSpecError);
    expect(() => registry.forSpec({ dataset: 'poems', context: 600 })).toThrow(/poems has 4500 training and 500 validation characters: too few for one window of 600/);

    for (const s of s16.info.shards) {
      expect(s.url).toBe(`/api/datasets/poems@16/${s.sha256}`);
      const a = registry.answer(s.url)!;
      expect(createHash('sha256').update(a.body as Uint8Array).digest('hex')).toBe(s.sha256);
      const shard = decodeDataset(a.body as Uint8Array);
      expect(shard).toMatchObject({ count: s.count, features: 16, labelWidth: 16, inputs: 'tokens', classes: vocab.length });
      expect(shard.x).toEqual(s16.train.x.subarray(s.start * 16, (s.start + s.count) * 16));
    }
    expect(registry.summary('poems')).toMatchObject({ kind: 'text', format: 'text', vocabSize: vocab.length, characters: { train: 4500, test: 500 }, trainCount: 70, testCount: 7 });
    const index = bodyOf('/api/datasets/poems%4016').json as DatasetIndexBody;
    expect(index).toMatchObject({ name: 'poems@16', vocab, splits: { train: { count: 281 }, test: { count: 31 } } });
    expect(index.splits.test.url).toBe(`/api/datasets/poems@16/${index.splits.test.sha256}`);
    expect(decodeDataset(registry.answer(index.splits.test.url)!.body as Uint8Array).y).toEqual(s16.test.y);
  });

  test('refuses taken and invalid names, and saves nothing for a bad file', () => {
    const file = [{ filename: 'p.csv', bytes: enc(csv(30)) }];
    const taken = uploadError(() => registry.addUpload('points', file));
    expect(taken).toMatchObject({ code: 'name_taken', status: 409 });
    expect(taken.message).toMatch(/a dataset named "points" exists already/);
    expect(uploadError(() => registry.addUpload('mnist', file)).message).toMatch(/"mnist" is a built-in dataset/);
    expect(uploadError(() => registry.addUpload('moby-dick', file)).message).toMatch(/"moby-dick" is a built-in dataset/);
    for (const bad of ['Points', 'my data', '', '-x', 'a'.repeat(65), '../etc']) {
      const err = uploadError(() => registry.addUpload(bad, file));
      expect(err).toMatchObject({ code: 'invalid_name', status: 400 });
      expect(err.message).toMatch(/lowercase letters, digits, - and _/);
    }
    const before = readdirSync(join(dataDir, 'datasets')).sort();
    expect(() => registry.addUpload('broken', [{ filename: 'b.csv', bytes: enc(csv(10)) }])).toThrow(DatasetUploadError);
    expect(readdirSync(join(dataDir, 'datasets')).sort()).toEqual(before);
    expect(registry.get('broken')).toBeUndefined();
  });

  test('a new registry on the same data dir sees the uploads, with the same shards', () => {
    const again = new DatasetRegistry(dataDir, { log: () => {} });
    expect(again.skipped).toEqual([]);
    expect(again.list().map((d) => d.name)).toEqual([...BUILTINS, 'poems', 'points', 'real_values', 'tiny-digits']);
    const [a, b] = [registry.get('points')!, again.get('points')!];
    expect(b.info).toEqual(a.info);
    expect(b.train.x).toEqual(a.train.x);
    expect(b.test.y).toEqual(a.test.y);
    expect(() => again.addUpload('points', [{ filename: 'p.csv', bytes: enc(csv(30)) }])).toThrow(/exists already/);
    const [p, q] = [registry.forSpec({ dataset: 'poems', context: 16 })!, again.forSpec({ dataset: 'poems', context: 16 })!];
    expect(q.info).toEqual(p.info);
    expect(q.train.y).toEqual(p.train.y);
  });

  test('a damaged saved dataset is skipped with the reason, not loaded', () => {
    writeFileSync(join(dataDir, 'datasets', 'points.ctds'), 'not a dataset');
    const again = new DatasetRegistry(dataDir, { log: () => {} });
    expect(again.get('points')).toBeUndefined();
    expect(again.skipped).toEqual([{ name: 'points', reason: 'points.ctds does not match the sha256 its metadata records' }]);
    expect(again.get('tiny-digits')).toBeDefined();
    expect(existsSync(join(dataDir, 'datasets', 'points.json'))).toBe(true);
  });
});
