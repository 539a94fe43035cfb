// How a round's results become one update: the accumulator interface and its registry by name.
// 'mean' (RoundSum, aggregator.ts) folds results into one sum; the robust rules (accumulators/)
// keep each worker's result and combine them at the end, with what they keep across rounds in the
// run's AggregationState, handed to the factory in the context.
import { DEFAULT_AGGREGATION, type Aggregation } from '../shared/run-spec.ts';
import type { UpdateCoding } from '../shared/update-codec.ts';
import { RoundSum } from './aggregator.ts';
import { AggregationState } from './accumulators/aggregation-state.ts';
import { CenteredClip } from './accumulators/centered-clip.ts';
import { NormBound, NormClipped } from './accumulators/norm-bound.ts';
import { CoordinateMedian } from './accumulators/median.ts';
import { TrimmedMean } from './accumulators/trimmed-mean.ts';

export interface Accumulator {
  /**
   * Folds one worker's mean result over `weight` examples (the accumulator may not keep `values`).
   * `workerId` (stable across rounds) gives the robust rules one vote per worker and its momentum.
   */
  add(values: Float32Array, weight: number, loss: number, workerId?: string, scale?: number): void;
  /**
   * Folds one worker's coded mean result, decoding it in place (into the sum, or into the
   * result's one buffer; no decoded copy). Throws UpdateCodecError, with the accumulator
   * untouched, when the bytes are malformed. `scale` (default 1) multiplies the result's values:
   * the norm bound's clipping.
   */
  addCoded(coding: UpdateCoding, bytes: Uint8Array, weight: number, loss: number, workerId?: string, scale?: number): void;
  /** Σ weights folded. */
  readonly weight: number;
  /** Results folded. */
  readonly results: number;
  /** The update to apply: for the mean, the example-weighted mean of the results; else the rule's aggregate. */
  mean(): Float32Array;
  meanLoss(): number;
  /** Hands buffers back to the run's pool when the round is dropped without mean() (the robust rules). */
  release?(): void;
  /** The largest result norm the round accepts, given the coordinator's fixed bound (a learned bound can only lower it). */
  maxNorm?(fixed: number): number;
}

/** What a factory gets beyond the length: the run's aggregation settings and its state across rounds. */
export interface AccumulatorContext {
  aggregation: Aggregation;
  state: AggregationState;
  /** The run's learned norm bound: every rule's results are clipped to it (norm-bound.ts). */
  normBound?: NormBound;
}

export type AccumulatorFactory = (length: number, context?: AccumulatorContext) => Accumulator;

const registry = new Map<string, AccumulatorFactory>();

export function registerAccumulator(name: string, make: AccumulatorFactory): void {
  registry.set(name, make);
}

/**
 * @example const acc = createAccumulator('mean', run.paramCount);
 * @example const acc = createAccumulator(run.spec.aggregation.rule, run.paramCount, aggregationContext(run, run.spec.aggregation, run.paramCount));
 */
export function createAccumulator(name: string, length: number, context?: AccumulatorContext): Accumulator {
  const make = registry.get(name);
  if (!make) throw new Error(`no accumulator named "${name}"; known: ${[...registry.keys()].join(', ')}`);
  const acc = make(length, context);
  return context?.normBound ? new NormClipped(acc, context.normBound, length) : acc;
}

const contexts = new WeakMap<object, AccumulatorContext>();

/**
 * The context of `owner`'s rounds (a run), kept as long as the owner lives. It starts over (no
 * centre, no momenta) when the aggregation settings or the length change; the norm bound, learned
 * from the results whatever the rule, starts over only with the length.
 */
export function aggregationContext(owner: object, aggregation: Aggregation, length: number): AccumulatorContext {
  const known = contexts.get(owner);
  if (known && known.state.length === length && sameAggregation(known.aggregation, aggregation)) return known;
  // The norm bound is learned from the run's results whatever the rule: a change of rule keeps it.
  const context = { aggregation: { ...aggregation }, state: new AggregationState(length), normBound: known && known.state.length === length ? known.normBound! : new NormBound() };
  contexts.set(owner, context);
  return context;
}

function sameAggregation(a: Aggregation, b: Aggregation): boolean {
  return a.rule === b.rule && a.trim === b.trim && a.radius === b.radius && a.iterations === b.iterations && a.workerMomentum === b.workerMomentum;
}

/** The context's state, or a fresh one for a rule that keeps nothing across rounds. */
function stateOf(length: number, context: AccumulatorContext | undefined): AggregationState {
  return context?.state ?? new AggregationState(length);
}

registerAccumulator('mean', (length) => new RoundSum(length));
registerAccumulator('trimmed-mean', (length, context) => new TrimmedMean(length, stateOf(length, context), (context?.aggregation ?? DEFAULT_AGGREGATION).trim));
registerAccumulator('median', (length, context) => new CoordinateMedian(length, stateOf(length, context)));
registerAccumulator('centered-clip', (length, context) => {
  // Its centre and the workers' momenta live across rounds: without the run's state it would start from zero every round.
  if (!context) throw new Error('centered-clip needs the run\'s context (aggregationContext), which keeps its centre and momenta across rounds');
  return new CenteredClip(length, context.state, context.aggregation);
});
