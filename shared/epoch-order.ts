// The order in which training examples are visited: one seeded permutation per epoch, the same
// in a tab, in a worker and on the coordinator.
import { createRng } from './rng.ts';

/** Example order of one epoch: a seeded permutation of [0, n). */
export function epochOrder(n: number, seed: number, epoch: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return createRng((Math.imul(seed, 1_000_003) + epoch) >>> 0).shuffle(order);
}

/** Consecutive examples of one epoch's order: positions [start, start + count) of epochOrder(n, seed, epoch). */
export interface OrderSpan {
  epoch: number;
  start: number;
  count: number;
}

/** What ExampleCursor.take hands out: the examples, and how to name them compactly. */
export interface TakenExamples {
  indices: Uint32Array;
  /** How many of `indices`, first, were re-queued (they have no place in an epoch's order). */
  loose: number;
  /** The rest, as spans of the epochs' orders. */
  spans: OrderSpan[];
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
    return this.take(n).indices;
  }

  /** The next `n` examples: re-queued ones first, then the epochs' orders (spans of them). */
  take(n: number): TakenExamples {
    const out = new Uint32Array(n);
    const spans: OrderSpan[] = [];
    let loose = 0;
    for (let i = 0; i < n; i++) {
      if (this.head < this.requeued.length) {
        out[i] = this.requeued[this.head++];
        loose++;
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
      const last = spans.at(-1);
      if (last && last.epoch === this.epoch && last.start + last.count === this.position) last.count++;
      else spans.push({ epoch: this.epoch, start: this.position, count: 1 });
      out[i] = this.order[this.position++];
    }
    return { indices: out, loose, spans };
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

/**
 * A task's examples from their compact form: the `loose` indices as sent, then each span of the
 * seeded epoch orders of `examples` training examples (the last two epochs' orders are kept).
 * Throws RangeError when a span is outside its epoch.
 * @example expandOrder({ examples: 60000, seed: 1, spans: [{ epoch: 0, start: 128, count: 64 }] }, new Uint32Array(0))
 */
export function expandOrder(order: { examples: number; seed: number; spans: OrderSpan[] }, loose: Uint32Array): Uint32Array {
  const { examples, seed, spans } = order;
  let total = loose.length;
  for (const s of spans) {
    if (!(Number.isInteger(s.epoch) && s.epoch >= 0 && Number.isInteger(s.start) && s.start >= 0 && Number.isInteger(s.count) && s.count >= 0 && s.start + s.count <= examples)) {
      throw new RangeError(`span ${JSON.stringify(s)} is outside an epoch of ${examples} examples`);
    }
    total += s.count;
  }
  const out = new Uint32Array(total);
  out.set(loose);
  let at = loose.length;
  for (const s of spans) {
    out.set(cachedOrder(examples, seed, s.epoch).subarray(s.start, s.start + s.count), at);
    at += s.count;
  }
  return out;
}

const orders: { key: string; order: Uint32Array }[] = [];

function cachedOrder(n: number, seed: number, epoch: number): Uint32Array {
  const key = `${n}:${seed}:${epoch}`;
  let hit = orders.find((o) => o.key === key);
  if (!hit) {
    hit = { key, order: epochOrder(n, seed, epoch) };
    orders.push(hit);
    if (orders.length > 2) orders.shift();
  }
  return hit.order;
}

/**
 * The examples of a task as the worker computes them: the binary's indices, then the spans of
 * `meta.order` if it has one. Throws RangeError when they do not add up to `meta.count`.
 */
export function taskExamples(meta: { count: number; order?: { examples: number; seed: number; spans: OrderSpan[] } }, binary: Uint32Array): Uint32Array {
  const indices = meta.order ? expandOrder(meta.order, binary) : binary;
  if (indices.length !== meta.count) throw new RangeError(`the task names ${indices.length} examples, its count is ${meta.count}`);
  return indices;
}
