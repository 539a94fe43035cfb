// What a stage worker computes in a pipeline round, whichever backend does it: the forward and
// backward of its own contiguous layers on one micro-batch at a time, and the parameter gradient
// those micro-batches add up to. The schedule, the relaying of activations and the wire format do
// not belong here (server/ and worker-client.ts); the implementations are client/cpu/stage-cpu.ts
// and client/nn/stage-gpu.ts.
//
// Shapes: m rows of one micro-batch (≤ the backend's maxMicroBatch), B = Σ m over the round's
// micro-batches, `in` = plan.layers[0], `out` = plan.layers.at(-1).
//
// @example GPipe on one stage worker (not the first, not the last):
//   stage.begin(sizes);
//   for (let mb = 0; mb < sizes.length; mb++) send(mb, await stage.forward(mb, received(mb)));
//   for (let mb = sizes.length - 1; mb >= 0; mb--) sendBack(mb, await stage.backward(mb, gradientOf(mb)));
//   const grads = await stage.gradients(); // f32[plan.paramCount]
import type { StagePlan } from '../../shared/stage.ts';

export interface StageBackend {
  readonly plan: StagePlan;
  /** The stage's parameters: the model's dense vector slice [plan.paramOffset, + plan.paramCount). Copied in. */
  setParams(params: Float32Array): void;
  /** Starts a round: zeroes the gradient accumulators. `sizes` = rows of each micro-batch; their sum is the replica's batch B. */
  begin(sizes: number[]): void;
  /** Not the last stage: forward of micro-batch `mb` on input x [m, plan.layers[0]] -> output activations [m, plan.layers.at(-1)] (after the activation). Keeps what backward needs. */
  forward(mb: number, x: Float32Array): Promise<Float32Array>;
  /** Last stage only: forward, softmax cross-entropy against labels [m], and backward of micro-batch mb. The gradient is scaled by m / B, so that summed over the micro-batches it is the gradient of the MEAN loss over the whole replica batch. Returns the micro-batch's mean loss and dL/dx [m, in] (null when the stage is also first). */
  forwardBackwardLast(mb: number, x: Float32Array, labels: ArrayLike<number>): Promise<{ loss: number; dx: Float32Array | null }>;
  /** Not the last stage: backward of micro-batch mb given dL/dy [m, out] (already scaled); accumulates parameter gradients; returns dL/dx [m, in], or null on the first stage. Micro-batches may come back in any order. */
  backward(mb: number, dy: Float32Array): Promise<Float32Array | null>;
  /** Accumulated parameter gradient of this round (stage dense layout, same order as setParams). */
  gradients(): Promise<Float32Array>;
  /** Bytes of the stage's parameter buffers (GPU: measured from what it allocated) and of everything it allocated. */
  readonly parameterBytes: number;
  readonly allocatedBytes: number;
  dispose(): void;
}
