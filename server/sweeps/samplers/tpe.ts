// Bayesian sampling: a small tree-structured Parzen estimator (TPE, Bergstra et al. 2011, as in
// hyperopt). The first trials are random; after them the finished trials are split into the
// best γ and the rest, each parameter gets a Parzen density over each group, l(x) and g(x), and
// the value kept is the one of K draws from l with the highest l(x)/g(x). Exact rules: docs/sweeps.md.
import { createRng, type Rng } from '../../../shared/rng.ts';
import { isBetter, type ParamDist, type ParamValue, type SweepSettings } from '../../../shared/sweep-spec.ts';
import type { Sampler, TrialHistory } from '../sampler.ts';
import { quantize, randomValues, trialSeed } from './random.ts';

/** Trials sampled at random before the model is used (and while fewer than 2 trials have a metric). */
export const TPE_STARTUP_TRIALS = 5;
/** Share of the observed trials that make the good group (at least one). */
export const TPE_GAMMA = 0.25;
/** Draws from l per parameter. */
export const TPE_CANDIDATES = 24;

/** A density over one parameter with a way to draw from it. */
interface Density {
  sample(rng: Rng): number;
  logPdf(x: number): number;
}

/** A parameter in the space TPE models it in: numbers on [lo, hi] (log scale for loguniform), or category indices. */
interface Space {
  kind: 'numeric' | 'categorical';
  lo: number;
  hi: number;
  /** A trial's value in this space (null: not one of this parameter's values). */
  encode(v: ParamValue): number | null;
  /** Back from this space to a trial's value. */
  decode(x: number): ParamValue;
}

function spaceOf(dist: ParamDist): Space {
  if ('choice' in dist) {
    const choices = dist.choice;
    return { kind: 'categorical', lo: 0, hi: choices.length, encode: (v) => (choices.includes(v) ? choices.indexOf(v) : null), decode: (x) => choices[x] };
  }
  const num = (v: ParamValue) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  if ('uniform' in dist) {
    const [lo, hi] = dist.uniform;
    return { kind: 'numeric', lo, hi, encode: num, decode: (x) => Math.min(Math.max(x, lo), hi) };
  }
  if ('loguniform' in dist) {
    const [lo, hi] = dist.loguniform;
    return { kind: 'numeric', lo: Math.log(lo), hi: Math.log(hi), encode: (v) => (typeof v === 'number' && v > 0 ? Math.log(v) : null), decode: (x) => Math.min(Math.max(Math.exp(x), lo), hi) };
  }
  if ('quniform' in dist) {
    const [lo, hi, q] = dist.quniform;
    return { kind: 'numeric', lo, hi, encode: num, decode: (x) => quantize(x, lo, hi, q) };
  }
  const [lo, hi] = dist.randint;
  // Integer v stands for [v, v + 1): modelled at its middle, drawn values floored.
  return { kind: 'numeric', lo, hi, encode: (v) => (typeof v === 'number' ? v + 0.5 : null), decode: (x) => Math.min(hi - 1, Math.max(lo, Math.floor(x))) };
}

/** Standard normal CDF (Abramowitz and Stegun 7.1.26 for erf: error below 1.5e-7). */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/**
 * Adaptive Parzen estimator on [lo, hi]: one Gaussian per observation, truncated to the bounds,
 * its width the larger gap to its neighbours (the bounds count as neighbours), clipped to
 * [range / min(100, n + 1), range]; plus a prior Gaussian at the middle with the range as width.
 * All components weigh the same.
 */
function parzen(observed: number[], lo: number, hi: number): Density {
  const range = hi - lo;
  const sorted = [...observed].sort((a, b) => a - b);
  const minSigma = range / Math.min(100, sorted.length + 1);
  const mus = [...sorted, (lo + hi) / 2];
  const sigmas = sorted.map((mu, i) => {
    const left = mu - (i > 0 ? sorted[i - 1] : lo);
    const right = (i + 1 < sorted.length ? sorted[i + 1] : hi) - mu;
    return Math.min(range, Math.max(minSigma, left, right));
  });
  sigmas.push(range);
  const mass = mus.map((mu, i) => Math.max(1e-12, normalCdf((hi - mu) / sigmas[i]) - normalCdf((lo - mu) / sigmas[i])));
  return {
    sample(rng) {
      const i = rng.int(mus.length);
      for (let tries = 0; tries < 100; tries++) {
        const x = mus[i] + sigmas[i] * rng.normal();
        if (x >= lo && x <= hi) return x;
      }
      return Math.min(hi, Math.max(lo, mus[i]));
    },
    logPdf(x) {
      let p = 0;
      for (let i = 0; i < mus.length; i++) {
        const z = (x - mus[i]) / sigmas[i];
        p += Math.exp(-0.5 * z * z) / (sigmas[i] * Math.sqrt(2 * Math.PI) * mass[i]);
      }
      return Math.log(p / mus.length + 1e-300);
    },
  };
}

/** Categorical estimator: each of k choices weighs its count plus one (the prior). */
function categorical(observed: number[], k: number): Density {
  const weights = new Array<number>(k).fill(1);
  for (const c of observed) weights[c] += 1;
  const total = weights.reduce((a, b) => a + b, 0);
  return {
    sample(rng) {
      let u = rng.float() * total;
      for (let c = 0; c < k; c++) {
        u -= weights[c];
        if (u < 0) return c;
      }
      return k - 1;
    },
    logPdf: (c) => Math.log(weights[c] / total),
  };
}

function estimator(space: Space, observed: number[]): Density {
  return space.kind === 'categorical' ? categorical(observed, space.hi) : parzen(observed, space.lo, space.hi);
}

/** The trials TPE learns from: finished (completed or stopped) with a metric, best first, ties by index. */
function observations(settings: SweepSettings, index: number, history: TrialHistory[]): TrialHistory[] {
  return history
    .filter((h) => h.index !== index && (h.state === 'completed' || h.state === 'stopped') && h.metric !== null && Number.isFinite(h.metric))
    .sort((a, b) => (isBetter(settings.goal, a.metric!, b.metric!) ? -1 : isBetter(settings.goal, b.metric!, a.metric!) ? 1 : a.index - b.index));
}

export function createTpeSampler(settings: SweepSettings): Sampler {
  const keys = Object.keys(settings.parameters);
  const spaces = Object.fromEntries(keys.map((k) => [k, spaceOf(settings.parameters[k])]));
  return {
    next(index, history) {
      const seen = observations(settings, index, history);
      if (index < TPE_STARTUP_TRIALS || seen.length < 2) return randomValues(settings, index);
      const nGood = Math.max(1, Math.ceil(TPE_GAMMA * seen.length));
      const good = seen.slice(0, nGood);
      const bad = seen.slice(nGood);
      const rng = createRng(trialSeed(settings.seed, index, 1));
      const values: Record<string, ParamValue> = {};
      for (const key of [...keys].sort()) {
        const space = spaces[key];
        const encoded = (group: TrialHistory[]) => group.map((h) => space.encode(h.values[key])).filter((x): x is number => x !== null);
        const l = estimator(space, encoded(good));
        const g = estimator(space, encoded(bad));
        let best = l.sample(rng);
        let bestScore = l.logPdf(best) - g.logPdf(best);
        for (let c = 1; c < TPE_CANDIDATES; c++) {
          const x = l.sample(rng);
          const s = l.logPdf(x) - g.logPdf(x);
          if (s > bestScore) {
            best = x;
            bestScore = s;
          }
        }
        values[key] = space.decode(best);
      }
      return Object.fromEntries(keys.map((k) => [k, values[k]]));
    },
  };
}
