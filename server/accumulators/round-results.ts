// The round's individual results, which the robust rules need where the mean needs only their
// sum: one f32[N] buffer per vote, each result decoded once into it (no other copy), the buffers
// drawn from the run's pool and given back when the round is aggregated. A worker that sends
// several results in one round (a second task after finishing early) still has one vote: the
// example-weighted mean of its results, so returning fast does not buy a hostile worker votes.
// The rules themselves (what `combine` does with the votes) are in the files beside this one.
import { foldUpdate, type UpdateCoding } from '../../shared/update-codec.ts';
import type { Accumulator } from '../accumulator.ts';
import { medianOf } from './order-statistics.ts';
import type { AggregationState } from './aggregation-state.ts';

/** Adds scale · (one result) into `target`; throws with `target` untouched when the result is malformed. */
export type FoldInto = (target: Float32Array, scale: number) => void;

export abstract class RoundResults implements Accumulator {
  /** One f32[N] per vote. */
  protected readonly votes: Float32Array[] = [];
  /** Σ examples behind each vote. */
  protected readonly voteWeights: number[] = [];
  /** The example-weighted mean loss of each vote. */
  protected readonly voteLosses: number[] = [];
  /** Whether votes[i] is a pool buffer of this round (a worker's momentum belongs to the run). */
  private readonly owned: boolean[] = [];
  private readonly voteOf = new Map<string, number>();
  private aggregate: Float32Array | null = null;
  private closed = false;
  weight = 0;
  results = 0;

  constructor(
    readonly length: number,
    protected readonly state: AggregationState,
  ) {
    if (state.length !== length) throw new RangeError(`the run's aggregation state holds ${state.length} values, this accumulator ${length}`);
  }

  /** Folds one worker's mean result over `weight` examples times `clip` (f32[N]; the caller has checked it is finite). */
  add(values: Float32Array, weight: number, loss: number, workerId?: string, clip = 1): void {
    if (values.length !== this.length) throw new RangeError(`a result of ${values.length} values for a model of ${this.length}`);
    this.fold(weight, loss, workerId, (target, scale) => {
      const s = scale * clip;
      for (let i = 0; i < target.length; i++) target[i] += s * values[i];
    });
  }

  /** Decodes one coded result into its vote's buffer; malformed bytes throw UpdateCodecError with nothing changed. */
  addCoded(coding: UpdateCoding, bytes: Uint8Array, weight: number, loss: number, workerId?: string, clip = 1): void {
    this.fold(weight, loss, workerId, (target, scale) => foldUpdate(coding, bytes, this.length, scale * clip, target));
  }

  /** The votes combined by the rule; computed once, after which the round takes no more results. */
  mean(): Float32Array {
    if (this.aggregate) return this.aggregate;
    if (this.votes.length === 0) throw new Error('no results in this round');
    this.aggregate = this.combine();
    const used = this.owned.filter(Boolean).length;
    this.release();
    this.state.endRound(used);
    return this.aggregate;
  }

  /** The votes' losses under the rule (median unless a rule says otherwise): a worker cannot move it with one made-up loss. */
  meanLoss(): number {
    return this.voteLosses.length ? this.combineLosses(this.voteLosses) : NaN;
  }

  /** Gives the round's buffers back to the run's pool; for a round dropped without mean(). */
  release(): void {
    if (this.closed) return;
    this.closed = true;
    this.votes.forEach((v, i) => {
      if (this.owned[i]) this.state.give(v);
    });
    this.votes.length = 0;
  }

  /** The rule: f32[N] from this.votes (n ≥ 1 of them). */
  protected abstract combine(): Float32Array;

  protected combineLosses(losses: readonly number[]): number {
    return medianOf(losses);
  }

  /** Votes of this round. */
  get voters(): number {
    return this.voteLosses.length;
  }

  /**
   * Folds one result into its worker's vote of this round, or into a new vote in a pool buffer.
   * A rule that keeps its own per-worker buffers (centered clipping's momentum) overrides this.
   */
  protected fold(weight: number, loss: number, workerId: string | undefined, foldInto: FoldInto): void {
    this.checkOpen(weight);
    const at = workerId === undefined ? undefined : this.voteOf.get(workerId);
    if (at !== undefined) {
      // buf ← (w0·buf + w·result) / (w0 + w): fold first, so that a malformed result changes nothing.
      const buf = this.votes[at];
      const w0 = this.voteWeights[at];
      foldInto(buf, weight / w0);
      const keep = w0 / (w0 + weight);
      for (let i = 0; i < buf.length; i++) buf[i] *= keep;
      this.mergeIntoVote(at, weight, loss);
    } else {
      const buf = this.state.take();
      try {
        foldInto(buf, 1);
      } catch (err) {
        this.state.give(buf);
        throw err;
      }
      this.addVote(buf, true, weight, loss, workerId);
    }
    this.weight += weight;
    this.results++;
  }

  protected checkOpen(weight: number): void {
    if (this.closed) throw new Error('this round is already aggregated');
    if (!(Number.isFinite(weight) && weight > 0)) throw new RangeError(`a result's weight is its examples, a positive number; got ${weight}`);
  }

  /** The vote of `workerId` this round, if it has one. */
  protected voteIndexOf(workerId: string): number | undefined {
    return this.voteOf.get(workerId);
  }

  protected addVote(buf: Float32Array, owned: boolean, weight: number, loss: number, workerId: string | undefined): void {
    if (workerId !== undefined) this.voteOf.set(workerId, this.votes.length);
    this.votes.push(buf);
    this.owned.push(owned);
    this.voteWeights.push(weight);
    this.voteLosses.push(loss);
  }

  protected mergeIntoVote(at: number, weight: number, loss: number): void {
    const w0 = this.voteWeights[at];
    this.voteLosses[at] = (w0 * this.voteLosses[at] + weight * loss) / (w0 + weight);
    this.voteWeights[at] = w0 + weight;
  }
}
