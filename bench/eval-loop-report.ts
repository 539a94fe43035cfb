// The "Evaluation and the event loop" section of docs/benchmarks.md, from
// bench/results/eval-loop.json (bench/eval-loop.node.ts writes it).

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const fmt = (v: unknown, digits = 1): string => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '–');

const MODES: Record<string, string> = {
  none: 'no evaluation',
  inline: 'inline (on the event loop)',
  thread: 'evaluation thread',
};

export function evalLoopSection(r: Json): string {
  const m = r.machine ?? {};
  const model = r.model ?? {};
  const rows = (r.rows ?? []) as Json[];
  return [
    '## Evaluation and the event loop (`npm run bench -- eval-loop`)',
    '',
    `Measured ${String(r.date ?? '').slice(0, 10)} on ${m.cpus ?? '?'} × ${m.cpu ?? '?'} (${m.platform}/${m.arch}, ${m.memory_gb} GB). The real scheduler and commit step`,
    `(AdamW on ${Number(model.params ?? 0).toLocaleString('en-US')} parameters: embedding ${model.vocab}→64, positional, 2 transformer blocks of 4 heads, dense 64→${model.vocab}, on windows of ${model.context} tokens)`,
    `on the in-memory port and the system clock; one simulated worker answers each task after ${r.task_ms} ms, and every round asks for an evaluation of the same`,
    `${Number(r.eval_windows ?? 0).toLocaleString('en-US')} held-out windows (${Number((r.eval_windows ?? 0) * (model.context ?? 0)).toLocaleString('en-US')} positions). Event-loop delay from \`perf_hooks.monitorEventLoopDelay\` (resolution ${r.resolution_ms} ms) over each window;`,
    "'no evaluation' runs the same rounds without any, alternating with the thread's windows: the floor the rest of the machine's load sets (1-minute load average in the last column).",
    "monitorEventLoopDelay's figures include its sampling interval; timer: the lateness beyond it of a 5 ms interval timer, measured by hand, which also counts a stall the window ends in. The evaluation thread runs at the lowest",
    'scheduling priority, so on a machine busy with other work it takes long, while the rounds go on.',
    '',
    '| evaluation | window s | delay p50 ms | p99 ms | max ms | timer p99 / max ms | rounds/s | evaluations | s per evaluation | load |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (x) =>
        `| ${MODES[x.mode] ?? x.mode} | ${fmt(x.window_s, 0)} | ${fmt(x.p50_ms)} | ${fmt(x.p99_ms)} | ${fmt(x.max_ms, 0)} | ${fmt(x.timer_p99_ms)} / ${fmt(x.timer_max_ms, 0)} | ${fmt(x.rounds_per_sec)} | ${x.evaluations} | ${fmt(x.eval_s_mean)} | ${fmt(x.loadavg_1m)} |`,
    ),
  ].join('\n');
}
