// Seeded pseudo-random numbers (splitmix32 stream): the one source of randomness for
// initialisation, data order and test inputs, so that every run and test replays exactly.

export interface Rng {
  /** Uniform 32-bit unsigned integer. */
  u32(): number;
  /** Uniform in [0, 1). */
  float(): number;
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** Standard normal (Box-Muller). */
  normal(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Fisher-Yates shuffle, in place; returns its argument. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T;
}

/** @example const rng = createRng(42); rng.float(); */
export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const u32 = (): number => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  const float = (): number => u32() / 4294967296;
  const rng: Rng = {
    u32,
    float,
    uniform: (lo, hi) => lo + (hi - lo) * float(),
    normal: () => {
      const u1 = 1 - float(); // (0, 1]: log is finite
      const u2 = float();
      return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    },
    int: (n) => Math.floor(float() * n),
    shuffle: (a) => {
      for (let i = a.length - 1; i > 0; i--) {
        const j = Math.floor(float() * (i + 1));
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
      }
      return a;
    },
  };
  return rng;
}

/** Float32Array of n values uniform in [lo, hi). */
export function randomUniform(rng: Rng, n: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.uniform(lo, hi);
  return out;
}
