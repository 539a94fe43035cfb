// `npx tsx bench/aggregation-cost.ts [--quick]`: what one round of each aggregation rule costs on
// the coordinator at scale: N results of P parameters folded (add) and combined (mean), wall time
// per round, and the result buffers the robust rules hold (one per result, N × P × 4 bytes). The
// learned norm bound is in front of every rule, as in a run (aggregationContext). Prints a Markdown
// table for docs/security.md "Robust aggregation". A micro-benchmark: no gradients, random results.
import { aggregationContext, createAccumulator } from '../server/accumulator.ts';
import { AGGREGATION_RULES, DEFAULT_AGGREGATION } from '../shared/run-spec.ts';

const quick = process.argv.includes('--quick');
const WORKERS = quick ? [16] : [16, 64, 256];
const PARAMS = quick ? [100_000] : [100_000, 1_000_000];
/** Distinct random results cycled through (the values do not change the cost). */
const SOURCES = 8;
/** Rounds timed per cell after one warm-up round (the median is reported); one for the largest cells. */
const ROUNDS = 3;
const LARGE = 2e7;

function randomResults(length: number): Float32Array[] {
  let s = 12345;
  const next = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  return Array.from({ length: SOURCES }, () => Float32Array.from({ length }, next));
}

const rows: string[] = [];
for (const p of PARAMS) {
  const sources = randomResults(p);
  for (const n of WORKERS) {
    const cells: string[] = [];
    for (const rule of AGGREGATION_RULES) {
      const context = aggregationContext({}, { ...DEFAULT_AGGREGATION, rule }, p);
      const times: number[] = [];
      // The warm-up round is also the run's first, which keeps copies until the norm bound is learned.
      const rounds = n * p <= LARGE ? ROUNDS : 1;
      for (let r = 0; r <= rounds; r++) {
        const started = performance.now();
        const acc = createAccumulator(rule, p, context);
        for (let i = 0; i < n; i++) acc.add(sources[i % SOURCES], 64, 1, `w${i}`);
        acc.mean();
        if (r > 0) times.push(performance.now() - started);
      }
      times.sort((a, b) => a - b);
      cells.push(`${Math.round(times[times.length >> 1])} ms`);
    }
    const robustMb = (n * p * 4) / 2 ** 20;
    rows.push(`| ${n} | ${p.toLocaleString('en')} | ${cells.join(' | ')} | ${(p * 4) / 2 ** 20 < 1 ? ((p * 4) / 2 ** 20).toFixed(1) : Math.round((p * 4) / 2 ** 20)} MB | ${robustMb >= 1024 ? `${(robustMb / 1024).toFixed(1)} GB` : `${Math.round(robustMb)} MB`} |`);
    console.error(rows[rows.length - 1]);
  }
}
console.log(`| workers | parameters | ${AGGREGATION_RULES.join(' | ')} | mean holds | robust rules hold |`);
console.log(`| --- | --- | ${AGGREGATION_RULES.map(() => '---').join(' | ')} | --- | --- |`);
for (const r of rows) console.log(r);
