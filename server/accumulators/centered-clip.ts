// Centered clipping (Karimireddy, He, Jaggi, ICML 2021; ALGORITHMS.md): starting from the previous
// round's aggregate v, L times v ← v + (1/n)·Σ_i (x_i − v)·min(1, τ/‖x_i − v‖) over the round's
// votes x_i. With worker momentum β > 0 the votes are momenta the coordinator keeps by worker id,
// m_i ← β·m_i + (1 − β)·g_i (from zero), bias-corrected as Adam's first moment is: the vote is
// m_i / (1 − β^k) after k results, so a new worker's first vote is its result, not a tenth of it
// (without it, a run's first ten rounds step at a fraction of their size). The corrected value is
// what the buffer holds, updated in place as each result arrives: the momentum buffer is the
// worker's one buffer, so momentum costs no memory beyond a buffer per worker.
// Rules that need no state across rounds are in the files beside this one.
import { medianInPlace } from './order-statistics.ts';
import type { AggregationState } from './aggregation-state.ts';
import { RoundResults, type FoldInto } from './round-results.ts';

/**
 * τ for `radius: auto`, as a multiple of the median distance of the votes to v, taken afresh at
 * each iteration. At 1, a hostile vote (fewer than half are) moves v by at most what a typical
 * honest one does, while honest votes, whose distances to v are all close to that median in many
 * dimensions, are barely shortened; and τ follows the distance when the gradient drifts, where a
 * fixed τ would let v lag behind by up to τ a round.
 */
export const AUTO_RADIUS_MULTIPLE = 1;

/** Coordinates per block of the clipping sum: a few kB of partial sums stay in the cache. */
const BLOCK = 1024;

export interface CenteredClipOptions {
  /** τ, or 'auto' (AUTO_RADIUS_MULTIPLE × the median distance to v). */
  radius: number | 'auto';
  /** L: clipping iterations per round. */
  iterations: number;
  /** β of each worker's momentum; 0 clips the results themselves. */
  workerMomentum: number;
}

/** What the last iteration of a round did, for logs and tests. */
export interface ClipStats {
  radius: number;
  /** Votes further than τ from v, which were shortened to τ. */
  clipped: number;
}

/**
 * @example
 *   const state = new AggregationState(n); // one per run, kept across rounds
 *   const acc = new CenteredClip(n, state, { radius: 'auto', iterations: 1, workerMomentum: 0.9 });
 *   acc.addCoded(coding, bytes, examples, loss, workerId); // once per result
 *   const update = acc.mean(); // also the next round's starting point
 */
export class CenteredClip extends RoundResults {
  stats: ClipStats | null = null;

  constructor(
    length: number,
    state: AggregationState,
    readonly options: CenteredClipOptions,
  ) {
    super(length, state);
    const { radius, iterations, workerMomentum } = options;
    if (!(radius === 'auto' || (Number.isFinite(radius) && radius > 0))) throw new RangeError(`radius must be a number > 0 or 'auto', got ${radius}`);
    if (!(Number.isInteger(iterations) && iterations >= 1)) throw new RangeError(`iterations must be an integer >= 1, got ${iterations}`);
    if (!(workerMomentum >= 0 && workerMomentum < 1)) throw new RangeError(`workerMomentum must be in [0, 1), got ${workerMomentum}`);
  }

  /** With momentum, a result steps its worker's momentum, which is the worker's vote of the round. */
  protected override fold(weight: number, loss: number, workerId: string | undefined, foldInto: FoldInto): void {
    const beta = this.options.workerMomentum;
    if (beta === 0) return super.fold(weight, loss, workerId, foldInto);
    this.checkOpen(weight);
    if (workerId === undefined) throw new Error('centered clipping with worker momentum needs the id of the worker of each result');
    let m = this.state.momentumOf(workerId);
    const k = (m ? this.state.momentumSteps(workerId) : 0) + 1;
    if (!m) {
      // k = 1: the corrected momentum is the result itself.
      const buf = this.state.take();
      try {
        foldInto(buf, 1);
      } catch (err) {
        this.state.give(buf);
        throw err;
      }
      m = buf;
    } else {
      // u_k = a·u_{k−1} + b·g with u = m / (1 − β^k): a = β(1 − β^(k−1)) / (1 − β^k), b = (1 − β) / (1 − β^k);
      // a·(u + (b/a)·g), folding first so that a malformed result changes nothing.
      const a = (beta * (1 - beta ** (k - 1))) / (1 - beta ** k);
      const b = (1 - beta) / (1 - beta ** k);
      foldInto(m, b / a);
      for (let i = 0; i < m.length; i++) m[i] *= a;
    }
    // A second result of the same round is one more step of the worker's momentum, still one vote.
    this.state.setMomentum(workerId, m, k);
    const at = this.voteIndexOf(workerId);
    if (at === undefined) this.addVote(m, false, weight, loss, workerId);
    else this.mergeIntoVote(at, weight, loss);
    this.weight += weight;
    this.results++;
  }

  protected combine(): Float32Array {
    const { radius, iterations } = this.options;
    const votes = this.votes;
    const n = votes.length;
    const length = this.length;
    const v = this.state.center ?? new Float32Array(length);
    const dist = new Float64Array(n);
    const scale = new Float64Array(n);
    const acc = new Float64Array(Math.min(BLOCK, length));
    for (let it = 0; it < iterations; it++) {
      for (let i = 0; i < n; i++) {
        const x = votes[i];
        let sq = 0;
        for (let j = 0; j < length; j++) {
          const d = x[j] - v[j];
          sq += d * d;
        }
        dist[i] = Math.sqrt(sq);
      }
      const tau = radius === 'auto' ? AUTO_RADIUS_MULTIPLE * medianInPlace(dist.slice(), 0, n) : radius;
      let clipped = 0;
      for (let i = 0; i < n; i++) {
        const far = dist[i] > tau;
        scale[i] = far ? tau / dist[i] : 1;
        if (far) clipped++;
      }
      this.stats = { radius: tau, clipped };
      // v ← v + (1/n)·Σ_i scale_i·(x_i − v), a block of coordinates at a time (v read at its old value).
      for (let j0 = 0; j0 < length; j0 += BLOCK) {
        const width = Math.min(BLOCK, length - j0);
        acc.fill(0);
        for (let i = 0; i < n; i++) {
          const x = votes[i];
          const s = scale[i];
          for (let c = 0; c < width; c++) acc[c] += s * (x[j0 + c] - v[j0 + c]);
        }
        for (let c = 0; c < width; c++) v[j0 + c] += acc[c] / n;
      }
    }
    this.state.center = v;
    return v.slice();
  }
}
