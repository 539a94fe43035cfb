// The "Communication" section of docs/benchmarks.md, from bench/results/comm.json (written by
// bench/comm.node.ts) and its check against a real run, bench/results/comm-check.json (written by
// bench/comm-check.node.ts): bytes per example each way and time to target for each sync mode
// and coding, judged against the goals of the low-communication work.
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const fmt = (v: unknown, digits: number): string => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '–');
const int = (v: unknown): string => (typeof v === 'number' && Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–');
const bytes = (v: number): string => (v >= 100 ? int(v) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

const total = (r: Json) => (r.bytes_per_example_up as number) + (r.bytes_per_example_down as number);
/** Results up and parameter messages down: what the codings act on (no task indices, no first snapshots). */
const coded = (r: Json) => (r.down_params_per_example === undefined ? 0 : (r.bytes_per_example_up as number) + (r.down_params_per_example as number) - (r.down_snapshots_per_example as number));
const downCell = (r: Json) =>
  r.down_indices_per_example === undefined ? bytes(r.bytes_per_example_down) : `${bytes(r.bytes_per_example_down)} (${bytes(r.down_indices_per_example)} + ${bytes(r.down_params_per_example)})`;
const label = (r: Json) => (r.mode === 'sync' ? 'sync' : `local, H = ${r.inner_steps}`);

/** Goals: ≥ 100× fewer bytes per example (both ways), ≤ 1.5× the examples, ≥ 5× sooner than sync f32. */
export const COMM_GOALS = { bytes: 100, examples: 1.5, seconds: 5 };

function modelTable(rows: Json[], metricName: string, digits: number): string[] {
  const ref = rows.find((r) => r.mode === 'sync' && r.compression === 'none');
  const out = [
    `| mode | coding (up; down) | B/example up | B/example down (indices + parameters) | sync f32 ÷ it, bytes | the same without indices and snapshots | examples to target | ÷ sync f32 | simulated s to target | sync f32 ÷ it | final ${metricName} |`,
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    const reached = r.examples_to_target !== null;
    const down = r.compression === 'topk' ? 'int8' : r.compression;
    const ran = r.examples > 0;
    out.push(
      `| ${label(r)} | ${r.compression}; ${down} | ${ran ? bytes(r.bytes_per_example_up) : '–'} | ${ran ? downCell(r) : '–'} | ${ref && ran ? `${fmt(total(ref) / total(r), 0)}×` : '–'} | ${ref && ran && coded(r) > 0 ? `${fmt(coded(ref) / coded(r), 0)}×` : '–'} | ` +
        `${reached ? int(r.examples_to_target) : `not within ${int(r.cap)}`} | ${ref && reached ? `${fmt(r.examples_to_target / ref.examples_to_target, 2)}×` : '–'} | ` +
        `${reached ? fmt(r.seconds_to_target, 1) : '–'} | ${ref && reached ? `${fmt(ref.seconds_to_target / r.seconds_to_target, 1)}×` : '–'} | ${fmt(r.final_metric, digits)}${r.note && r.mode !== 'sync' ? ` (${r.note})` : ''} |`,
    );
  }
  return out;
}

/** Which local rows meet every goal against the model's sync f32 row. */
function goals(rows: Json[]): string {
  const ref = rows.find((r) => r.mode === 'sync' && r.compression === 'none');
  if (!ref || ref.examples_to_target === null) return 'Goals: no sync f32 reference.';
  const meets = rows.filter(
    (r) =>
      r.mode === 'local' &&
      r.examples_to_target !== null &&
      total(ref) / total(r) >= COMM_GOALS.bytes &&
      r.examples_to_target <= COMM_GOALS.examples * ref.examples_to_target &&
      ref.seconds_to_target / r.seconds_to_target >= COMM_GOALS.seconds,
  );
  const head = `Goals (some local setting with ≥ ${COMM_GOALS.bytes}× fewer bytes per example both ways counted, ≤ ${COMM_GOALS.examples}× the examples and ≥ ${COMM_GOALS.seconds}× sooner than sync f32): `;
  return head + (meets.length ? `**met** by ${meets.map((r) => `H = ${r.inner_steps} ${r.compression}`).join(', ')}.` : '**not met** by any local row.');
}

export function commSection(r: Json): string {
  const m = r.machine ?? {};
  const s = r.settings ?? {};
  const cnn = s.models?.cnn ?? {};
  const tr = s.models?.transformer ?? {};
  const rows = (r.rows ?? []) as Json[];
  const out = [
    '## Communication (`npm run bench -- comm`)',
    '',
    `Run ${String(r.date ?? '').slice(0, 10)} on ${m.cpus ?? '?'} × ${m.cpu ?? '?'}; the results are in simulated time, so they do not depend on the machine or on what else ran on it. ` +
      `A grid of ${s.workers ?? 16} volunteers at home in the virtual-time simulator (\`bench/sim/\`): the real scheduler, round modes, parameter channel and traffic counters on the in-memory port; ` +
      'every task computed for real on the CPU backend (a local-mode task is the worker\'s own inner optimizer, kept across rounds, as in a tab), every result coded as the run\'s `compression.up` with the worker\'s own error feedback, ' +
      'every message taking latency + bytes ÷ bandwidth on its worker\'s link for the bytes it really carries (coded results up; parameters, coded deltas, snapshots and task indices down): ' +
      `${s.link?.up?.mbps ?? 20} Mbit/s up, ${s.link?.down?.mbps ?? 100} Mbit/s down, ${s.link?.up?.latencyMs ?? 50} ms one way. ` +
      'Speeds: a quarter of the workers at 2 s, half at s, a quarter at s ÷ 2 (examples/s; s = ' +
      `${int(cnn.speed)} digits/s for the CNN, ${int(tr.speed)} windows/s for the transformer: a few times what the CPU path of a tab does on this 2-core machine, \`models\` above). ` +
      'Bytes per example: payload bytes each way (the coordinator\'s per-run counters) ÷ committed examples, up to the stop. Sync rounds are the coordinator\'s default pacing (500 ms of the grid\'s speed, at most `maxBatch` examples, learning rate scaled with the batch); ' +
      'a local round is H inner steps of `batchPerTask` for the worker of median speed, the others in proportion (at most 2H). One seed.',
    '',
    `**CNN** (\`examples/mnist-cnn.yaml\`, 5,994 parameters, full MNIST): target ${fmt(cnn.target, 2)} test accuracy on the first ${int(cnn.evalExamples)} test digits, evaluated every ~${int(cnn.evalEveryExamples)} examples in sync mode and after every outer round in local mode. ` +
      `Sync rows: the example's Adam 1e-3 for 64, scaled linearly with the round's batch (at most 16×). Local rows: inner AdamW lr ${cnn.inner?.lr ?? '?'} (weight decay ${cnn.inner?.weightDecay ?? '?'}), outer Nesterov lr ${cnn.outer?.lr ?? '?'}, momentum ${cnn.outer?.momentum ?? '?'}. ` +
      `Every row but sync f32 stops at ${cnn.capFactor ?? 1.5}× sync f32's examples to target; a local row whose first outer round (16 × H × 64 examples, no worker measured yet) is already past that is not run.`,
    '',
    ...modelTable(rows.filter((x) => x.model === 'cnn'), 'accuracy', 4),
    '',
    goals(rows.filter((x) => x.model === 'cnn')),
    '',
    `**Transformer** (\`examples/moby-dick-transformer.yaml\`, 114,899 parameters, windows of 64 characters): the target is the validation loss (nats per character, first ${int(tr.evalExamples)} validation windows) that the sync f32 row has after ${int(tr.budget)} windows; ` +
      `its examples to target are those of its first evaluation at or below that loss. Sync rows: rounds of at most ${int(tr.sync?.maxBatch)} windows, AdamW 3e-3 for 32 scaled by √(batch ÷ 32) (\`lrScaling: ${tr.sync?.lrScaling ?? '?'}\`; linear scaling to 16× is too much for this model). ` +
      `Local rows: inner AdamW lr ${tr.inner?.lr ?? '?'} (weight decay ${tr.inner?.weightDecay ?? '?'}), outer Nesterov lr ${tr.outer?.lr ?? '?'}, momentum ${tr.outer?.momentum ?? '?'}; cap ${tr.capFactor ?? 1.5}× sync f32's examples to target, as for the CNN.`,
    '',
    ...modelTable(rows.filter((x) => x.model === 'transformer'), 'loss', 3),
    '',
    goals(rows.filter((x) => x.model === 'transformer')),
  ];
  if (r.notes) out.push('', ...(r.notes as string[]));
  return out.join('\n');
}

export function commCheckSection(r: Json): string {
  const real = r.real ?? {};
  const sim = r.simulated ?? {};
  const spec = r.spec ?? {};
  const line = (name: string, a: unknown, b: unknown, digits: number) => `| ${name} | ${typeof a === 'number' ? (digits ? fmt(a, digits) : int(a)) : '–'} | ${typeof b === 'number' ? (digits ? fmt(b, digits) : int(b)) : '–'} |`;
  return [
    '### The simulator against a real run (`npm run bench -- comm-check`)',
    '',
    `Run ${String(r.date ?? '').slice(0, 10)}. The same local-mode run (MLP ${(spec.model?.layers ?? []).join('-')} on \`${spec.dataset}\`, H = ${spec.sync?.innerSteps}, ${spec.compression} both ways, target ${spec.stop?.targetAccuracy} on the first ${int(spec.evalExamples)} test digits) ` +
      `trained by a real coordinator on 127.0.0.1 with 3 workers (${r.workers ?? '?'}; headless Chromium tabs would share the 2 cores with the coordinator and SwiftShader), ` +
      `and in the simulator by 3 workers at the speeds the coordinator measured for the real ones (${(r.speeds ?? []).join(', ')} examples/s) on a loopback-like link. Bytes from each coordinator's per-run traffic counters.`,
    '',
    '| | real | simulated |',
    '| --- | ---: | ---: |',
    line('examples to target', real.examples_to_target, sim.examples_to_target, 0),
    line('rounds', real.rounds, sim.rounds, 0),
    line('bytes per example up', real.bytes_per_example_up, sim.bytes_per_example_up, 2),
    line('bytes per example down', real.bytes_per_example_down, sim.bytes_per_example_down, 2),
    line('snapshot bytes (HTTP)', real.snapshot_bytes, sim.snapshot_bytes, 0),
    line('accuracy at the stop', real.final_accuracy, sim.final_accuracy, 4),
    line('seconds (real; simulated)', real.seconds, sim.seconds, 1),
  ].join('\n');
}
