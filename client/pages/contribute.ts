// The contributor page: one button to lend this tab to the current run, its status, its
// speed and contribution, the run's progress, a work cap, pause and stop; the person's nickname,
// their line on the run's leaderboard, and a pad to try the model being trained.
// Nicknames (anyone's) are only ever set as textContent.
import './no-eval.ts'; // first: before any zod schema is parsed
import { chooseBackend, makeBackend, makeStageBackend, type BackendChoice } from '../worker/choose-backend.ts';
import { dutyFor, pageCpuBackend, pageThreads } from '../worker/web-lanes.ts';
import { markJoin, WorkerClient, type WorkerState, type WorkerStats } from '../worker/worker-client.ts';
import type { ModelUse } from '../ui/page-model.ts';
import { mountTryModel, type TryModelPanel, type TryModelSource } from '../ui/try-model.ts';
import { PARAMS_VERSION_HEADER } from '../../shared/board-protocol.ts';
import { randomNickname, sanitizeNickname } from '../../shared/nickname.ts';
import type { Backend, RunSummary, RunUpdate } from '../../shared/protocol.ts';
import type { LeaderboardEntry as LeaderRow } from '../../shared/rest-types.ts';
import { microBatchOf } from '../../shared/run-spec.ts';
import { netLine, type NetInfo } from '../../shared/run-model.ts';

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
  if (s.run) tryModel.want(s.run.runId, s.run.version);
  // Several runs share the grid: the coordinator may move this tab between them at a round's end.
  if (s.serving) {
    const name = $('run-name');
    name.textContent = s.serving.name;
    name.title = `run ${s.serving.runId}`;
    pipelineStages = s.serving.stages;
  }
  const status = $('status');
  status.dataset.state = s.state;
  status.textContent = s.message && s.state !== 'training' ? `${STATE_TEXT[s.state]} ${s.message}` : STATE_TEXT[s.state];
  // What the tab does this moment (hover the status; tests read it when a tab seems stuck).
  status.title = s.activity ? `${s.activity.what} (since ${new Date(performance.timeOrigin + s.activity.since).toLocaleTimeString()})` : '';
  $('sps').textContent = s.samplesPerSec ? Math.round(s.samplesPerSec).toLocaleString() : '–';
  $('contributed').textContent = `${s.contributedSamples.toLocaleString()} samples, ${s.tasksDone} tasks${s.tasksRejected ? `, ${s.tasksRejected} not used` : ''}`;
  if (s.run) {
    $('round').textContent = String(s.run.version);
    $('loss').textContent = s.run.loss === null ? '–' : s.run.loss.toFixed(4);
    showQuality(s.run);
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

/** Runs of a language model: their quality is the validation loss per character, not an accuracy. */
const textRuns = new Set<string>();

/** Test accuracy, or for a language model the validation loss in bits/char and nats/char. */
function showQuality(run: RunUpdate): void {
  const text = textRuns.has(run.runId);
  $('accuracy-label').textContent = text ? 'Validation loss' : 'Test accuracy';
  const nats = run.evalLoss ?? null;
  if (text) $('accuracy').textContent = nats === null ? '–' : `${(nats / Math.LN2).toFixed(2)} bits/char (${nats.toFixed(2)} nats/char)`;
  else $('accuracy').textContent = run.accuracy === null ? (nats === null ? '–' : `loss ${nats.toFixed(3)}`) : `${(100 * run.accuracy).toFixed(2)} %`;
}

/** What this page reads of a run in GET /api/runs and GET /api/runs/:id. */
type RunListing = Pick<RunSummary, 'id' | 'name' | 'state' | 'version' | 'spec' | 'net' | 'dataset'>;

/** The run a joining worker is given: the newest running one, else the newest. */
async function currentRun(): Promise<RunListing> {
  const res = await fetch('/api/runs');
  if (!res.ok) throw new Error(`the coordinator answered ${res.status}`);
  const { runs } = (await res.json()) as { runs: RunListing[] };
  const run = runs.filter((r) => r.state === 'running').at(-1) ?? runs.at(-1);
  if (!run) throw new Error('the coordinator has no run yet');
  tryModel.know(run);
  return run;
}

async function currentModel(): Promise<{ net: NetInfo; batch: number; name: string }> {
  const run = await currentRun();
  pipelineStages = run.spec.parallelism.stages;
  return { net: run.net, batch: Math.max(run.spec.batchPerTask, run.spec.globalBatch ?? 0), name: run.name };
}

/** CPU threads of this tab's backend (chosen at start from the cap). */
let threads = 1;

/** The duty cycle that keeps this tab's threads within `cap` of the machine's cores. */
function dutyOf(cap: number): number {
  return threads > 1 ? dutyFor(cap, threads) : cap;
}

/** Where the page remembers which backend won on this browser, per model. */
const CHOICE_KEY = 'crowdtrain.backendChoice';

interface RememberedChoice {
  model: string;
  userAgent: string;
  kind: Backend;
  reason: string;
}

const modelKey = (net: NetInfo) => JSON.stringify([net.layers, net.inputShape]);

function recall(net: NetInfo): RememberedChoice | null {
  try {
    const r = JSON.parse(localStorage.getItem(CHOICE_KEY) ?? 'null') as RememberedChoice | null;
    return r && r.model === modelKey(net) && r.userAgent === navigator.userAgent && (r.kind === 'cpu' || r.kind === 'webgpu') ? r : null;
  } catch {
    return null;
  }
}

function remember(net: NetInfo, c: BackendChoice): void {
  try {
    localStorage.setItem(CHOICE_KEY, JSON.stringify({ model: modelKey(net), userAgent: navigator.userAgent, kind: c.kind, reason: c.reason.slice(0, 300) } satisfies RememberedChoice));
  } catch {
    // Storage blocked: the next visit times the backends again.
  }
}

/**
 * The backend to start with, at once: the one asked for in the URL; the CPU where there is no
 * WebGPU; the one that won on an earlier visit; else the CPU while WebGPU is timed against it
 * in the background (a newcomer's first gradient should not wait for kernels to compile).
 */
async function firstChoice(net: NetInfo, batch: number, forced: Backend | null): Promise<BackendChoice> {
  // A browser may define navigator.gpu and leave it undefined (a policy, an extension, a
  // wrapper): that is no WebGPU too, and says so at once rather than timing nothing.
  if (forced || !(navigator as { gpu?: unknown }).gpu) {
    const c = await chooseBackend(net, batch, forced ?? undefined);
    if (!forced) remember(net, c);
    return c;
  }
  const known = recall(net);
  if (known?.kind === 'webgpu') {
    const c = await chooseBackend(net, batch, 'webgpu');
    if (c.kind === 'webgpu') return { ...c, reason: `faster here on an earlier visit: ${known.reason}` };
    return c; // the adapter is gone since: the CPU, with why
  }
  if (known) return { kind: 'cpu', reason: known.reason, adapter: null, timings: {}, gpu: null };
  void decideInBackground(net, batch);
  return { kind: 'cpu', reason: 'computing on the CPU while WebGPU is timed against it…', adapter: null, timings: {}, gpu: null };
}

/** Times WebGPU against the CPU while the tab computes; moves the tab to WebGPU if it won. */
async function decideInBackground(net: NetInfo, batch: number): Promise<void> {
  let c: BackendChoice;
  try {
    c = await chooseBackend(net, batch);
  } catch {
    return;
  }
  remember(net, c);
  choice = c;
  if (c.kind === 'webgpu' && client) {
    // A new connection with the new backend: the coordinator re-queues the open task at once.
    client.stop();
    startClient(c);
  } else if (client) showBackend(c);
}

function showBackend(c: BackendChoice): void {
  const a = c.adapter;
  $('adapter').textContent = a ? [a.vendor, a.architecture].filter(Boolean).join(' · ') || a.description || 'unknown' : 'none';
  $('backend').textContent = c.kind === 'webgpu' ? 'WebGPU' : 'CPU';
  $('reason').textContent = c.reason;
  $('threads').textContent = c.kind === 'cpu' ? `× ${threads} thread${threads > 1 ? 's' : ''}` : '';
}

/** A worker client on backend `picked`, started. */
function startClient(picked: BackendChoice): void {
  const a = picked.adapter;
  // The CPU computes on as many Web Workers as the cap allows of this machine's cores; the
  // duty cycle takes the rest of the cap (WebGPU: one device, the cap is its duty cycle).
  threads = picked.kind === 'cpu' ? pageThreads(Number(cap.value) / 100) : 1;
  showBackend(picked);
  client = new WorkerClient({
    backend: picked.kind,
    hello: {
      adapter: { vendor: a?.vendor ?? '', architecture: a?.architecture ?? '', description: a?.description ?? '' },
      backendReason: picked.kind === 'cpu' ? picked.reason.slice(0, 400) : undefined,
      userAgent: navigator.userAgent.slice(0, 400),
      browserId: browserId(),
      ...(nickname !== null ? { nickname } : {}),
    },
    cap: dutyOf(Number(cap.value) / 100),
    makeBackend: async (run) => (picked.kind === 'cpu' && threads > 1 ? pageCpuBackend(run, microBatchOf(run.spec), threads) : makeBackend(picked, run, microBatchOf(run.spec))),
    makeStageBackend: async (_run, setup) => makeStageBackend(picked, setup),
    onChange: render,
  });
  client.start();
}

async function start(): Promise<void> {
  button.disabled = true;
  markJoin('click');
  render({ ...emptyStats(), state: 'warming-up' });
  try {
    const { net, batch, name } = await currentModel();
    $('run-name').textContent = name;
    const forced = new URLSearchParams(location.search).get('backend') as Backend | null;
    markJoin('run-known');
    choice ??= await firstChoice(net, batch, forced);
    markJoin('backend-chosen');
    startClient(choice);
    leaderboard.start();
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
  leaderboard.stop();
  button.textContent = 'Contribute';
  pauseButton.disabled = true;
}

function emptyStats(): WorkerStats {
  return { workerId: null, state: 'idle', backend: 'cpu', samplesPerSec: 0, contributedSamples: 0, tasksDone: 0, tasksRejected: 0, run: null, serving: null, placement: null, allocatedBytes: 0, message: null, activity: null };
}

button.addEventListener('click', () => (client ? stop() : void start()));
pauseButton.addEventListener('click', () => {
  if (!client) return;
  if (client.stats.state === 'paused') client.resume();
  else client.pause();
});
cap.addEventListener('input', () => {
  $('cap-value').textContent = `${cap.value} %`;
  client?.setCap(dutyOf(Number(cap.value) / 100));
});

// ---- Browser id: random, kept in localStorage; the coordinator keeps trust and bans under it ----

const BROWSER_ID_KEY = 'crowdtrain.browserId';

/** This browser's id (made once); a fresh one each time where storage is blocked. */
function browserId(): string {
  try {
    const known = localStorage.getItem(BROWSER_ID_KEY);
    if (known && /^[A-Za-z0-9_-]{8,64}$/.test(known)) return known;
    const made = randomId();
    localStorage.setItem(BROWSER_ID_KEY, made);
    return made;
  } catch {
    return randomId();
  }
}

/** 32 hex digits (getRandomValues: randomUUID needs a secure context, a classroom's http page has none). */
function randomId(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

// ---- Nickname: a friendly random one at first, remembered, editable ----

const NICKNAME_KEY = 'crowdtrain.nickname';
const nicknameInput = $('nickname') as HTMLInputElement;
let nickname: string | null = loadNickname();

function loadNickname(): string | null {
  let stored: string | null = null;
  try {
    stored = localStorage.getItem(NICKNAME_KEY);
  } catch {
    // Storage blocked (private mode, sandboxed frame): a fresh nickname each visit.
  }
  if (stored !== null) return sanitizeNickname(stored); // '' is a person's choice to be anonymous
  const fresh = randomNickname();
  saveNickname(fresh);
  return fresh;
}

function saveNickname(value: string): void {
  try {
    localStorage.setItem(NICKNAME_KEY, value);
  } catch {
    // Not remembered; still used for this visit.
  }
}

/** Shows the nickname as the coordinator stores it, so what the person sees is what others see. */
function showNickname(): void {
  nicknameInput.value = nickname ?? '';
  $('nickname-shown').textContent = nickname ?? 'anonymous';
}

nicknameInput.addEventListener('change', () => {
  nickname = client ? client.setNickname(nicknameInput.value) : sanitizeNickname(nicknameInput.value);
  saveNickname(nickname ?? '');
  showNickname();
  leaderboard.refreshSoon();
});
showNickname();

// ---- Leaderboard: this tab's line, polled while it contributes ----

const LEADERBOARD_EVERY_MS = 3000;
const LEADERBOARD_TOP = 5;

function span(className: string, text: string): HTMLSpanElement {
  const node = document.createElement('span');
  node.className = className;
  node.textContent = text;
  return node;
}

class LeaderboardView {
  private timer: ReturnType<typeof setInterval> | undefined;
  private soon: ReturnType<typeof setTimeout> | undefined;

  start(): void {
    this.stop();
    this.timer = setInterval(() => void this.refresh(), LEADERBOARD_EVERY_MS);
    this.refreshSoon();
  }

  stop(): void {
    clearInterval(this.timer);
    clearTimeout(this.soon);
    this.timer = this.soon = undefined;
  }

  /** After a rename: the coordinator has it once the status message arrives. */
  refreshSoon(): void {
    if (!this.timer) return;
    clearTimeout(this.soon);
    this.soon = setTimeout(() => void this.refresh(), 300);
  }

  private async refresh(): Promise<void> {
    const runId = client?.stats.run?.runId;
    if (!runId) return;
    try {
      const res = await fetch(`/api/runs/${encodeURIComponent(runId)}/leaderboard`);
      if (!res.ok) return;
      const { leaderboard } = (await res.json()) as { leaderboard: LeaderRow[] };
      if (client) this.render(leaderboard);
    } catch {
      // The coordinator is unreachable: the worker's own status already says so.
    }
  }

  private render(rows: LeaderRow[]): void {
    // Rows are per nickname: the tab's line is its nickname's (other tabs of the same name included).
    const me = nickname ?? 'anonymous';
    const at = rows.findIndex((r) => r.nickname === me);
    const line = $('leaderboard-me');
    if (at < 0) {
      line.dataset.rank = '';
      line.textContent = 'Not on the leaderboard yet: your first accepted task puts you there.';
    } else {
      const r = rows[at];
      line.dataset.rank = String(at + 1);
      line.replaceChildren(
        span('rank', `#${at + 1} of ${rows.length}`),
        span('who', r.nickname),
        span('samples', `${r.samples.toLocaleString()} samples`),
        span('rounds', `${r.rounds.toLocaleString()} rounds`),
      );
    }
    $('leaderboard').replaceChildren(
      ...rows.slice(0, LEADERBOARD_TOP).map((r, i) => {
        const li = document.createElement('li');
        li.classList.toggle('me', i === at);
        li.append(span('who', r.nickname), span('what muted', `${r.samples.toLocaleString()} samples · ${r.rounds.toLocaleString()} rounds`));
        return li;
      }),
    );
  }
}

const leaderboard = new LeaderboardView();

// ---- Try the model: the run's latest parameters, fetched at most every 2 s ----

const PARAMS_EVERY_MS = 2000;

/** The line above the try panel, for what it offers (the pad serves 28×28 one-channel images). */
function tryHint(use: ModelUse, classNames: string[] | undefined): string {
  if (use.kind === 'text') return 'Type the start of a sentence: the model being trained right now writes on, and writes better as the class trains it.';
  if (use.kind === 'image' && use.side === 28 && use.channels === 1) {
    const what = classNames ? `Draw one of ${classNames.join(', ')}` : 'Draw a digit';
    return `${what}: the model being trained right now guesses it, and gets better as the class trains it.`;
  }
  return 'The model being trained right now cannot be tried on this page.';
}

class TryModelFeed {
  private readonly models = new Map<string, Pick<RunListing, 'net' | 'dataset'>>();
  private latest: (TryModelSource & { runId: string }) | null = null;
  private wanted: { runId: string; version: number } | undefined;
  /** The last version asked for: a coordinator without the route is not asked again for it. */
  private tried: { runId: string; version: number } | undefined;
  private lastFetch = 0;
  private fetching = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private panel: TryModelPanel | undefined;

  constructor(container: HTMLElement) {
    try {
      this.panel = mountTryModel(container, { getModel: () => this.latest, onUse: (use) => ($('try-hint').textContent = tryHint(use, this.latest?.labels?.classNames)) });
    } catch (err) {
      container.textContent = `The drawing pad is not available in this browser: ${(err as Error).message}`;
    }
  }

  /** The model of a run, when the page already knows it. */
  know(run: Pick<RunListing, 'id' | 'net' | 'dataset'>): void {
    this.models.set(run.id, { net: run.net, dataset: run.dataset });
    if (run.dataset.vocab || run.dataset.text) textRuns.add(run.id);
    try {
      $('model-line').textContent = `Model: ${netLine(run.net)}`;
    } catch {
      $('model-line').textContent = '';
    }
  }

  /** The run is at `version`: fetch its parameters (throttled). */
  want(runId: string, version: number): void {
    if (this.wanted?.runId === runId && this.wanted.version >= version) return;
    this.wanted = { runId, version };
    this.schedule();
  }

  private schedule(): void {
    const w = this.wanted;
    if (!this.panel || !w || this.fetching || this.timer) return;
    if (this.tried?.runId === w.runId && this.tried.version >= w.version) return;
    const wait = Math.max(0, this.lastFetch + PARAMS_EVERY_MS - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.fetch();
    }, wait);
  }

  private async model(runId: string): Promise<Pick<RunListing, 'net' | 'dataset'> | undefined> {
    if (!this.models.has(runId)) {
      const res = await fetch(`/api/runs/${encodeURIComponent(runId)}`);
      if (!res.ok) return undefined;
      this.know((await res.json()) as RunListing);
    }
    return this.models.get(runId);
  }

  private async fetch(): Promise<void> {
    const w = this.wanted!;
    this.fetching = true;
    this.lastFetch = Date.now();
    this.tried = w;
    try {
      const run = await this.model(w.runId);
      const res = await fetch(`/api/runs/${encodeURIComponent(w.runId)}/params`, { cache: 'no-store' });
      if (!run || !res.ok) return;
      const version = Number(res.headers.get(PARAMS_VERSION_HEADER) ?? w.version);
      const params = new Float32Array(await res.arrayBuffer());
      // Parameters of another model (the run changed under us) fail in the panel; the next version fixes it.
      this.latest = { runId: w.runId, net: run.net, labels: run.dataset, params, version };
      this.tried = { runId: w.runId, version: Math.max(version, w.version) };
      $('try-version').textContent = `(round ${version})`;
      this.panel!.redraw();
    } catch {
      // Offline for a moment: the next version tries again.
    } finally {
      this.fetching = false;
      this.schedule();
    }
  }
}

const tryModel = new TryModelFeed($('try-model'));
// Before contributing too: the current run's model, so the pad works from the first visit.
currentRun()
  .then((run) => tryModel.want(run.id, run.version))
  .catch(() => {});

markJoin('page-ready');
