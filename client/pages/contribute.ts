// The contributor page: one button to lend this tab to the current run, its status, its
// speed and contribution, the run's progress, a work cap, pause and stop.
import { chooseBackend, makeBackend, makeStageBackend, type BackendChoice } from '../worker/choose-backend.ts';
import { WorkerClient, type WorkerState, type WorkerStats } from '../worker/worker-client.ts';
import type { Backend } from '../../shared/protocol.ts';
import type { MlpSpec } from '../../shared/model.ts';

const $ = (id: string) => document.getElementById(id)!;
const button = $('contribute') as HTMLButtonElement;
const pauseButton = $('pause') as HTMLButtonElement;
const cap = $('cap') as HTMLInputElement;

const STATE_TEXT: Record<WorkerState, string> = {
  idle: 'Not contributing.',
  connecting: 'Connecting to the coordinator…',
  'warming-up': 'Warming up: compiling kernels and timing this device…',
  training: 'Training: this tab is computing gradients.',
  paused: 'Paused: this tab keeps its place but computes nothing.',
  reconnecting: 'Reconnecting…',
  stopped: 'Stopped. Thank you!',
  refused: 'The coordinator refused this tab.',
};

let client: WorkerClient | undefined;
let choice: BackendChoice | undefined;
/** Stages of the run this tab serves (1: plain data parallelism). */
let pipelineStages = 1;

function render(s: WorkerStats): void {
  const status = $('status');
  status.dataset.state = s.state;
  status.textContent = s.message && s.state !== 'training' ? `${STATE_TEXT[s.state]} ${s.message}` : STATE_TEXT[s.state];
  $('sps').textContent = s.samplesPerSec ? Math.round(s.samplesPerSec).toLocaleString() : '–';
  $('contributed').textContent = `${s.contributedSamples.toLocaleString()} samples, ${s.tasksDone} tasks${s.tasksRejected ? `, ${s.tasksRejected} not used` : ''}`;
  if (s.run) {
    $('round').textContent = String(s.run.version);
    $('loss').textContent = s.run.loss === null ? '–' : s.run.loss.toFixed(4);
    $('accuracy').textContent = s.run.accuracy === null ? '–' : `${(100 * s.run.accuracy).toFixed(2)} %`;
    $('workers').textContent = String(s.run.workers);
    $('grid-sps').textContent = Math.round(s.run.samplesPerSec).toLocaleString();
    $('run-state').textContent = s.run.state;
  }
  pauseButton.textContent = s.state === 'paused' ? 'Resume' : 'Pause';
  // Pipeline runs: which layers of which replica this tab holds.
  const placement = $('placement');
  const stages = s.run ? pipelineStages : 1;
  placement.hidden = stages <= 1 || !client;
  if (s.placement) {
    const p = s.placement;
    const layers = p.endLayer - p.firstLayer === 1 ? `layer ${p.firstLayer + 1}` : `layers ${p.firstLayer + 1}–${p.endLayer}`;
    placement.textContent = `Holds ${layers} of the model: stage ${p.stage + 1} of ${p.stages} in replica ${p.replica + 1}${s.allocatedBytes ? ` (${(s.allocatedBytes / 2 ** 20).toFixed(2)} MiB allocated)` : ''}.`;
  } else {
    placement.textContent = 'Standby: waiting for a free pipeline stage.';
  }
}

async function currentModel(): Promise<{ spec: MlpSpec; batch: number; name: string }> {
  const res = await fetch('/api/runs');
  if (!res.ok) throw new Error(`the coordinator answered ${res.status}`);
  const { runs } = (await res.json()) as { runs: { name: string; state: string; spec: { model: MlpSpec; batchPerTask: number; globalBatch?: number; parallelism: { stages: number } } }[] };
  const run = runs.filter((r) => r.state === 'running').at(-1) ?? runs.at(-1);
  if (!run) throw new Error('the coordinator has no run yet');
  pipelineStages = run.spec.parallelism.stages;
  return { spec: run.spec.model, batch: Math.max(run.spec.batchPerTask, run.spec.globalBatch ?? 0), name: run.name };
}

async function start(): Promise<void> {
  button.disabled = true;
  render({ ...emptyStats(), state: 'warming-up' });
  try {
    const { spec, batch, name } = await currentModel();
    $('run-name').textContent = name;
    const forced = new URLSearchParams(location.search).get('backend') as Backend | null;
    choice ??= await chooseBackend(spec, batch, forced ?? undefined);
    const a = choice.adapter;
    $('adapter').textContent = a ? [a.vendor, a.architecture].filter(Boolean).join(' · ') || a.description || 'unknown' : 'none';
    $('backend').textContent = choice.kind === 'webgpu' ? 'WebGPU' : 'CPU';
    $('reason').textContent = choice.reason;
    const picked = choice;
    client = new WorkerClient({
      backend: picked.kind,
      hello: {
        adapter: { vendor: a?.vendor ?? '', architecture: a?.architecture ?? '', description: a?.description ?? '' },
        backendReason: picked.kind === 'cpu' ? picked.reason.slice(0, 400) : undefined,
        userAgent: navigator.userAgent.slice(0, 400),
      },
      cap: Number(cap.value) / 100,
      makeBackend: (run) => makeBackend(picked, run.model, Math.max(run.spec.batchPerTask, run.spec.globalBatch ?? 0)),
      makeStageBackend: async (_run, plan, maxMicroBatch) => makeStageBackend(picked, plan, maxMicroBatch),
      onChange: render,
    });
    client.start();
    button.textContent = 'Stop';
    pauseButton.disabled = false;
  } catch (err) {
    render({ ...emptyStats(), state: 'idle', message: null });
    $('status').textContent = `Could not start: ${(err as Error).message}`;
  } finally {
    button.disabled = false;
  }
}

function stop(): void {
  client?.stop();
  client = undefined;
  button.textContent = 'Contribute';
  pauseButton.disabled = true;
}

function emptyStats(): WorkerStats {
  return { workerId: null, state: 'idle', backend: 'cpu', samplesPerSec: 0, contributedSamples: 0, tasksDone: 0, tasksRejected: 0, run: null, placement: null, allocatedBytes: 0, message: null };
}

button.addEventListener('click', () => (client ? stop() : void start()));
pauseButton.addEventListener('click', () => {
  if (!client) return;
  if (client.stats.state === 'paused') client.resume();
  else client.pause();
});
cap.addEventListener('input', () => {
  $('cap-value').textContent = `${cap.value} %`;
  client?.setCap(Number(cap.value) / 100);
});
