// A task's gradient over any number of examples: computed in micro-batches of at most the
// backend's batch and summed on the worker, so one message carries the mean gradient of a task
// sized to the worker's speed while memory stays that of one micro-batch (hivemind's
// accumulate-to-target-batch idea, applied within a task).
import type { GradientBackend, GradientResult } from './backend.ts';

export interface ExampleSource {
  batch(indices: Uint32Array): Promise<{ x: Float32Array; labels: ArrayLike<number> }>;
}

/**
 * The mean-loss gradient over `indices`, or null when `stillWanted` turns false on the way
 * (the worker stopped or changed backend).
 */
export async function taskGradient(backend: GradientBackend, source: ExampleSource, indices: Uint32Array, stillWanted: () => boolean): Promise<GradientResult | null> {
  const n = indices.length;
  const micro = Math.max(1, backend.maxBatch);
  if (n <= micro) {
    const { x, labels } = await source.batch(indices);
    if (!stillWanted()) return null;
    return backend.gradients(x, labels, n);
  }
  let sum: Float32Array | null = null;
  let lossSum = 0;
  for (let start = 0; start < n; start += micro) {
    const part = indices.subarray(start, Math.min(n, start + micro));
    const { x, labels } = await source.batch(part);
    if (!stillWanted()) return null;
    const { loss, grads } = await backend.gradients(x, labels, part.length);
    // Each micro-batch's gradient is its mean: weight it by its examples.
    sum ??= new Float32Array(grads.length);
    const w = part.length;
    for (let i = 0; i < sum.length; i++) sum[i] += w * grads[i];
    lossSum += w * loss;
  }
  const inv = 1 / n;
  for (let i = 0; i < sum!.length; i++) sum![i] *= inv;
  return { loss: lossSum * inv, grads: sum! };
}
