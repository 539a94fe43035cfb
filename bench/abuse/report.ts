// The abuse benchmark's section of docs/benchmarks.md: one line per flood and the fuzz, with a
// pointer to docs/security.md, where the numbers are discussed. Reads bench/results/abuse.json.
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const fmt = (x: unknown, d = 0) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '–');

export function abuseSection(r: Json): string {
  const rows: Json[] = r.rows ?? [];
  const calm = rows.find((x) => x.row === 'calm') ?? {};
  const fuzz = rows.find((x) => x.row === 'fuzz');
  const floods = rows.filter((x) => String(x.row).startsWith('flood:'));
  const m = r.machine ?? {};
  return [
    '## Floods and fuzzing (`npm run bench -- abuse`)',
    '',
    `Measured ${String(r.date ?? '').slice(0, 10)} on ${m.cpus ?? '?'} × ${m.cpu ?? '?'}, a machine shared with other jobs (load average ${(calm.load ?? []).join(' ')} at the calm window). npm start's app in its own process with ${r.settings?.honest?.workers ?? '?'} simulated honest workers; each flood is one connection sending ${fmt(r.settings?.flood_per_sec)} messages a second (or ${fmt(r.settings?.sockets)} sockets from one address), its honest throughput (examples committed in a window of at least ${fmt((r.settings?.calm_seconds ?? 0))} s, each round's examples spread over its duration) compared with a calm run's: the median of the calm windows, one before each flood (${fmt(r.calm_run_sps)} examples/s here). What the rows mean, and what the defences are, is in [security.md](security.md#floods-and-fuzzing-npm-run-bench----abuse).`,
    '',
    '| flood | cut off after ms | honest examples/s vs a calm run | vs the calm window just before | /healthz p95 ms | goals met |',
    '| --- | ---: | ---: | ---: | ---: | --- |',
    ...floods.map((x) => `| ${String(x.row).slice(6)} | ${x.cut_off_ms === null ? 'never' : fmt(x.cut_off_ms)} | ${fmt(x.vs_calm, 2)} | ${fmt(x.vs_calm_before, 2)} | ${fmt(x.healthz_p95_ms, 1)} | ${x.met ? 'yes' : 'no'} |`),
    '',
    fuzz
      ? `Fuzz: ${fmt(fuzz.frame_cases)} frame cases (${fmt(fuzz.frames)} frames) and ${fmt(fuzz.requests)} request bodies in ${fmt(fuzz.seconds)} s; ${fuzz.crashed ? 'the coordinator crashed' : 'the coordinator stayed up'}, ${(fuzz.server_errors ?? []).length} answers 5xx, /healthz p95 ${fmt(fuzz.healthz_p95_ms, 1)} ms, ${fmt(fuzz.rounds_during)} rounds committed meanwhile. Memory after a full GC, from right before the fuzz to its end: RSS ${fmt(r.memory?.fuzz?.start?.rss_mib, 1)} → ${fmt(r.memory?.fuzz?.end?.rss_mib, 1)} MiB, heap ${fmt(r.memory?.fuzz?.start?.heap_used_mib, 1)} → ${fmt(r.memory?.fuzz?.end?.heap_used_mib, 1)} MiB (goal: within 10 %: ${r.memory?.fuzz?.met ? 'met' : 'not met'}); over the whole benchmark, floods included, from after the warm-up: RSS ${fmt(r.memory?.start?.rss_mib, 1)} → ${fmt(r.memory?.end?.rss_mib, 1)} MiB, heap ${fmt(r.memory?.start?.heap_used_mib, 1)} → ${fmt(r.memory?.end?.heap_used_mib, 1)} MiB.`
      : 'No fuzz in this run.',
  ].join('\n');
}
