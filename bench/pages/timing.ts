// Timing for the benchmark pages: medians, and timers sampled interleaved. No tfjs here, so a
// page that brings only tfjs-core can use it.

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Something a benchmark times: `run(inner)` does the work `inner` times over. */
export interface Timer {
  run: (inner: number) => Promise<void>;
}

/**
 * Median seconds per run of each timer, sampled interleaved (sample i of each in turn) so machine
 * noise hits all alike; each timer repeats its work enough times (up to `maxInner`) to last about `targetS`.
 */
export async function timeInterleaved(runners: Timer[], samples: number, targetS: number, maxInner: number): Promise<number[]> {
  const inner: number[] = [];
  for (const r of runners) {
    await r.run(1); // warm-up: compile, first-touch
    const t0 = performance.now();
    await r.run(1);
    const once = (performance.now() - t0) / 1000;
    inner.push(Math.max(1, Math.min(maxInner, Math.round(targetS / Math.max(once, 1e-5)))));
  }
  const times: number[][] = runners.map(() => []);
  for (let s = 0; s < samples; s++) {
    for (let i = 0; i < runners.length; i++) {
      const t0 = performance.now();
      await runners[i].run(inner[i]);
      times[i].push((performance.now() - t0) / 1000 / inner[i]);
    }
  }
  return times.map(median);
}
