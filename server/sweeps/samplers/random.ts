// Random sampling: each parameter drawn independently, from an RNG keyed by (seed, trial index),
// so trial i's values never depend on the others and a restarted sweep continues without repeats.
import { createRng, type Rng } from '../../../shared/rng.ts';
import { quniformRange, roundDecimal, type ParamDist, type ParamValue, type SweepSettings } from '../../../shared/sweep-spec.ts';
import type { Sampler } from '../sampler.ts';

/** A 32-bit seed for stream `stream` of trial `index` (murmur3's finaliser over the three). */
export function trialSeed(seed: number, index: number, stream = 0): number {
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b9) ^ Math.imul(stream + 1, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Rounds x to a multiple of q inside [lo, hi] (parseSweepSpec made sure one exists). */
export function quantize(x: number, lo: number, hi: number, q: number): number {
  const [first, last] = quniformRange(lo, hi, q)!;
  return Math.min(last, Math.max(first, roundDecimal(Math.round(x / q) * q)));
}

/** One draw from a distribution. */
export function sampleDist(dist: ParamDist, rng: Rng): ParamValue {
  if ('choice' in dist) return dist.choice[rng.int(dist.choice.length)];
  if ('uniform' in dist) return rng.uniform(dist.uniform[0], dist.uniform[1]);
  if ('loguniform' in dist) {
    const [lo, hi] = dist.loguniform;
    return Math.min(hi, Math.exp(rng.uniform(Math.log(lo), Math.log(hi))));
  }
  if ('quniform' in dist) {
    const [lo, hi, q] = dist.quniform;
    return quantize(rng.uniform(lo, hi), lo, hi, q);
  }
  const [lo, hi] = dist.randint;
  return lo + rng.int(hi - lo);
}

/** The values random sampling gives trial `index` (also TPE's first trials). */
export function randomValues(settings: SweepSettings, index: number): Record<string, ParamValue> {
  const rng = createRng(trialSeed(settings.seed, index));
  const values: Record<string, ParamValue> = {};
  // Sorted, so that the values do not hang on the order the spec lists the parameters in.
  for (const key of Object.keys(settings.parameters).sort()) values[key] = sampleDist(settings.parameters[key], rng);
  return Object.fromEntries(Object.keys(settings.parameters).map((k) => [k, values[k]]));
}

export function createRandomSampler(settings: SweepSettings): Sampler {
  return { next: (index) => randomValues(settings, index) };
}
