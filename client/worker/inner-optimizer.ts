// Local mode's inner optimizer on the CPU: the state one worker keeps across its inner steps
// (and across outer rounds, as DiLoCo does) until reset, stepping a float32 parameter vector in
// place with the reference update. Used by the CPU backends on one thread and on several.
import { optimizerStateCount, optimizerStepRef, type OptimizerConfig, type OptimizerKind } from '../../shared/reference/optimizer.ts';

export class InnerOptimizer {
  private s: { kind: OptimizerKind | null; t: number; m?: Float32Array; v?: Float32Array } = { kind: null, t: 0 };

  /** One step of `optimizer` on `params` with `grads`; a step of another kind than the state's starts it afresh. */
  step(params: Float32Array, grads: Float32Array, optimizer: OptimizerConfig): void {
    const s = this.s;
    if (s.kind !== optimizer.kind) {
      s.kind = optimizer.kind;
      s.t = 0;
    }
    const states = optimizerStateCount(optimizer.kind);
    if (states >= 1) s.m ??= new Float32Array(params.length);
    if (states >= 2) s.v ??= new Float32Array(params.length);
    // At t = 1 the reference ignores whatever m and v hold, so a reset needs no zeroing.
    optimizerStepRef(params, grads, s, optimizer, ++s.t);
  }

  /** The next step is t = 1. */
  reset(): void {
    this.s.t = 0;
  }

  get bytes(): number {
    return (this.s.m?.byteLength ?? 0) + (this.s.v?.byteLength ?? 0);
  }
}
