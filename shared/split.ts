// Deterministic stratified train/test split: every class keeps its share in both parts.
import { createRng } from './rng.ts';

export interface Split {
  train: Uint32Array;
  test: Uint32Array;
}

/**
 * Splits example indices so that the test part has `testCount` examples and each class's
 * share of it matches its share of the whole (largest-remainder rounding). Both parts are
 * shuffled with `seed`, so any prefix of either is itself close to balanced.
 * @example stratifiedSplit(labels, 10, 2000, 1) // { train: 8000 indices, test: 2000 }
 */
export function stratifiedSplit(labels: ArrayLike<number>, classes: number, testCount: number, seed: number): Split {
  const n = labels.length;
  if (!Number.isInteger(testCount) || testCount < 0 || testCount > n) {
    throw new RangeError(`testCount must be an integer in [0, ${n}], got ${testCount}`);
  }
  const rng = createRng(seed);
  const byClass: number[][] = Array.from({ length: classes }, () => []);
  for (let i = 0; i < n; i++) byClass[labels[i]].push(i);

  // Largest remainder: floor of each exact quota, then one more to the largest fractions.
  const exact = byClass.map((idx) => (idx.length * testCount) / n);
  const quota = exact.map(Math.floor);
  let left = testCount - quota.reduce((a, b) => a + b, 0);
  const order = exact.map((e, c) => ({ c, frac: e - Math.floor(e) })).sort((a, b) => b.frac - a.frac || a.c - b.c);
  for (const { c } of order) {
    if (left === 0) break;
    quota[c]++;
    left--;
  }

  const train: number[] = [];
  const test: number[] = [];
  byClass.forEach((idx, c) => {
    rng.shuffle(idx);
    test.push(...idx.slice(0, quota[c]));
    train.push(...idx.slice(quota[c]));
  });
  return { train: Uint32Array.from(rng.shuffle(train)), test: Uint32Array.from(rng.shuffle(test)) };
}
