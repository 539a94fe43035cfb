// The "Joining" section of docs/benchmarks.md, from bench/results/join.json (bench/join.node.ts).
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const s = (ms: unknown) => (typeof ms === 'number' && Number.isFinite(ms) ? (ms / 1000).toFixed(2) : '–');

export function joinSection(r: Json): string {
  const m = r.machine ?? {};
  const steps: string[] = r.steps ?? [];
  const lines = [
    '## Joining (`npm run bench -- join`)',
    '',
    `Seconds from opening the coordinator's URL in Chromium to the tab's first accepted gradient (npm start's default run, the MNIST MLP), median of ${r.rows?.[0]?.cold?.runs_ms?.length ?? '?'} visits; cold: a fresh browser profile each time, warm: the profile of an earlier visit (its HTTP cache and its remembered backend). The tab presses Contribute as soon as the page takes the click. Goals: ≤ ${s(r.goal?.warm_ms)} s warm, ≤ ${s(r.goal?.cold_ms)} s cold. Measured ${String(r.date ?? '').slice(0, 10)} on ${m.cpus ?? '?'} × ${m.cpu ?? '?'}, Debian's Chromium, WebGPU on SwiftShader${r.load_average ? `, load average ${r.load_average} at the start (other jobs shared the machine)` : ''}.`,
    '',
    '| case | profile | first accepted gradient, s (median) | each visit, s | backend |',
    '|---|---|---|---|---|',
  ];
  for (const row of r.rows ?? []) {
    for (const k of ['cold', 'warm']) {
      const v = row[k];
      lines.push(`| ${row.case} | ${k} | ${s(v.median_ms)} | ${(v.runs_ms ?? []).map(s).join(', ')} | ${v.backend} |`);
    }
  }
  lines.push('', 'Where the time goes (median seconds from opening the URL to each step the page marks):', '', `| case | profile | ${steps.join(' | ')} |`, `|---|---|${steps.map(() => '---').join('|')}|`);
  for (const row of r.rows ?? []) {
    for (const k of ['cold', 'warm']) lines.push(`| ${row.case} | ${k} | ${steps.map((st) => s(row[k].steps_median_ms?.[st])).join(' | ')} |`);
  }
  lines.push(
    '',
    'Before the tab started on the CPU at once, a cold visit spent 2.3-4.2 s between knowing the run and choosing a backend (timing WebGPU, whose pipelines SwiftShader compiles slowly, against the CPU), and took 4.0-5.9 s in all on this machine. Now WebGPU is timed in the background while the tab computes, and the winner is remembered for the next visit.',
  );
  return lines.join('\n');
}
