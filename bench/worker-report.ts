// The "Headless worker" section of docs/benchmarks.md, from bench/results/worker.json (bench/worker.node.ts).
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const f = (v: unknown, d = 0) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '–');

export function workerSection(r: Json): string {
  const m = r.machine ?? {};
  const node = r.node ?? {};
  const page = r.page ?? {};
  const models: string[] = [...new Set<string>([...(node.webgpu ?? []), ...(node.cpu ?? [])].map((x: Json) => x.model))];
  const eps = (side: Json, model: string) => (side.webgpu ?? []).find((x: Json) => x.model === model)?.examples_per_sec;
  const lines = [
    '## Headless worker (`npm run bench -- worker`)',
    '',
    `\`crowdtrain worker\` in Node (WebGPU through Dawn, the CPU on worker threads) beside a Chromium tab (its WebGPU, the CPU on Web Workers), on the same machine and adapter, running the same probe (bench/worker-probe.ts): the matmul kernel on ${node.matmul?.size ?? '?'}³, gradients of the MNIST MLP (784-128-10, batch 64) and a small CNN (batch 32) on random inputs, medians of 5 windows. Measured ${String(r.date ?? '').slice(0, 10)} on ${m.cpus ?? '?'} × ${m.cpu ?? '?'}, Chromium ${r.browser ?? '?'}, adapters: Node **${node.adapter ?? node.no_webgpu ?? '?'}**, page **${page.adapter ?? page.no_webgpu ?? '?'}**${r.load_average ? `; load average ${r.load_average} at the start (other jobs shared the two cores, which the thread rows feel first)` : ''}.`,
    '',
    '| | Node (Dawn) | page (Chromium) | Node ÷ page |',
    '|---|---|---|---|',
    `| matmul GFLOP/s | ${f(node.matmul?.gflops, 2)} | ${f(page.matmul?.gflops, 2)} | ${node.matmul && page.matmul ? (node.matmul.gflops / page.matmul.gflops).toFixed(2) : '–'} |`,
    ...models.map((mo) => `| WebGPU ${mo} examples/s | ${f(eps(node, mo))} | ${f(eps(page, mo))} | ${eps(node, mo) && eps(page, mo) ? (eps(node, mo) / eps(page, mo)).toFixed(2) : '–'} |`),
    '',
    '| CPU examples/s | threads | Node (worker threads) | page (Web Workers) |',
    '|---|---|---|---|',
  ];
  for (const mo of models) {
    const threads = [...new Set<number>((node.cpu ?? []).filter((x: Json) => x.model === mo).map((x: Json) => x.threads))];
    for (const t of threads) {
      const n = (node.cpu ?? []).find((x: Json) => x.model === mo && x.threads === t)?.examples_per_sec;
      const p = (page.cpu ?? []).find((x: Json) => x.model === mo && x.threads === t)?.examples_per_sec;
      lines.push(`| ${mo} | ${t} | ${f(n)} | ${f(p)} |`);
    }
  }
  lines.push('', 'No machine with a real GPU was at hand for these rows: on SwiftShader WebGPU runs on the same CPU cores, so it says nothing of a GPU\'s speed. Run the benchmark where `crowdtrain worker` sees a GPU (Dawn prints the adapter) to get the card\'s GFLOP/s.');
  return lines.join('\n');
}
