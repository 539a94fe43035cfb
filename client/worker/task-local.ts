// A local-mode task (spec.sync.mode 'local', DiLoCo): from the round's parameters, H inner
// optimizer steps on consecutive batches of the task's examples, and the pseudo-gradient
// start − end that the worker sends instead of a gradient. The inner optimizer's state lives in
// the backend and carries over between rounds; when to reset it is the worker's call, not this
// file's. Compression of the pseudo-gradient does not belong here.
import type { OptimizerConfig } from '../../shared/reference/optimizer.ts';
import type { GradientBackend } from './backend.ts';
import type { ExampleSource } from './task-gradient.ts';

export interface LocalResult {
  /** Mean of the steps' batch losses. */
  loss: number;
  /** Parameters at the start minus parameters after the steps, dense layout; owned by the caller. */
  pseudo: Float32Array;
}

/**
 * Sets `start` on the backend and takes `steps` inner steps of `optimizer`, step s on
 * indices [s·batch, (s+1)·batch); null when `stillWanted` turns false on the way (the worker
 * stopped or changed backend).
 * @example
 *   const r = await taskInnerSteps(backend, params, source, task.indices, 8, 32, { kind: 'adamw', lr: 1e-3 }, () => running);
 *   if (r) send(r.pseudo);
 */
export async function taskInnerSteps(
  backend: GradientBackend,
  start: Float32Array,
  source: ExampleSource,
  indices: Uint32Array,
  steps: number,
  batch: number,
  optimizer: OptimizerConfig,
  stillWanted: () => boolean,
): Promise<LocalResult | null> {
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`taskInnerSteps: steps must be a positive integer, got ${steps}`);
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`taskInnerSteps: batch must be a positive integer, got ${batch}`);
  if (batch > backend.maxBatch) throw new RangeError(`taskInnerSteps: batch of ${batch} examples exceeds the backend's ${backend.maxBatch}`);
  if (indices.length !== steps * batch) throw new RangeError(`taskInnerSteps: ${indices.length} examples for ${steps} steps of ${batch}; expected ${steps * batch}`);
  backend.setParams(start);
  let lossSum = 0;
  for (let s = 0; s < steps; s++) {
    const { x, labels } = await source.batch(indices.subarray(s * batch, (s + 1) * batch));
    if (!stillWanted()) return null;
    lossSum += await backend.innerStep(x, labels, batch, optimizer);
  }
  if (!stillWanted()) return null;
  const pseudo = await backend.readParams();
  for (let i = 0; i < pseudo.length; i++) pseudo[i] = start[i] - pseudo[i];
  return { loss: lossSum / steps, pseudo };
}
