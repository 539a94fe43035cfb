// The accuracy section of docs/benchmarks.md, from bench/results/accuracy.json (written by
// bench/accuracy.node.ts): each example model's held-out figure after the numbers of examples
// PyTorch's runs of the same recipe were measured at, and whether its goal is met.
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const fmt = (v: unknown, digits: number): string => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '–');

export function accuracySection(r: Json): string {
  const m = r.machine ?? {};
  const out = [
    '## accuracy (`npm run bench -- accuracy`)',
    '',
    `Measured ${String(r.date ?? '').slice(0, 10)} on ${m.cpus ?? '?'} × ${m.cpu ?? '?'} (${m.platform}/${m.arch}, ${m.memory_gb} GB). ` +
      'Each example spec as it is in `examples/` (speed-sized rounds, learning rate following the batch), trained by real workers: child processes running the CPU backend a tab uses, over the real protocol and sockets. ' +
      'Parameters are copied when a commit crosses each mark and evaluated afterwards on the whole held-out split (10,000 test images; all 119,032 validation characters of Moby-Dick). ' +
      'PyTorch: 1.13 on this kind of machine, the same architecture, Adam 1e-3 with batches of 64 (CNNs) and AdamW 3e-3 with batches of 32 windows of 64 characters (transformer).',
  ];
  for (const x of (r.models ?? []) as Json[]) {
    const digits = x.metric === 'test accuracy' ? 4 : 3;
    out.push(
      '',
      `**${x.model}** (\`${x.spec}\`, ${x.workers} workers, ${fmt(x.seconds, 0)} s): ${x.metric}. Goal: ${x.goal}: **${x.met ? 'met' : 'not met'}**.`,
      '',
      '| after | examples | rounds | seconds | crowdtrain | PyTorch |',
      '| --- | ---: | ---: | ---: | ---: | ---: |',
      ...((x.rows ?? []) as Json[]).map((row) => `| ${row.mark} | ${row.examples.toLocaleString('en-US')} | ${row.rounds} | ${fmt(row.seconds, 0)} | ${fmt(row.ours, digits)} | ${fmt(row.pytorch, digits)} |`),
    );
  }
  return out.join('\n');
}
