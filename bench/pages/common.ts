// What the training benchmark pages share: their URL options, progress lines, medians, and the
// tfjs peer (tf.layers training the same MLP with the same batch and optimizer).
import * as tf from '@tensorflow/tfjs';

/** Options from the page URL (`?batch=64&steps=40&windows=5&hidden=128`), with defaults. */
export function benchOptions(defaults: { batch: number; steps: number; windows: number; hidden: number }) {
  const q = new URLSearchParams(location.search);
  const num = (k: keyof typeof defaults) => Number(q.get(k) ?? defaults[k]);
  return { BATCH: num('batch'), STEPS: num('steps'), WINDOWS: num('windows'), HIDDEN: num('hidden') };
}

export function log(m: string): void {
  console.log(m);
  document.getElementById('log')!.textContent += `${m}\n`;
}

export { median } from './timing.ts';

/**
 * tfjs tf.layers training 784-hidden-10 (relu, softmax) with Adam 1e-3 on `backend`, the data
 * already in tensors (no upload inside the timed window). `window()` fits one pass over the n
 * examples and returns samples/s.
 */
export async function tfjsTrainer(backend: string, xs: Float32Array, labels: ArrayLike<number>, n: number, hidden: number, batch: number) {
  await tf.setBackend(backend);
  await tf.ready();
  const ys = new Float32Array(n * 10);
  for (let i = 0; i < n; i++) ys[i * 10 + labels[i]] = 1;
  const model = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [784], units: hidden, activation: 'relu' }), tf.layers.dense({ units: 10, activation: 'softmax' })],
  });
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
  const x = tf.tensor2d(xs, [n, 784]);
  const y = tf.tensor2d(ys, [n, 10]);
  let loss = NaN;
  return {
    async window(): Promise<number> {
      await tf.setBackend(backend);
      const t0 = performance.now();
      const h = await model.fit(x, y, { batchSize: batch, epochs: 1, shuffle: false, verbose: 0, yieldEvery: 'never' });
      const sps = (n * 1000) / (performance.now() - t0);
      loss = Number(h.history.loss[0]);
      return sps;
    },
    lastLoss: () => loss,
  };
}

