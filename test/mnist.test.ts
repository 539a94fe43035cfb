// mnist-10k: the 10,000-digit MNIST subset of the `mnist` package, its cache and its 8,000 / 2,000
// split; and the dataset wire format. (The full MNIST is test/builtin-datasets.test.ts's.)
import { mkdtempSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { decodeDataset, DatasetFormatError, encodeDataset, featuresAsFloat, selectExamples } from '../shared/dataset.ts';
import { stratifiedSplit } from '../shared/split.ts';
import { loadMnist, loadMnistAll, MNIST_TEST_COUNT } from '../server/data/mnist.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'crowdtrain-mnist-'));

describe('built-in mnist-10k', () => {
  test('10,000 real digits, converted once to a uint8 cache', () => {
    const all = loadMnistAll(dataDir);
    expect(all.count).toBe(10_000);
    expect(all.features).toBe(784);
    expect(readdirSync(join(dataDir, 'cache'))).toEqual(['mnist-v1.ctds']);
    // Real digits: mostly background with strokes, not noise and not blank.
    const ink = all.x.reduce((n, v) => n + (v > 128 ? 1 : 0), 0) / all.x.length;
    expect(ink).toBeGreaterThan(0.05);
    expect(ink).toBeLessThan(0.3);
    // The cache reloads to the same bytes.
    const again = loadMnistAll(dataDir);
    expect(Buffer.from(again.x).equals(Buffer.from(all.x))).toBe(true);
  });

  test('a damaged cache is rebuilt instead of breaking the coordinator', () => {
    writeFileSync(join(dataDir, 'cache', 'mnist-v1.ctds'), 'garbage');
    expect(loadMnistAll(dataDir).count).toBe(10_000);
  });

  test('8,000 / 2,000 split: stratified, disjoint, deterministic', () => {
    const all = loadMnistAll(dataDir);
    const { train, test: held } = loadMnist(dataDir);
    expect(train.count).toBe(8000);
    expect(held.count).toBe(MNIST_TEST_COUNT);
    const perClass = (y: Uint8Array) => Array.from({ length: 10 }, (_, c) => y.filter((v) => v === c).length);
    const total = perClass(all.y);
    const inTest = perClass(held.y);
    inTest.forEach((n, c) => expect(Math.abs(n - (total[c] * 2000) / 10000)).toBeLessThanOrEqual(1));
    // Disjoint: every digit image of the test set is absent from the train set (by content).
    const key = (x: Uint8Array, i: number) => Buffer.from(x.subarray(i * 784, (i + 1) * 784)).toString('base64');
    const trainKeys = new Set(Array.from({ length: train.count }, (_, i) => key(train.x, i)));
    let overlap = 0;
    for (let i = 0; i < held.count; i++) if (trainKeys.has(key(held.x, i))) overlap++;
    expect(overlap).toBeLessThan(5); // the package itself may hold a few identical images
    const again = loadMnist(dataDir);
    expect(Buffer.from(again.test.y).equals(Buffer.from(held.y))).toBe(true);
  });

  test('split indices are a partition and a different seed gives a different split', () => {
    const labels = Array.from({ length: 103 }, (_, i) => i % 3);
    const a = stratifiedSplit(labels, 3, 20, 1);
    const b = stratifiedSplit(labels, 3, 20, 2);
    expect([...a.train, ...a.test].sort((x, y) => x - y)).toEqual([...Array(103).keys()]);
    expect([...a.test]).not.toEqual([...b.test]);
    expect(() => stratifiedSplit(labels, 3, 104, 1)).toThrow(/testCount must be an integer in \[0, 103\]/);
  });
});

describe('dataset wire format', () => {
  const ds = { count: 2, features: 3, classes: 4, x: new Uint8Array([1, 2, 3, 4, 5, 6]), y: new Uint8Array([3, 0]) };
  test('round-trips', () => {
    const back = decodeDataset(encodeDataset(ds));
    expect([...back.x]).toEqual([...ds.x]);
    expect([...back.y]).toEqual([...ds.y]);
  });
  test.for([
    // Version 2 header: 8 words and the shape (one word for [3]) = 36 bytes, then labels, then features.
    ['truncated', (b: Uint8Array) => b.subarray(0, b.length - 1), /should be 44 bytes, got 43/],
    ['bad magic', (b: Uint8Array) => (b[0] = 0, b), /magic/],
    ['label out of range', (b: Uint8Array) => (b[36] = 9, b), /label 9 of example 0 is not below classes=4/],
    ['too short for a header', () => new Uint8Array(3), /shorter than its 20-byte header/],
    ['shape that does not hold the features', (b: Uint8Array) => (b[32] = 4, b), /example shape \[4\] does not hold 3 features/],
  ] as const)('rejects %s with a clear error', ([, damage, message]) => {
    const bytes = damage(encodeDataset(ds));
    expect(() => decodeDataset(bytes)).toThrow(DatasetFormatError);
    expect(() => decodeDataset(bytes)).toThrow(message);
  });
});
