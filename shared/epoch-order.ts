// The order in which training examples are visited: one seeded permutation per epoch, the same
// in a tab, in a worker and on the coordinator.
import { createRng } from './rng.ts';

/** Example order of one epoch: a seeded permutation of [0, n). */
export function epochOrder(n: number, seed: number, epoch: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return createRng((Math.imul(seed, 1_000_003) + epoch) >>> 0).shuffle(order);
}

/**
 * Walks epoch after epoch of seeded permutations, handing out examples in order; examples
 * whose task failed are put back to be handed out first.
 */
export class ExampleCursor {
  epoch = 0;
  position = 0;
  private order: Uint32Array;
  /** Re-queued examples, handed out from `head` on (a queue without shifting). */
  private requeued: number[] = [];
  private head = 0;

  constructor(
    readonly count: number,
    readonly seed: number,
  ) {
    this.order = epochOrder(count, seed, 0);
  }

  next(n: number): Uint32Array {
    const out = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      if (this.head < this.requeued.length) {
        out[i] = this.requeued[this.head++];
        if (this.head === this.requeued.length) {
          this.requeued = [];
          this.head = 0;
        }
        continue;
      }
      if (this.position === this.count) {
        this.epoch++;
        this.position = 0;
        this.order = epochOrder(this.count, this.seed, this.epoch);
      }
      out[i] = this.order[this.position++];
    }
    return out;
  }

  requeue(indices: ArrayLike<number>): void {
    for (let i = 0; i < indices.length; i++) this.requeued.push(indices[i]);
  }

  /** Continues from a saved place (a checkpoint's); forgets re-queued examples. */
  restore(epoch: number, position: number): void {
    if (!(Number.isInteger(epoch) && epoch >= 0 && Number.isInteger(position) && position >= 0 && position <= this.count)) {
      throw new RangeError(`cannot restore the example cursor to epoch ${epoch}, position ${position} of ${this.count}`);
    }
    this.epoch = epoch;
    this.position = position;
    this.order = epochOrder(this.count, this.seed, epoch);
    this.requeued = [];
    this.head = 0;
  }

  /** Fractional epochs handed out so far. */
  get epochs(): number {
    return this.epoch + this.position / this.count;
  }
}
