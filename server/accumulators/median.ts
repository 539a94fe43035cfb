// Coordinate-wise median: at every coordinate, the median of the votes' values (the mean of the
// two middle ones for an even count). Each vote counts once, whatever its examples (see trimmed-mean.ts).
import { coordinatewise, medianInPlace } from './order-statistics.ts';
import { RoundResults } from './round-results.ts';

/**
 * @example
 *   const acc = new CoordinateMedian(n, state);
 *   acc.addCoded(coding, bytes, examples, loss, workerId); // once per result
 *   const update = acc.mean();
 */
export class CoordinateMedian extends RoundResults {
  protected combine(): Float32Array {
    const n = this.votes.length;
    return coordinatewise(this.votes, new Float32Array(this.length), (a, at) => medianInPlace(a, at, n));
  }
}
