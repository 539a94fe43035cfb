// Coordinate-wise trimmed mean: at every coordinate, the mean of the votes' values without the
// ⌊trim·n⌋ smallest and ⌊trim·n⌋ largest. Each vote counts once, whatever its examples: task sizes
// follow measured speed, and a hostile worker that answers at once would otherwise weigh most.
import { coordinatewise, trimmedMeanInPlace } from './order-statistics.ts';
import type { AggregationState } from './aggregation-state.ts';
import { RoundResults } from './round-results.ts';

/** Votes cut from each end out of n (so that at least one remains, 2·cut < n, for trim < 0.5). */
export function trimmedCount(n: number, trim: number): number {
  return Math.floor(trim * n);
}

/**
 * @example
 *   const acc = new TrimmedMean(n, state, 0.2);
 *   acc.addCoded(coding, bytes, examples, loss, workerId); // once per result
 *   const update = acc.mean();
 */
export class TrimmedMean extends RoundResults {
  constructor(
    length: number,
    state: AggregationState,
    /** Share of the votes cut from each end, in [0, 0.5). */
    readonly trim: number,
  ) {
    super(length, state);
    if (!(trim >= 0 && trim < 0.5)) throw new RangeError(`trim must be in [0, 0.5), got ${trim}`);
  }

  protected combine(): Float32Array {
    const n = this.votes.length;
    const cut = trimmedCount(n, this.trim);
    return coordinatewise(this.votes, new Float32Array(this.length), (a, at) => trimmedMeanInPlace(a, at, n, cut));
  }

  protected override combineLosses(losses: readonly number[]): number {
    const a = Float64Array.from(losses);
    return trimmedMeanInPlace(a, 0, a.length, trimmedCount(a.length, this.trim));
  }
}
