// Writes docs/benchmarks.md from bench/results/*.json: one table per benchmark, with the
// machine and the adapter each was measured on. Run by bench/run.ts after every benchmark.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { abuseSection } from './abuse/report.ts';
import { accuracySection } from './accuracy-report.ts';
import { commCheckSection, commSection } from './comm-report.ts';
import { evalLoopSection } from './eval-loop-report.ts';
import { joinSection } from './join-report.ts';
import { workerSection } from './worker-report.ts';
import { timeToTargetSection } from './time-to-target-report.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const fmt = (v: unknown, digits = 2): string => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '–');
const ratio = (a: unknown, b: unknown): string => (typeof a === 'number' && typeof b === 'number' && b > 0 ? `${(a / b).toFixed(2)}×` : '–');

function where(r: Json): string {
  const m = r.machine ?? {};
  return `Measured ${String(r.date ?? '').slice(0, 10)} on ${m.cpus ?? '?'} × ${m.cpu ?? '?'} (${m.platform}/${m.arch}, ${m.memory_gb} GB), ${r.browser ? `Chromium ${r.browser}` : ''}, adapter **${r.adapter ?? '?'}**, browser default flags.`;
}

function matmul(r: Json): string {
  const rows = (r.rows as Json[]).map(
    (x) => `| ${x.m}×${x.k} · ${x.k}×${x.n}${x.layout ? ` (${x.layout})` : ''} | ${x.variant ?? ''} | ${fmt(x.ours_gflops)} | ${fmt(x.tfjs_gflops)} | ${ratio(x.ours_gflops, x.tfjs_gflops)} |`,
  );
  return [
    '## matmul (`npm run bench -- matmul`)',
    '',
    where(r),
    'Median GFLOP/s (2·m·n·k / time) of our kernel and of `tf.matMul` on `@tensorflow/tfjs-backend-webgpu`, in the same page, interleaved.',
    '',
    '| shape | our variant | ours GFLOP/s | tfjs-webgpu GFLOP/s | ours / tfjs |',
    '| --- | --- | ---: | ---: | ---: |',
    ...rows,
  ].join('\n');
}

function train(r: Json): string {
  return [
    '## train (`npm run bench -- train`)',
    '',
    where(r),
    `One-tab training of MLP ${r.model ?? '784-128-10'} on MNIST, batch ${r.batch ?? 64}, Adam; median samples/s over ${r.steps ?? '?'} timed steps after warm-up, same page for all three.`,
    '',
    '| trainer | samples/s | ours / it |',
    '| --- | ---: | ---: |',
    `| crowdtrain executor (WebGPU) | ${fmt(r.ours_sps, 0)} | 1.00× |`,
    `| tfjs tf.layers, webgpu backend | ${fmt(r.tfjs_webgpu_sps, 0)} | ${ratio(r.ours_sps, r.tfjs_webgpu_sps)} |`,
    `| tfjs tf.layers, cpu backend | ${fmt(r.tfjs_cpu_sps, 0)} | ${ratio(r.ours_sps, r.tfjs_cpu_sps)} |`,
  ].join('\n');
}

function cpu(r: Json): string {
  return [
    '## cpu (`npm run bench -- cpu`)',
    '',
    where(r),
    `Training MLP ${r.model ?? '784-128-10'} on MNIST without WebGPU, batch ${r.batch ?? 64}, Adam 1e-3; median samples/s over ${r.steps ?? '?'} timed steps after warm-up, same page, interleaved (${r.cores ?? '?'} logical cores).`,
    'The dense row is the same backend with its sparse kernels off: MNIST pixels are about 80 % zeros, which the default path skips.',
    '',
    '| trainer | samples/s | ours / it |',
    '| --- | ---: | ---: |',
    `| crowdtrain cpu backend (CPU layer executor) | ${fmt(r.ours_cpu_sps, 0)} | 1.00× |`,
    `| crowdtrain cpu backend, dense kernels only | ${fmt(r.ours_cpu_dense_sps, 0)} | ${ratio(r.ours_cpu_sps, r.ours_cpu_dense_sps)} |`,
    `| tfjs tf.layers, cpu backend | ${fmt(r.tfjs_cpu_sps, 0)} | ${ratio(r.ours_cpu_sps, r.tfjs_cpu_sps)} |`,
  ].join('\n');
}

function models(r: Json): string {
  const rows = (r.rows ?? []) as Json[];
  const trainRows = rows.filter((x) => x.unit !== 'GFLOP/s');
  const convRows = rows.filter((x) => x.unit === 'GFLOP/s');
  const faster = (x: Json) => Math.max(Number(x.tfjs_webgpu) || 0, Number(x.tfjs_cpu) || 0);
  return [
    "## models (`npm run bench -- models --query 'profile=1&experiments=1'`)",
    '',
    where(r),
    `Medians of ${r.reps ?? '?'} interleaved samples (a sample is one step or more, repeated to last about ${r.sample_s ?? '?'} s; a quarter of that for the conv passes) per trainer, all in one page (${r.cores ?? '?'} logical cores). ` +
      'A timed training step is what a worker does for a task: the batch in, forward, softmax cross-entropy, backward, and the loss and every parameter gradient back in JavaScript as numbers (tfjs: `tf.variableGrads`, the gradients concatenated and read once). ' +
      'No optimizer update in any of them: workers never apply one (the coordinator steps Adam). ' +
      'The CNN runs on tfjs as `tf.layers` (channels last), the transformer as tf ops (pre-LayerNorm causal attention with output projection, 4× tanh-GELU MLP); every trainer starts from the same weights and must give the same first loss. ' +
      '"ours" is the faster of our WebGPU layer executor and our CPU layer backend; the goal is at least 2× the faster tfjs backend.',
    '',
    '| model | unit | ours webgpu | ours cpu | tfjs webgpu | tfjs cpu | ours / faster tfjs |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ...trainRows.map((x) => `| ${x.model} | ${x.unit} | ${fmt(x.ours_webgpu, 0)} | ${fmt(x.ours_cpu, 0)} | ${fmt(x.tfjs_webgpu, 0)} | ${fmt(x.tfjs_cpu, 0)} | ${ratio(x.ours, faster(x))} |`),
    '',
    'Convolution passes on the CNN\'s shapes: GFLOP/s (2·B·O·Ho·Wo·C·K·K / time) of our kernels (im2col + matmul, `shaders/conv2d.wgsl`; the weight gradient includes the bias gradient) and of tfjs\'s `Conv2D`, `Conv2DBackpropFilter` and `Conv2DBackpropInput` kernels (NHWC), interleaved.',
    '',
    '| pass | ours GFLOP/s | tfjs webgpu | tfjs cpu | ours / faster tfjs |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...convRows.map((x) => `| ${x.model} | ${fmt(x.ours, 3)} | ${fmt(x.tfjs_webgpu, 3)} | ${fmt(x.tfjs_cpu, 3)} | ${ratio(x.ours, faster(x))} |`),
    ...modelsProfile(r.profile),
    ...modelsExperiments(r.experiments),
  ].join('\n');
}

/** Where one step of our WebGPU executor spends its GPU time (`profile=1`): the costliest kernels. */
function modelsProfile(profile: Record<string, Record<string, number>> | undefined): string[] {
  if (!profile) return [];
  const out = ['', 'Where a step of our WebGPU executor spends its GPU time (`profile=1`: on a profiled device, each dispatch its own pass; ms per kernel per step, medians of 5 steps; the six costliest):', ''];
  for (const [name, byKernel] of Object.entries(profile)) {
    const total = Object.values(byKernel).reduce((a, b) => a + b, 0);
    const top = Object.entries(byKernel).sort((a, b) => b[1] - a[1]).slice(0, 6);
    out.push(`- ${name}: ${fmt(total, 0)} ms; ${top.map(([k, ms]) => `${k} ${fmt(ms, 0)} (${fmt((100 * ms) / total, 0)} %)`).join(', ')}`);
  }
  return out;
}

/** Kernel experiments against the shipped kernel (`experiments=1`), as bench/experiments records them. */
function modelsExperiments(experiments: Json[] | undefined): string[] {
  if (!experiments?.length) return [];
  return [
    '',
    'Kernel experiments on these models\' shapes (`experiments=1`; bench/experiments/), each checked first, then timed interleaved with the shipped kernel: median ms.',
    '',
    '| kernel and shape | experiment ms | shipped ms | experiment / shipped |',
    '| --- | --- | --- | ---: |',
    ...experiments.map((x) => {
      const [[exp, expMs], [shipped, shippedMs]] = Object.entries(x.ms as Record<string, number>);
      return `| ${x.experiment} | ${exp}: ${fmt(expMs, 1)} | ${shipped}: ${fmt(shippedMs, 1)} | ${fmt(x.slower_than_shipped)}× |`;
    }),
  ];
}

function pipeline(r: Json): string {
  const m = r.machine ?? {};
  const rows = (r.rows as Json[]).map(
    (x) => `| ${x.stages} | ${x.micro_batches} | ${fmt(x.round_ms, 1)} | ${((x.bytes_relayed_per_round as number) / 1024).toFixed(0)} | ${fmt(x.bubble_predicted)} | ${fmt(x.bubble_measured)} | ${fmt(x.samples_per_sec, 0)} |`,
  );
  return [
    '## pipeline (`npm run bench -- pipeline`)',
    '',
    `Measured ${String(r.date ?? '').slice(0, 10)} on ${m.cpus ?? '?'} × ${m.cpu ?? '?'} (${m.platform}/${m.arch}): a coordinator and one worker process per stage (CPU backends), MLP ${r.model}, global batch ${r.global_batch}, one replica; medians over the timed rounds.`,
    'Bytes relayed: activations forward and their gradients backward through the coordinator, per round. Bubble: the idle fraction of the stage workers, as GPipe predicts it for equal stages, (P−1)/(M+P−1), and as measured (1 − Σ stage compute time / (P × round time)); with fewer cores than stages, stages also queue for a core, which the measured bubble includes.',
    '',
    '| stages P | micro-batches M | round ms | KiB relayed | bubble predicted | bubble measured | samples/s |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
  ].join('\n');
}

function scaleSpeeds(pairs: unknown): string {
  if (!Array.isArray(pairs)) return '?';
  return (pairs as [number, number][]).map(([sps, n]) => `${n} × ${sps.toLocaleString('en-US')}`).join(' + ');
}

function scale(r: Json): string {
  const m = r.machine ?? {};
  const rows = (r.rows ?? []) as Json[];
  const links = [...new Set(rows.map((x) => x.link as string))];
  const out = [
    '## Scale (`npm run bench -- scale`)',
    '',
    `Measured ${String(r.date ?? '').slice(0, 10)} on ${m.cpus ?? '?'} × ${m.cpu ?? '?'} (${m.platform}/${m.arch}, ${m.memory_gb} GB). The real coordinator (\`buildApp\`, in-memory store) in one process with the default run (MLP 784-128-10, 101,770 parameters, no stop rule, \`sync.maxBatch\` 1,000,000 so that only \`sync.targetRoundMs\` paces the rounds); simulated workers in a child process, each on its own Socket.IO connection speaking the real protocol, starting unmeasured. A simulated worker computes nothing: it waits examples ÷ its speed and answers with a fixed valid gradient, so these rows measure the coordinator and the schedule, not arithmetic. Link delays are applied by the simulator to every message a worker receives (parameters, tasks, acks) and sends (results, ready): latency + bytes ÷ bandwidth, in order.`,
    `Efficiency: committed ÷ offered examples/s (offered: Σ of the workers' own speeds), between the first and last commit of a window of about ${fmt(Math.max(0, ...rows.map((x) => x.window_s as number)), 0)} s that starts after a warm-up past the run's first evaluation. Speed-up: committed ÷ the fastest worker's speed. Overhead: the time between two commits minus the compute of the round's busiest worker (Σ of its tasks' compute in that round, as it reported). Bytes per example: tensor payload (gradients up; parameters and task indices down) ÷ committed examples. Coordinator CPU: its process's CPU time ÷ wall time (1.00 = one core); simulator CPU likewise for the child. On a 2-core machine the coordinator and the simulator share the cores with each other and with whatever else runs.`,
    '',
    'Where the coordinator\'s time goes at 256 workers (a CPU profile of the window of the 500 ms row, `SCALE_PROF=<dir> npm run bench -- scale --rows 256 --links loopback`; 2026-12-02, on a machine shared with other jobs): about 40 % idle; socket writes 12 % (the parameter broadcast, 256 × 407 KB a round, in the kernel\'s `writev`); checking and folding gradients 11 % (`checkGradient` and `RoundSum.add`, two passes over 101,770 floats a result); garbage collection 10 % (each received gradient is a fresh 407 KB buffer); reading WebSocket frames 5 %; the commit 4 % (Adam step; the test-set evaluation every 10 rounds takes 100-400 ms of one round). Before `bufferutil` was installed, `ws` unmasked the workers\' frames byte by byte in JavaScript (30 % of the coordinator), and preparing the SQLite statement of the per-result worker record took another 2 %. All of a round\'s results arrive together, so the coordinator\'s 1-2 ms per result and the broadcast are dead time for every worker: longer rounds (the 2,000 ms row) spread it over more examples.',
    'What the CPU did not explain was the schedule, and the first measurement (on a busy machine) showed it: the coordinator times a task from sending it to receiving its result, and averaging per-task rates let small tasks (mostly transfer time) drag a worker\'s measured speed down, its next tasks got smaller, and a worker sized below one minimum task was never measured again (the median measured speed after the 256-worker warm-up was 31 examples/s for workers that compute 1,000; efficiency 0.31 at 256 workers on loopback, 0.00 on the LAN). Since then (server/task-sizing.ts, server/workers.ts): a speed is decayed examples over decayed time, a measured worker always gets at least the minimum task, a worker that finishes early gets more only while half a round is left, and a round lasts at least 8 ms per worker. The tables below are after those changes, measured with nothing else running.',
  ];
  for (const link of links) {
    const lr = rows.filter((x) => x.link === link);
    out.push(
      '',
      `**${link}**: ${(r.links ?? {})[link] ?? link}.`,
      '',
      '| workers × examples/s | target round ms | offered /s | committed /s | efficiency | speed-up | rounds/s | overhead p50 / p95 ms | bytes/example up / down | coordinator CPU | RSS MB | simulator CPU |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...lr.map(
        (x) =>
          `| ${scaleSpeeds(x.speeds)}${x.churn ? ` (${Math.round(x.churn.fraction * 100)} % replaced every ${x.churn.every_s} s)` : ''} | ${fmt(x.target_round_ms, 0)} | ${fmt(x.offered_sps, 0)} | ${fmt(x.committed_sps, 0)} | ${fmt(x.efficiency)} | ${fmt(x.speedup)}× | ${fmt(x.rounds_per_sec)} | ${fmt(x.p50_overhead_ms, 0)} / ${fmt(x.p95_overhead_ms, 0)} | ${fmt(x.bytes_per_example_up, 0)} / ${fmt(x.bytes_per_example_down, 0)} | ${fmt(x.coordinator_cpu)} | ${fmt(x.rss_mb, 0)} | ${fmt(x.simulator_cpu)} |`,
      ),
    );
  }
  return out.join('\n');
}

const SECTIONS: [string, (r: Json) => string][] = [
  ['matmul', matmul],
  ['train', train],
  ['models', models],
  ['pipeline', pipeline],
  ['cpu', cpu],
  ['scale', scale],
  ['scale', timeToTargetSection],
  ['eval-loop', evalLoopSection],
  ['accuracy', accuracySection],
  ['comm', commSection],
  ['comm-check', commCheckSection],
  ['abuse', abuseSection],
  ['join', joinSection],
  ['worker', workerSection],
];

export function writeBenchmarksDoc(root: string): void {
  const parts = [
    '# Benchmarks',
    '',
    'Written by `npm run bench -- <name>` from `bench/results/*.json`. Speeds are compared with a peer',
    'measured in the same page on the same adapter, because these machines are shared and noisy:',
    'read the ratios, not the absolute numbers. SwiftShader is Chromium\'s CPU implementation of',
    "WebGPU (tfjs's matmul reaches about 1 GFLOP/s there on 2 cores); a real GPU is orders of magnitude faster.",
    'Each section names the adapter it was measured on; the kernel variants differ by adapter, and the',
    'matmul tuner picks among them on the machine it runs on, so numbers from a real GPU may rank them differently.',
  ];
  for (const [name, section] of SECTIONS) {
    const file = join(root, 'bench', 'results', `${name}.json`);
    if (!existsSync(file)) continue;
    parts.push('', section(JSON.parse(readFileSync(file, 'utf8'))));
  }
  writeFileSync(join(root, 'docs', 'benchmarks.md'), `${parts.join('\n')}\n`);
}
