// How a round's results become one update: the accumulator interface and its registry by name.
// The mean (RoundSum, aggregator.ts) is the one rule today; robust rules register beside it.
import type { UpdateCoding } from '../shared/update-codec.ts';
import { RoundSum } from './aggregator.ts';

export interface Accumulator {
  /** Folds one worker's mean result over `weight` examples (the accumulator may not keep `values`). */
  add(values: Float32Array, weight: number, loss: number): void;
  /**
   * Folds one worker's coded mean result, decoding it in place into the sum (no decoded copy).
   * Throws UpdateCodecError, with the sum untouched, when the bytes are malformed.
   */
  addCoded(coding: UpdateCoding, bytes: Uint8Array, weight: number, loss: number): void;
  /** Σ weights folded. */
  readonly weight: number;
  /** Results folded. */
  readonly results: number;
  /** The update to apply: for the mean, the example-weighted mean of the results. */
  mean(): Float32Array;
  meanLoss(): number;
}

export type AccumulatorFactory = (length: number) => Accumulator;

const registry = new Map<string, AccumulatorFactory>();

export function registerAccumulator(name: string, make: AccumulatorFactory): void {
  registry.set(name, make);
}

/** @example const acc = createAccumulator('mean', run.paramCount); */
export function createAccumulator(name: string, length: number): Accumulator {
  const make = registry.get(name);
  if (!make) throw new Error(`no accumulator named "${name}"; known: ${[...registry.keys()].join(', ')}`);
  return make(length);
}

registerAccumulator('mean', (length) => new RoundSum(length));
