// The admin page: log in with the admin token, create runs (form or YAML), steer them (start,
// pause, resume, stop, delete), watch one live (charts, workers, events), follow sweeps (trials,
// their curves, the best trial's checkpoint) and upload datasets.
// It only talks to the admin REST routes and the /admin Socket.IO namespace; no training here.
import './no-eval.ts'; // first: before any zod schema is parsed
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { io, type Socket } from 'socket.io-client';
import type { MetricPoint, RunState, RunSummary } from '../../shared/protocol.ts';
import type { AdminServerEvents, AdminWorker as WorkerView, ApiErrorBody, RunEventEntry as RunEvent, SpecIssue as Issue, SpecPreview as SpecPreviewView, SweepTrialView, SweepView } from '../../shared/rest-types.ts';
import { DEFAULT_RUN_SPEC, parseRunSpec, RunSpecError, type RunSpec, type RunSpecInput } from '../../shared/run-spec.ts';
import { parseRunSpecText, runSpecToYaml } from '../../shared/run-spec-text.ts';
import classroomYaml from '../../examples/classroom.yaml?raw';

// ---- What the coordinator answers (the REST and /admin namespace shapes) ----


/** "layers 2–3 · stage 2/2 · replica 1", or a standby, or nothing for a data-parallel run. */
function placementText(w: WorkerView, stages: number): string {
  if (stages <= 1 || !w.connected) return '–';
  const p = w.placement;
  if (!p) return 'standby';
  const layers = p.endLayer - p.firstLayer === 1 ? `layer ${p.firstLayer + 1}` : `layers ${p.firstLayer + 1}–${p.endLayer}`;
  return `${layers} · stage ${p.stage + 1}/${p.stages} · replica ${p.replica + 1}`;
}

/** An entry of GET /api/datasets (server/data/registry.ts DatasetSummary). */
interface DatasetView {
  name: string;
  kind: 'images' | 'table' | 'text';
  features: number;
  classes: number;
  /** Examples; for a text, its windows of the default context. */
  trainCount: number;
  testCount: number;
  exampleShape?: number[];
  classNames?: string[];
  /** A text: its distinct characters, and its characters per split. */
  vocabSize?: number;
  characters?: { train: number; test: number };
}

// ---- Small helpers ----

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: { text?: string; className?: string } = {}, ...children: Node[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props.text !== undefined) node.textContent = props.text;
  if (props.className) node.className = props.className;
  node.append(...children);
  return node;
}

const fmt = {
  loss: (v: number | null) => (v === null ? '–' : v.toFixed(4)),
  accuracy: (v: number | null) => (v === null ? '–' : `${(100 * v).toFixed(2)} %`),
  int: (v: number) => Math.round(v).toLocaleString(),
  time: (ms: number) => new Date(ms).toLocaleTimeString(),
  /** 812 B, 3.4 kB, 1.2 MB, 5.0 GB (powers of 1000, as network figures are given). */
  bytes: (v: number) => {
    const units = ['B', 'kB', 'MB', 'GB', 'TB'];
    let u = 0;
    while (Math.abs(v) >= 1000 && u < units.length - 1) (v /= 1000), u++;
    return `${u === 0 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
  },
};

/** Axis ticks: 0.25, 1.5, 12, 3.4k, 1.2M. */
function compact(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  if (a >= 10 || v === 0) return String(+v.toFixed(0));
  return String(+v.toPrecision(2));
}

class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody,
  ) {
    super(body.message ?? `the coordinator answered ${status}${body.error ? ` (${body.error})` : ''}`);
  }
}

/** fetch, JSON in and out; a 401 outside the login itself means the session has ended. */
async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(path, { credentials: 'same-origin', ...init });
  if (res.status === 204) return undefined as T;
  const body = (await res.json().catch(() => ({}))) as unknown;
  if (!res.ok) {
    if (res.status === 401 && path !== '/api/admin/login') showLogin('Your session has ended: log in again.');
    throw new ApiFailure(res.status, (body ?? {}) as ApiErrorBody);
  }
  return body as T;
}

const postJson = <T>(path: string, body: unknown) => api<T>(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

function setMessage(node: HTMLElement, text: string, error = false): void {
  node.textContent = text;
  node.classList.toggle('error', error);
}

function fillIssues(list: HTMLElement, issues: Issue[]): void {
  list.replaceChildren(...issues.map((i) => el('li', {}, el('code', { text: i.path || '(spec)' }), document.createTextNode(` ${i.message}`))));
}

function issuesOf(err: unknown): Issue[] {
  if (err instanceof ApiFailure) return err.body.issues?.length ? err.body.issues : [{ path: '', message: err.message }];
  if (err instanceof RunSpecError) return err.issues;
  return [{ path: '', message: (err as Error).message }];
}

// ---- Live charts (uPlot), one series each; the x axis is the round ----

const MAX_CHART_POINTS = 5000;

class LiveChart {
  private xs: number[] = [];
  private ys: number[] = [];
  private plot: uPlot | undefined;
  private readonly observer: ResizeObserver;

  constructor(
    private readonly container: HTMLElement,
    private readonly caption: HTMLElement,
    /** range: fixed y limits, or 'zero' for 0 to a little above the largest value. */
    private readonly opts: { label: string; color: string; range?: [number, number] | 'zero'; value: (v: number) => string; tick: (v: number) => string },
  ) {
    this.observer = new ResizeObserver(() => this.fit());
    this.observer.observe(container);
  }

  reset(points: [number, number][]): void {
    this.xs = points.map((p) => p[0]);
    this.ys = points.map((p) => p[1]);
    this.draw();
  }

  push(x: number, y: number): void {
    this.xs.push(x);
    this.ys.push(y);
    if (this.xs.length > MAX_CHART_POINTS) {
      this.xs.splice(0, this.xs.length - MAX_CHART_POINTS);
      this.ys.splice(0, this.ys.length - MAX_CHART_POINTS);
    }
    this.draw();
  }

  private draw(): void {
    this.container.dataset.points = String(this.xs.length);
    const last = this.ys.at(-1);
    this.caption.textContent = last === undefined ? '' : this.opts.value(last);
    if (!this.plot) this.create();
    else this.plot.setData([this.xs, this.ys]);
  }

  private create(): void {
    const width = this.container.clientWidth;
    if (width === 0) return; // hidden: created on the first resize that gives it a size
    const muted = getComputedStyle(document.documentElement).getPropertyValue('--muted').trim() || '#5b6475';
    const axis = { stroke: muted, grid: { stroke: 'rgba(128,128,128,0.15)' }, ticks: { stroke: 'rgba(128,128,128,0.25)' }, font: '11px system-ui, sans-serif' };
    const { range, tick } = this.opts;
    this.plot = new uPlot(
      {
        width,
        height: this.container.clientHeight || 150,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: false }, y: range === 'zero' ? { range: (_u, _min, max) => [0, max > 0 ? max * 1.15 : 1] } : range ? { range } : { auto: true } },
        series: [{ label: 'round' }, { label: this.opts.label, stroke: this.opts.color, width: 2, fill: `${this.opts.color}18` }],
        axes: [
          { ...axis, size: 28 },
          { ...axis, size: 44, values: (_u, splits) => splits.map((v) => tick(v)) },
        ],
      },
      [this.xs, this.ys],
      this.container,
    );
  }

  private fit(): void {
    const width = this.container.clientWidth;
    if (width === 0) return;
    if (!this.plot) this.create();
    else this.plot.setSize({ width, height: this.container.clientHeight || 150 });
  }
}

// ---- Login and session ----

let socket: Socket<AdminServerEvents> | undefined;
/** The socket pushes `runs` on state changes only: counters and epochs come from this poll. */
let runsPoll: ReturnType<typeof setInterval> | undefined;
const RUNS_POLL_MS = 2000;

function showLogin(message = ''): void {
  socket?.disconnect();
  socket = undefined;
  clearInterval(runsPoll);
  runsPoll = undefined;
  $('console').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  setMessage($('login-error'), message, message !== '');
  setConnection('offline');
  $<HTMLInputElement>('token').focus();
}

function enterConsole(): void {
  $('login').hidden = true;
  $('console').hidden = false;
  $('logout').hidden = false;
  setMessage($('login-error'), '');
  connectSocket();
  void loadRuns();
  void sweepPanel.load();
  void loadDatasets();
  schedulePreview(0);
  runsPoll ??= setInterval(() => {
    void loadRuns();
    void sweepPanel.load();
  }, RUNS_POLL_MS);
}

async function login(token: string): Promise<void> {
  const errorBox = $('login-error');
  setMessage(errorBox, '');
  try {
    await postJson('/api/admin/login', { token });
    $<HTMLInputElement>('token').value = '';
    enterConsole();
  } catch (err) {
    const status = err instanceof ApiFailure ? err.status : 0;
    const text =
      status === 401 ? 'That token is not the admin token.' : status === 429 ? 'Too many attempts: wait a minute before trying again.' : `Could not log in: ${(err as Error).message}`;
    setMessage(errorBox, text, true);
    $<HTMLInputElement>('token').select();
  }
}

function setConnection(state: 'live' | 'reconnecting' | 'offline'): void {
  const node = $('connection');
  node.dataset.state = state;
  node.textContent = state === 'live' ? '● live' : state === 'reconnecting' ? 'reconnecting…' : 'offline';
}

function connectSocket(): void {
  if (socket) return;
  const s: Socket<AdminServerEvents> = io('/admin', { withCredentials: true, transports: ['websocket'] });
  socket = s;
  let connectedBefore = false;
  s.on('connect', () => {
    setConnection('live');
    // What happened while the socket was down: take it from REST again.
    if (connectedBefore) {
      void loadRuns();
      if (selected) void openRun(selected);
    }
    connectedBefore = true;
  });
  s.on('disconnect', () => setConnection('reconnecting'));
  s.on('connect_error', (err) => {
    if ((err as Error & { data?: { code?: string } }).data?.code === 'unauthorized') showLogin('Log in to watch the runs.');
    else setConnection('reconnecting');
  });
  s.on('runs', (runs) => renderRuns(runs));
  s.on('metric', ({ runId, point }) => {
    runProgress(runId, point);
    detail.metric(runId, point);
  });
  s.on('evaluation', ({ runId, point }) => {
    runProgress(runId, point);
    detail.metric(runId, point);
  });
  s.on('workers', ({ runId, workers }) => detail.workers(runId, workers));
  s.on('event', (e) => {
    detail.event(e);
    if ((e.kind === 'strike' || e.kind === 'ban' || e.kind === 'check') && e.runId === selected) void loadTrust(e.runId);
  });
}

// ---- Runs list ----

type Verb = 'start' | 'pause' | 'resume' | 'stop' | 'delete';
const VERBS: Verb[] = ['start', 'pause', 'resume', 'stop', 'delete'];
const VERB_LABEL: Record<Verb, string> = { start: 'Start', pause: 'Pause', resume: 'Resume', stop: 'Stop', delete: 'Delete' };
// As the coordinator allows them; it answers 409 to anything else.
const VERB_ALLOWED: Record<Verb, (s: RunState) => boolean> = {
  start: (s) => s === 'waiting' || s === 'stopped' || s === 'completed',
  pause: (s) => s === 'running' || s === 'waiting',
  resume: (s) => s === 'paused',
  stop: (s) => s === 'running' || s === 'paused' || s === 'waiting',
  delete: () => true,
};

interface RunRow {
  tr: HTMLTableRowElement;
  cells: Record<'name' | 'state' | 'round' | 'loss' | 'accuracy' | 'workers' | 'sps' | 'efficiency' | 'traffic', HTMLElement>;
  /** The run's weight among running runs (its spec's share), editable in place. */
  share: HTMLInputElement;
  buttons: Record<Verb, HTMLButtonElement>;
  run: RunSummary;
}

const rows = new Map<string, RunRow>();
let selected: string | undefined;

/** Pipeline stages of the selected run (1: data parallelism only). */
function selectedStages(): number {
  const run = selected ? rows.get(selected)?.run : undefined;
  return (run?.spec as { parallelism?: { stages: number } } | undefined)?.parallelism?.stages ?? 1;
}

function makeRow(run: RunSummary): RunRow {
  const tr = el('tr');
  tr.dataset.runId = run.id;
  const name = el('a', { text: run.name });
  name.href = `#run=${encodeURIComponent(run.id)}`;
  const state = el('span', { className: 'state' });
  const cells = { name, state, round: el('td', { className: 'num round' }), loss: el('td', { className: 'num' }), accuracy: el('td', { className: 'num' }), workers: el('td', { className: 'num' }), sps: el('td', { className: 'num' }), efficiency: el('td', { className: 'num efficiency' }), traffic: el('td', { className: 'num traffic' }) };
  const share = el('input', { className: 'share' });
  share.type = 'number';
  share.min = '0';
  share.step = 'any';
  share.title = 'Its weight among running runs: workers are shared in proportion (after each run has its minWorkers), and move at round boundaries';
  share.addEventListener('click', (e) => e.stopPropagation());
  share.addEventListener('change', () => void setShare(run.id, share));
  const buttons = {} as Record<Verb, HTMLButtonElement>;
  const actions = el('td', { className: 'actions' });
  for (const verb of VERBS) {
    const b = el('button', { text: VERB_LABEL[verb], className: verb === 'delete' ? 'small danger' : 'small secondary' });
    b.type = 'button';
    b.addEventListener('click', (e) => {
      e.stopPropagation();
      void act(run.id, verb);
    });
    buttons[verb] = b;
    actions.append(b);
  }
  const board = el('a', { text: 'Open board', className: 'board-link' });
  board.href = boardUrl(run.id);
  board.target = '_blank';
  board.rel = 'noopener';
  board.title = 'The classroom board of this run, for a projector';
  board.addEventListener('click', (e) => e.stopPropagation());
  actions.append(board);
  tr.append(el('td', {}, name), el('td', {}, state), cells.round, cells.loss, cells.accuracy, cells.workers, el('td', { className: 'num' }, share), cells.sps, cells.efficiency, cells.traffic, actions);
  tr.addEventListener('click', () => selectRun(run.id));
  return { tr, cells, share, buttons, run };
}

const boardUrl = (runId: string) => `/board/${encodeURIComponent(runId)}`;

function updateRow(row: RunRow, run: RunSummary): void {
  row.run = run;
  row.tr.dataset.state = run.state;
  row.cells.name.textContent = run.name;
  row.cells.state.textContent = run.state;
  row.cells.state.dataset.state = run.state;
  row.cells.round.textContent = String(run.version);
  row.cells.loss.textContent = fmt.loss(run.loss);
  row.cells.accuracy.textContent = fmt.accuracy(run.accuracy);
  row.cells.workers.textContent = String(run.workers);
  if (document.activeElement !== row.share) row.share.value = String(run.spec.share ?? 1);
  row.cells.sps.textContent = fmt.int(run.samplesPerSec);
  // Committed examples/s over the sum of the workers' measured speeds: how much of the grid trains.
  row.cells.efficiency.textContent = run.efficiency === null ? '–' : `${Math.round(run.efficiency * 100)} %`;
  row.cells.efficiency.title = run.efficiency === null ? 'not measured yet' : `${fmt.int(run.samplesPerSec)} of the ${fmt.int(run.offeredSamplesPerSec)} examples/s the workers offer`;
  // Bytes per example folded, each way: what compression and local steps save on the wire.
  const t = run.traffic;
  row.cells.traffic.textContent = t.upBytesPerExample === null ? '–' : `${fmt.bytes(t.upBytesPerExample)} ↑ ${fmt.bytes(t.downBytesPerExample ?? 0)} ↓`;
  row.cells.traffic.title = `${fmt.bytes(t.upBytes)} from workers, ${fmt.bytes(t.downBytes)} to them (${fmt.bytes(t.snapshotBytes)} of it snapshots over HTTP) since the coordinator started`;
  for (const verb of VERBS) row.buttons[verb].disabled = !VERB_ALLOWED[verb](run.state);
  if (run.id === selected) detail.summary(run);
}

/** Upserts one run into the table; `all` true means `runs` is the whole list (drop the rest). */
function renderRuns(runs: RunSummary[], all = true): void {
  const body = $('runs').querySelector('tbody')!;
  const seen = new Set<string>();
  for (const run of runs) {
    seen.add(run.id);
    let row = rows.get(run.id);
    if (!row) {
      row = makeRow(run);
      rows.set(run.id, row);
      body.prepend(row.tr); // newest first
    }
    updateRow(row, run);
  }
  if (all) {
    for (const [id, row] of rows) {
      if (seen.has(id)) continue;
      row.tr.remove();
      rows.delete(id);
      if (id === selected) selectRun(undefined);
    }
  }
  $('runs-empty').hidden = rows.size > 0;
  if (!selected && rows.size > 0) selectRun(fromHash() ?? pickDefault());
}

/** `runs` arrives on state changes only; each round's metric point moves the row's numbers. */
function runProgress(runId: string, point: MetricPoint): void {
  const row = rows.get(runId);
  if (!row) return;
  if (point.version < row.run.version) {
    // An evaluation of an earlier round that finished late: the latest accuracy, nothing else.
    if (point.accuracy !== null) updateRow(row, { ...row.run, accuracy: point.accuracy });
    return;
  }
  updateRow(row, {
    ...row.run,
    version: point.version,
    loss: point.loss ?? row.run.loss,
    accuracy: point.accuracy ?? row.run.accuracy,
    samplesPerSec: point.samplesPerSec,
    workers: point.workers,
    samples: point.samples,
  });
}

function pickDefault(): string | undefined {
  const runs = [...rows.values()].map((r) => r.run);
  return (runs.filter((r) => r.state === 'running').at(-1) ?? runs.at(-1))?.id;
}

async function loadRuns(): Promise<void> {
  try {
    const { runs } = await api<{ runs: RunSummary[] }>('/api/runs');
    // The REST list is oldest first; rows are prepended, so the newest ends on top.
    renderRuns([...runs].sort((a, b) => a.createdAt.localeCompare(b.createdAt)));
    setMessage($('runs-error'), '');
  } catch (err) {
    setMessage($('runs-error'), `Could not list the runs: ${(err as Error).message}`, true);
  }
}

async function act(id: string, verb: Verb): Promise<void> {
  const row = rows.get(id);
  const errorBox = $('runs-error');
  setMessage(errorBox, '');
  if (verb === 'delete' && !confirm(`Delete the run "${row?.run.name ?? id}"? Workers are sent away; its checkpoints stay on disk.`)) return;
  try {
    if (verb === 'delete') {
      await api(`/api/runs/${encodeURIComponent(id)}`, { method: 'DELETE' });
      renderRuns([...rows.values()].filter((r) => r.run.id !== id).map((r) => r.run));
    } else {
      const { run } = await api<{ run: RunSummary }>(`/api/runs/${encodeURIComponent(id)}/${verb}`, { method: 'POST' });
      renderRuns([run], false);
    }
  } catch (err) {
    setMessage(errorBox, `${VERB_LABEL[verb]} ${row?.run.name ?? id}: ${(err as Error).message}`, true);
  }
}

/** Sends a run's new share (PATCH /api/runs/:id); a refused one is named in the runs' error line and the field put back. */
async function setShare(id: string, input: HTMLInputElement): Promise<void> {
  const row = rows.get(id);
  const errorBox = $('runs-error');
  setMessage(errorBox, '');
  try {
    const { run } = await api<{ run: RunSummary }>(`/api/runs/${encodeURIComponent(id)}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ share: input.value === '' ? null : Number(input.value) }) });
    renderRuns([run], false);
  } catch (err) {
    setMessage(errorBox, `Share of ${row?.run.name ?? id}: ${(err as Error).message}`, true);
    if (row) input.value = String(row.run.spec.share ?? 1);
  }
}

function fromHash(): string | undefined {
  const m = /^#run=(.+)$/.exec(location.hash);
  const id = m ? decodeURIComponent(m[1]) : undefined;
  return id && rows.has(id) ? id : undefined;
}

function selectRun(id: string | undefined): void {
  if (id === selected) return;
  selected = id;
  for (const [rid, row] of rows) row.tr.setAttribute('aria-selected', String(rid === id));
  if (id && location.hash !== `#run=${encodeURIComponent(id)}`) history.replaceState(null, '', `#run=${encodeURIComponent(id)}`);
  if (id) void openRun(id);
  else detail.close();
}

// ---- Run detail: charts, workers, events ----

const MAX_EVENTS = 200;

class RunDetail {
  private runId: string | undefined;
  /** Pushes that arrive while the REST snapshot loads; applied after it. */
  private pending: (() => void)[] | undefined;
  private lastPoint: { version: number; time: number } | undefined;
  /** Newest version on the accuracy chart (an evaluation can arrive after its round's point). */
  private lastEvaluated = 0;
  private eventKeys = new Set<string>();
  private readonly charts: Record<'loss' | 'accuracy' | 'sps' | 'workers', LiveChart>;

  constructor() {
    const chart = (id: string, label: string, color: string, value: (v: number) => string, tick: (v: number) => string, range?: [number, number] | 'zero') => {
      const container = $(id);
      const caption = el('span', { className: 'latest' });
      container.parentElement!.querySelector('figcaption')!.append(caption);
      return new LiveChart(container, caption, { label, color, value, tick, range });
    };
    this.charts = {
      loss: chart('loss-chart', 'loss', '#2f6fed', (v) => v.toFixed(3), compact),
      accuracy: chart('accuracy-chart', 'test accuracy', '#19a463', (v) => fmt.accuracy(v), (v) => `${Math.round(100 * v)}%`, [0, 1]),
      sps: chart('sps-chart', 'samples/s', '#c07a12', fmt.int, compact, 'zero'),
      workers: chart('workers-chart', 'workers', '#8a4fd8', (v) => String(Math.round(v)), (v) => (Number.isInteger(v) ? String(v) : ''), 'zero'),
    };
  }

  async open(id: string): Promise<void> {
    this.runId = id;
    this.pending = [];
    $('run-detail').hidden = false;
    const base = `/api/runs/${encodeURIComponent(id)}`;
    $<HTMLAnchorElement>('checkpoint-link').href = `${base}/checkpoint`;
    $<HTMLAnchorElement>('board-link').href = boardUrl(id);
    try {
      const [run, { workers }, { events }] = await Promise.all([
        api<RunSummary & { metrics: MetricPoint[] }>(base),
        api<{ workers: WorkerView[] }>(`${base}/workers`),
        api<{ events: RunEvent[] }>(`${base}/events?limit=${MAX_EVENTS}`),
      ]);
      if (this.runId !== id) return; // another run was selected meanwhile
      this.summary(run);
      this.resetMetrics(run.metrics);
      this.renderWorkers(workers);
      this.resetEvents(events);
      void loadTrust(id);
    } catch (err) {
      if (this.runId === id) setMessage($('detail-summary'), `Could not load the run: ${(err as Error).message}`, true);
    } finally {
      const queued = this.runId === id ? this.pending : undefined;
      this.pending = undefined;
      for (const apply of queued ?? []) apply();
    }
  }

  close(): void {
    this.runId = undefined;
    $('run-detail').hidden = true;
  }

  summary(run: RunSummary): void {
    $('detail-name').textContent = run.name;
    const state = $('detail-state');
    state.textContent = run.state;
    state.dataset.state = run.state;
    const s = run.spec;
    const c = run.counters;
    const what = [`id ${run.id}`, s.model.kind === 'mlp' ? `${s.model.layers.join('-')} ${s.model.activation}` : `${s.model.layers.length} layers: ${s.model.layers.map((l) => l.kind).join(', ')}`, `${s.optimizer.kind} lr ${s.optimizer.lr}`, `${s.batchPerTask} examples/task`, `dataset ${s.dataset}`];
    const progress = [
      `round ${run.version}`,
      `${fmt.int(run.samples)} samples (epoch ${run.epochs.toFixed(2)})`,
      `results: ${c.folded} folded, ${c.late} late, ${c.rejected} rejected`,
      `${c.roundsTimedOut} rounds closed at their deadline`,
    ];
    if (run.stopReason) progress.push(`${run.state}: ${run.stopReason}`);
    const box = $('detail-summary');
    box.classList.remove('error');
    box.replaceChildren(el('div', { text: what.join(' · ') }), el('div', { text: progress.join(' · ') }));
  }

  metric(runId: string, point: MetricPoint): void {
    if (runId !== this.runId) return;
    if (this.pending) {
      this.pending.push(() => this.metric(runId, point));
      return;
    }
    const last = this.lastPoint;
    const evaluation = point.accuracy !== null && point.version > this.lastEvaluated;
    if (evaluation) this.lastEvaluated = point.version;
    if (last && (point.version < last.version || (point.version === last.version && point.time <= last.time))) {
      // Already shown; an evaluation that finished after its round's point was sent comes again.
      if (evaluation) this.charts.accuracy.push(point.version, point.accuracy!);
      return;
    }
    this.lastPoint = { version: point.version, time: point.time };
    if (point.loss !== null) this.charts.loss.push(point.version, point.loss);
    if (evaluation) this.charts.accuracy.push(point.version, point.accuracy!);
    this.charts.sps.push(point.version, point.samplesPerSec);
    this.charts.workers.push(point.version, point.workers);
  }

  workers(runId: string, workers: WorkerView[]): void {
    if (runId !== this.runId) return;
    if (this.pending) this.pending.push(() => this.workers(runId, workers));
    else this.renderWorkers(workers);
  }

  event(e: RunEvent): void {
    if (e.runId !== this.runId) return;
    if (this.pending) this.pending.push(() => this.event(e));
    else this.addEvent(e, true);
  }

  private resetMetrics(points: MetricPoint[]): void {
    const series = (pick: (p: MetricPoint) => number | null): [number, number][] =>
      points.flatMap((p) => {
        const y = pick(p);
        return y === null ? [] : [[p.version, y] as [number, number]];
      });
    this.charts.loss.reset(series((p) => p.loss));
    this.charts.accuracy.reset(series((p) => p.accuracy));
    this.charts.sps.reset(series((p) => p.samplesPerSec));
    this.charts.workers.reset(series((p) => p.workers));
    const last = points.at(-1);
    this.lastPoint = last ? { version: last.version, time: last.time } : undefined;
    this.lastEvaluated = points.findLast((p) => p.accuracy !== null)?.version ?? 0;
  }

  private renderWorkers(workers: WorkerView[]): void {
    const sorted = [...workers].sort((a, b) => Number(b.connected) - Number(a.connected) || new Date(b.lastSeen).getTime() - new Date(a.lastSeen).getTime());
    const body = $('workers-table').querySelector('tbody')!;
    body.replaceChildren(
      ...sorted.map((w) => {
        const lastSeen = new Date(w.lastSeen).getTime();
        const tr = el(
          'tr',
          { className: w.connected ? '' : 'gone' },
          el('td', {}, el('code', { text: w.id })),
          el('td', { text: w.nickname ?? '–' }),
          el('td', { text: w.adapter || '–' }),
          el('td', { text: w.backend }),
          el('td', { text: placementText(w, selectedStages()) }),
          el('td', { className: 'num', text: w.allocatedBytes ? `${(w.allocatedBytes / 2 ** 20).toFixed(2)} MiB` : '–' }),
          el('td', { className: 'num', text: fmt.int(w.samplesPerSec) }),
          el('td', { className: 'num', text: String(w.tasksDone) }),
          el('td', { className: 'num', text: String(w.rejected) }),
          el('td', { text: w.connected ? 'now' : fmt.time(lastSeen) }),
        );
        tr.dataset.workerId = w.id;
        return tr;
      }),
    );
    $('workers-empty').hidden = workers.length > 0;
  }

  private resetEvents(events: RunEvent[]): void {
    $('events').replaceChildren();
    this.eventKeys.clear();
    // The store answers newest first; oldest first here, since each is put on top.
    for (const e of [...events].reverse().sort((a, b) => a.time - b.time)) this.addEvent(e, true);
  }

  /** Newest first, at most MAX_EVENTS shown. */
  private addEvent(e: RunEvent, newest: boolean): void {
    const key = `${e.time}|${e.kind}|${e.workerId ?? ''}|${e.message}`;
    if (this.eventKeys.has(key)) return;
    this.eventKeys.add(key);
    const when = el('time', { text: fmt.time(e.time) });
    when.dateTime = new Date(e.time).toISOString();
    const kind = el('span', { className: 'kind', text: e.kind });
    kind.dataset.kind = e.kind;
    const li = el('li', {}, when, kind, el('span', { text: e.message }));
    const list = $('events');
    if (newest) list.prepend(li);
    else list.append(li);
    while (list.children.length > MAX_EVENTS) list.lastElementChild!.remove();
    if (this.eventKeys.size > 4 * MAX_EVENTS) this.eventKeys = new Set([...this.eventKeys].slice(-2 * MAX_EVENTS));
  }
}

const detail = new RunDetail();
const openRun = (id: string) => detail.open(id);

// ---- Sweeps: the list, a sweep's trials, and their curves on one chart ----
// The list and the selected sweep come from GET /api/sweeps(/:id) with the runs' poll; each
// trial's curve from its run's metric series (GET /api/runs/:id), fetched again only while the
// trial runs. A trial's run is an ordinary run: its row in the runs table steers it.

const TRIAL_COLORS = ['#2f6fed', '#19a463', '#c07a12', '#8a4fd8', '#d33f7a', '#0f9bb0', '#7a8b12', '#e0672f'];
/** A trial the policy (or the admin) stopped is drawn in grey: the race goes on without it. */
const STOPPED_COLOR = '#9aa0aa';

/** The sweep's metric and goal, from its parsed spec (shared/sweep-spec.ts SweepSettings). */
function sweepMetric(s: SweepView): { metric: 'accuracy' | 'loss'; goal: 'maximize' | 'minimize' } {
  const settings = (s.spec as { sweep?: { metric?: 'accuracy' | 'loss'; goal?: 'maximize' | 'minimize' } } | null)?.sweep;
  const metric = settings?.metric ?? 'accuracy';
  return { metric, goal: settings?.goal ?? (metric === 'accuracy' ? 'maximize' : 'minimize') };
}

const metricText = (metric: 'accuracy' | 'loss', v: number | null) => (metric === 'accuracy' ? fmt.accuracy(v) : fmt.loss(v));

/** 0.001, 128, adam: three significant digits, no exponent above 1e-6. */
function valueText(v: number | string | boolean): string {
  return typeof v === 'number' ? String(Number(v.toPrecision(3))) : String(v);
}

/** "optimizer.lr 0.001, model.hidden 64": the trial's swept values, as its legend. */
function trialLabel(t: SweepTrialView): string {
  const values = Object.entries(t.values);
  return values.length === 0 ? `trial ${t.index}` : values.map(([k, v]) => `${k} ${valueText(v)}`).join(', ');
}

/** The points of a trial's curve: its evaluations of the sweep's metric, by round. */
function curveOf(points: MetricPoint[], metric: 'accuracy' | 'loss'): [number, number][] {
  return points.flatMap((p) => {
    const y = metric === 'accuracy' ? p.accuracy : p.evalLoss;
    return y === null || y === undefined ? [] : [[p.version, y] as [number, number]];
  });
}

class SweepPanel {
  private sweeps: SweepView[] = [];
  private selected: string | undefined;
  /** Each trial run's curve; `final` once the trial ended and its whole series was fetched. */
  private curves = new Map<string, { points: MetricPoint[]; final: boolean }>();
  private plot: uPlot | undefined;
  /** What the plot was built for (series, colours): another build when it changes. */
  private plotKey = '';
  private loading = false;
  /** A sweep was chosen while a load was under way: load again when it ends. */
  private again = false;
  private readonly chart = $('sweep-chart');

  constructor() {
    new ResizeObserver(() => {
      const width = this.chart.clientWidth;
      if (width > 0) this.plot?.setSize({ width, height: this.chart.clientHeight || 240 });
    }).observe(this.chart);
  }

  /** The list, then the selected sweep with its trials' curves. One load at a time. */
  async load(): Promise<void> {
    if (this.loading) {
      this.again = true;
      return;
    }
    this.loading = true;
    this.again = false;
    try {
      const { sweeps } = await api<{ sweeps: SweepView[] }>('/api/sweeps');
      this.sweeps = sweeps;
      if (!this.selected || !sweeps.some((s) => s.id === this.selected)) this.selected = (sweeps.filter((s) => s.state === 'running').at(-1) ?? sweeps.at(-1))?.id;
      this.renderList();
      const sweep = sweeps.find((s) => s.id === this.selected);
      if (sweep) await this.showSweep(sweep);
      else $('sweep-detail').hidden = true;
      setMessage($('sweeps-error'), '');
    } catch (err) {
      setMessage($('sweeps-error'), `Could not list the sweeps: ${(err as Error).message}`, true);
    } finally {
      this.loading = false;
      if (this.again) void this.load();
    }
  }

  private select(id: string): void {
    if (id === this.selected) return;
    this.selected = id;
    this.curves.clear();
    void this.load();
  }

  private renderList(): void {
    $('sweeps-empty').hidden = this.sweeps.length > 0;
    // Newest first, as the runs.
    const rowsOut = [...this.sweeps].reverse().map((s) => {
      const { metric } = sweepMetric(s);
      const state = el('span', { className: 'state', text: s.state });
      state.dataset.state = s.state;
      const best = s.best ? `trial ${s.best.index}: ${metricText(metric, s.best.metric)}` : '–';
      const tr = el('tr', {}, el('td', { text: s.name }), el('td', {}, state), el('td', { className: 'num', text: String(s.trials.length) }), el('td', { text: best }), el('td', { text: new Date(s.createdAt).toLocaleString() }));
      tr.dataset.sweepId = s.id;
      tr.setAttribute('aria-selected', String(s.id === this.selected));
      tr.addEventListener('click', () => this.select(s.id));
      return tr;
    });
    $('sweeps').querySelector('tbody')!.replaceChildren(...rowsOut);
  }

  private async showSweep(s: SweepView): Promise<void> {
    const { metric, goal } = sweepMetric(s);
    $('sweep-detail').hidden = false;
    $('sweep-name').textContent = s.name;
    const state = $('sweep-state');
    state.textContent = s.state;
    state.dataset.state = s.state;
    const stopped = s.trials.filter((t) => t.state === 'stopped').length;
    const summary = [`id ${s.id}`, `${metric} (${goal})`, `${s.trials.length} trials, ${stopped} stopped`, s.best ? `best: trial ${s.best.index}, ${metricText(metric, s.best.metric)}` : 'no best yet'];
    if (s.reason) summary.push(`${s.state}: ${s.reason}`);
    $('sweep-summary').textContent = summary.join(' · ');
    const link = $<HTMLAnchorElement>('sweep-best-checkpoint');
    link.hidden = !s.best;
    if (s.best) link.href = `/api/runs/${encodeURIComponent(s.best.runId)}/checkpoint`;
    $<HTMLAnchorElement>('sweep-board-link').href = `/board/sweep/${encodeURIComponent(s.id)}`;

    $('sweep-trials').querySelector('tbody')!.replaceChildren(
      ...s.trials.map((t) => {
        const st = el('span', { className: 'state', text: t.state });
        st.dataset.state = t.state;
        const tr = el('tr', { className: s.best?.index === t.index ? 'best' : '' }, el('td', { className: 'num', text: String(t.index) }), el('td', { text: trialLabel(t) }), el('td', { className: 'num', text: metricText(metric, t.metric) }), el('td', {}, st), el('td', { className: 'reason', text: t.stoppedReason ?? '–' }));
        tr.dataset.trial = String(t.index);
        tr.dataset.state = t.state;
        tr.dataset.runId = t.runId;
        return tr;
      }),
    );

    // Curves: a running trial's series again each time, an ended one's once.
    await Promise.all(
      s.trials
        .filter((t) => t.runId !== '' && !this.curves.get(t.runId)?.final)
        .map(async (t) => {
          try {
            const run = await api<{ metrics: MetricPoint[] }>(`/api/runs/${encodeURIComponent(t.runId)}`);
            this.curves.set(t.runId, { points: run.metrics, final: t.state !== 'running' });
          } catch {
            // A deleted trial run keeps its row, without a curve.
          }
        }),
    );
    if (s.id !== this.selected) return;
    $('sweep-chart-title').textContent = metric === 'accuracy' ? "Trials' test accuracy by round" : "Trials' held-out loss by round";
    this.draw(s, metric);
  }

  private draw(s: SweepView, metric: 'accuracy' | 'loss'): void {
    const drawn = s.trials.map((t) => ({ t, curve: curveOf(this.curves.get(t.runId)?.points ?? [], metric) })).filter((c) => c.curve.length > 0);
    const color = (t: SweepTrialView) => (t.state === 'stopped' ? STOPPED_COLOR : TRIAL_COLORS[t.index % TRIAL_COLORS.length]);
    $('sweep-legend').replaceChildren(
      ...s.trials.map((t) => {
        const swatch = el('span', { className: 'swatch' });
        swatch.style.color = color(t); // CSSOM, which the page's CSP allows
        const li = el('li', {}, swatch, el('span', { text: `${t.index}: ${trialLabel(t)}` }));
        li.dataset.state = t.state;
        return li;
      }),
    );
    this.chart.dataset.series = String(drawn.length);
    this.chart.dataset.points = String(drawn.reduce((n, c) => n + c.curve.length, 0));
    if (drawn.length === 0) {
      this.plot?.destroy();
      this.plot = undefined;
      this.plotKey = '';
      return;
    }
    const data = uPlot.join(drawn.map((c) => [c.curve.map((p) => p[0]), c.curve.map((p) => p[1])] as uPlot.AlignedData));
    const key = `${s.id}|${metric}|${drawn.map((c) => `${c.t.index}:${color(c.t)}`).join(',')}`;
    if (this.plot && key === this.plotKey) {
      this.plot.setData(data);
      return;
    }
    this.plot?.destroy();
    this.plot = undefined;
    this.plotKey = key;
    const width = this.chart.clientWidth;
    if (width === 0) return;
    const muted = getComputedStyle(document.documentElement).getPropertyValue('--muted').trim() || '#5b6475';
    const axis = { stroke: muted, grid: { stroke: 'rgba(128,128,128,0.15)' }, ticks: { stroke: 'rgba(128,128,128,0.25)' }, font: '11px system-ui, sans-serif' };
    this.plot = new uPlot(
      {
        width,
        height: this.chart.clientHeight || 240,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: false }, y: metric === 'accuracy' ? { range: [0, 1] } : { auto: true } },
        series: [{ label: 'round' }, ...drawn.map((c) => ({ label: trialLabel(c.t), stroke: color(c.t), width: c.t.state === 'stopped' ? 1.5 : 2, spanGaps: true }))],
        axes: [
          { ...axis, size: 28 },
          { ...axis, size: 44, values: (_u: uPlot, splits: number[]) => splits.map((v) => (metric === 'accuracy' ? `${Math.round(100 * v)}%` : compact(v))) },
        ],
      },
      data,
      this.chart,
    );
  }
}

const sweepPanel = new SweepPanel();

// ---- Create a run: the form and the YAML box ----

/** The datasets the server listed, by name: what the form builds a model for. */
const datasets = new Map<string, DatasetView>();

/** Window length the form gives a text run unless told (the spec's own default). */
const DEFAULT_CONTEXT = 64;

/** One line per dataset, true to its kind: an image shape, a table's columns, a text's characters. */
// ---- Spot checks and bans of the selected run (GET /api/runs/:id/trust, server/routes/trust.ts) ----

interface TrustView {
  stats: { checks: number; agreed: number; disagreements: number; strikes: number; replicaExamples: number; maxAgreeingDifference: number };
  workers: { key: string; workerId: string; backend: string; agreements: number; strikes: number; reasons: string[]; probability: number; banned: boolean }[];
  bans: { key: string; workerId: string; reason: string; at: number }[];
}

async function loadTrust(runId: string): Promise<void> {
  let trust: TrustView;
  try {
    trust = await api<TrustView>(`/api/runs/${encodeURIComponent(runId)}/trust`);
  } catch (err) {
    setMessage($('trust-summary'), `Could not load the spot checks: ${(err as Error).message}`, true);
    return;
  }
  if (runId !== selected) return;
  const st = trust.stats;
  $('trust-summary').textContent = `${st.checks} tasks checked, ${st.agreed} agreed, ${st.disagreements} disagreements, ${st.strikes} strikes, ${trust.bans.length} banned; ${fmt.int(st.replicaExamples)} examples computed twice`;
  const rows = [...trust.workers].sort((a, b) => Number(b.banned) - Number(a.banned) || b.strikes - a.strikes);
  $('trust-table').querySelector('tbody')!.replaceChildren(
    ...rows.map((w) => {
      const ban = trust.bans.find((b) => b.key === w.key);
      const cell = el('td');
      if (ban) {
        const lift = el('button', { text: 'Lift ban' });
        lift.title = ban.reason;
        lift.addEventListener('click', () => void liftBan(runId, w.key));
        cell.append(el('span', { text: 'banned ' }), lift);
      } else cell.textContent = '–';
      const strikes = el('td', { className: 'num', text: String(w.strikes) });
      if (w.reasons.length) strikes.title = w.reasons.join('\n');
      return el('tr', { className: w.banned ? 'gone' : '' }, el('td', {}, el('code', { text: w.key })), el('td', {}, el('code', { text: w.workerId })), el('td', { text: w.backend }), el('td', { className: 'num', text: String(w.agreements) }), strikes, el('td', { className: 'num', text: w.probability.toFixed(2) }), cell);
    }),
  );
}

async function liftBan(runId: string, key: string): Promise<void> {
  try {
    await api(`/api/runs/${encodeURIComponent(runId)}/bans/${encodeURIComponent(key)}`, { method: 'DELETE' });
  } catch (err) {
    setMessage($('trust-summary'), `Could not lift the ban: ${(err as Error).message}`, true);
    return;
  }
  await loadTrust(runId);
}

function describeDataset(d: DatasetView): string {
  if (d.kind === 'text') return `${d.name} — text, ${d.vocabSize ?? d.classes} characters, ${fmt.int(d.characters?.train ?? d.trainCount)} train characters`;
  const classes = `${d.classes} classes`;
  if (d.kind === 'images') return `${d.name} — images ${(d.exampleShape ?? [d.features]).join('×')}, ${classes}, ${fmt.int(d.trainCount)} train`;
  return `${d.name} — table, ${d.features} features, ${classes}, ${fmt.int(d.trainCount)} train`;
}

/**
 * The model the form gives a text: the character transformer of examples/moby-dick-transformer.yaml
 * (two blocks of width 64, 4 heads) over the text's characters; the YAML box takes any other.
 */
function textModel(vocab: number): RunSpecInput['model'] {
  return {
    kind: 'layers',
    layers: [{ kind: 'embedding', vocab, dim: 64 }, { kind: 'positional' }, { kind: 'transformer-block', heads: 4 }, { kind: 'transformer-block', heads: 4 }, { kind: 'layernorm' }, { kind: 'dense', out: vocab }],
  };
}

/** Shows the fields the chosen dataset's model reads: a text's context, or an MLP's widths and activation. */
function syncFormToDataset(): void {
  const form = $<HTMLFormElement>('create-form');
  const text = datasets.get($<HTMLSelectElement>('dataset-select').value)?.kind === 'text';
  $('context-field').hidden = !text;
  $('text-model-note').hidden = !text;
  for (const name of ['hidden', 'activation']) {
    const field = form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement;
    field.disabled = text;
    field.closest('label')!.hidden = text;
  }
}

function numberField(form: FormData, name: string): number | undefined {
  const raw = String(form.get(name) ?? '').trim();
  return raw === '' ? undefined : Number(raw);
}

/** The form as a spec; throws RunSpecError for what the schema cannot see (the hidden widths' text). */
function specFromForm(): RunSpecInput {
  const form = new FormData($<HTMLFormElement>('create-form'));
  const hiddenText = String(form.get('hidden') ?? '').trim();
  const hidden = hiddenText === '' ? [] : hiddenText.split(',').map((s) => Number(s.trim()));
  if (hidden.some((w) => !Number.isInteger(w))) throw new RunSpecError([{ path: 'model.layers', message: 'hidden widths are whole numbers separated by commas, e.g. 256,128' }]);
  const dataset = String(form.get('dataset') ?? '');
  const chosen = datasets.get(dataset);
  // Before the list arrives the select holds its HTML default (mnist, 784 → 10).
  const shape = chosen ?? { features: 784, classes: 10 };
  const text = chosen?.kind === 'text';
  const context = text ? (numberField(form, 'context') ?? DEFAULT_CONTEXT) : undefined;
  const targetAccuracy = numberField(form, 'targetAccuracy');
  const maxRounds = numberField(form, 'maxRounds');
  const maxSamples = numberField(form, 'maxSamples');
  const momentum = numberField(form, 'momentum');
  return {
    name: String(form.get('name') ?? ''),
    dataset,
    ...(context !== undefined ? { context } : {}),
    model: text ? textModel(chosen.vocabSize ?? chosen.classes) : { kind: 'mlp', layers: [shape.features, ...hidden, shape.classes], activation: form.get('activation') as 'relu' | 'gelu' },
    optimizer: { kind: form.get('optimizer') as 'adam' | 'adamw' | 'momentum' | 'sgd', lr: numberField(form, 'lr') ?? Number.NaN, ...(momentum !== undefined ? { momentum } : {}) },
    batchPerTask: numberField(form, 'batchPerTask'),
    stop: { ...(targetAccuracy !== undefined ? { targetAccuracy } : {}), ...(maxRounds !== undefined ? { maxRounds } : {}), ...(maxSamples !== undefined ? { maxSamples } : {}) },
    checkpointEvery: numberField(form, 'checkpointEvery'),
    evalEvery: numberField(form, 'evalEvery'),
    sync: { roundDeadlineMs: numberField(form, 'roundDeadlineMs') },
    parallelism: {
      stages: numberField(form, 'stages') ?? 1,
      replicas: String(form.get('replicas') ?? 'auto').trim() === 'auto' ? 'auto' : Number(form.get('replicas')),
      microBatches: numberField(form, 'microBatches') ?? 4,
    },
  };
}

/**
 * Fills the form with a spec. Only what the form shows is kept: the spec's other fields take
 * their defaults when the form creates the run (the classroom recipe's seed is the default).
 */
function fillForm(spec: RunSpec): void {
  const form = $<HTMLFormElement>('create-form');
  const set = (name: string, value: string | number | undefined) => {
    const field = form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement | null;
    if (field) field.value = value === undefined ? '' : String(value);
  };
  set('name', spec.name);
  set('dataset', spec.dataset);
  set('context', spec.context ?? DEFAULT_CONTEXT);
  syncFormToDataset();
  if (spec.model.kind === 'mlp') {
    set('hidden', spec.model.layers.slice(1, -1).join(','));
    set('activation', spec.model.activation);
  }
  set('optimizer', spec.optimizer.kind);
  set('lr', spec.optimizer.lr);
  set('momentum', spec.optimizer.momentum);
  set('batchPerTask', spec.batchPerTask);
  set('targetAccuracy', spec.stop.targetAccuracy);
  set('maxRounds', spec.stop.maxRounds);
  set('maxSamples', spec.stop.maxSamples);
  set('roundDeadlineMs', spec.sync.roundDeadlineMs);
  set('evalEvery', spec.evalEvery);
  set('checkpointEvery', spec.checkpointEvery);
  set('stages', spec.parallelism.stages);
  set('replicas', spec.parallelism.replicas);
  set('microBatches', spec.parallelism.microBatches);
}

/** Puts each issue next to the form field whose data-path is the longest prefix of its path. */
function showFormIssues(issues: Issue[]): void {
  const form = $<HTMLFormElement>('create-form');
  for (const old of form.querySelectorAll('.field-error')) old.remove();
  for (const f of form.querySelectorAll('[aria-invalid]')) f.removeAttribute('aria-invalid');
  const fields = [...form.querySelectorAll<HTMLElement>('[data-path]')];
  const rest: Issue[] = [];
  for (const issue of issues) {
    const field = fields
      .filter((f) => issue.path === f.dataset.path || issue.path.startsWith(`${f.dataset.path}.`))
      .sort((a, b) => b.dataset.path!.length - a.dataset.path!.length)[0];
    if (!field) {
      rest.push(issue);
      continue;
    }
    field.setAttribute('aria-invalid', 'true');
    field.closest('label')!.append(el('span', { className: 'field-error', text: issue.message }));
  }
  fillIssues($('form-errors'), rest);
}

async function createRun(body: { json: unknown } | { text: string }, onIssues: (issues: Issue[]) => void): Promise<void> {
  const result = $('create-result');
  setMessage(result, 'Creating…');
  onIssues([]);
  try {
    const init: RequestInit =
      'json' in body
        ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body.json) }
        : { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: body.text };
    const { run } = await api<{ run: RunSummary; url?: string }>('/api/runs', init);
    setMessage(result, `Created the run "${run.name}" (${run.id}).`);
    renderRuns([run], false);
    selectRun(run.id);
  } catch (err) {
    setMessage(result, err instanceof ApiFailure && err.body.error === 'invalid_spec' ? 'The spec is not valid: see the issues marked.' : `Could not create the run: ${(err as Error).message}`, true);
    onIssues(issuesOf(err));
  }
}

// ---- Preview of the YAML box's model: each layer's output shape and parameters, before creating ----

const PREVIEW_DEBOUNCE_MS = 400;
let previewTimer: ReturnType<typeof setTimeout> | undefined;
/** Answers to older texts are dropped: only the latest request may draw. */
let previewSeq = 0;

const shapeText = (shape: number[]) => `[${shape.join(', ')}]`;

/** Asks the coordinator what the YAML box's spec would train; a wrong layer list lists its issues instead. */
async function previewSpec(): Promise<void> {
  const seq = ++previewSeq;
  const text = $<HTMLTextAreaElement>('yaml').value;
  const box = $('spec-preview');
  if (text.trim() === '') {
    box.hidden = true;
    fillIssues($('yaml-errors'), []);
    return;
  }
  try {
    const p = await api<SpecPreviewView>('/api/specs/preview', { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: text });
    if (seq !== previewSeq) return;
    fillIssues($('yaml-errors'), []);
    setMessage($('spec-preview-summary'), `Input ${shapeText(p.inputShape)} · ${p.line}`);
    $('spec-preview-layers').replaceChildren(
      ...p.layers.map((l) =>
        el('tr', {}, el('td', { className: 'num', text: String(l.index) }), el('td', { text: l.kind }), el('td', { text: shapeText(l.outShape) }), el('td', { className: 'num', text: l.params.toLocaleString('en-US') })),
      ),
    );
    box.hidden = false;
  } catch (err) {
    if (seq !== previewSeq) return;
    box.hidden = true;
    fillIssues($('yaml-errors'), issuesOf(err));
  }
}

/** Previews once the text has been still for a moment (typing sends one request, not one a key). */
function schedulePreview(delayMs = PREVIEW_DEBOUNCE_MS): void {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(() => void previewSpec(), delayMs);
}

function defaultYaml(): string {
  return runSpecToYaml(parseRunSpec(DEFAULT_RUN_SPEC));
}

// ---- Datasets ----

async function loadDatasets(): Promise<void> {
  try {
    const { datasets: list } = await api<{ datasets: DatasetView[] }>('/api/datasets');
    renderDatasets(list);
  } catch (err) {
    setMessage($('dataset-result'), `Could not list the datasets: ${(err as Error).message}`, true);
  }
}

function renderDatasets(list: DatasetView[]): void {
  const select = $<HTMLSelectElement>('dataset-select');
  const current = select.value;
  datasets.clear();
  for (const d of list) datasets.set(d.name, d);
  select.replaceChildren(
    ...list.map((d) => {
      const option = el('option', { text: describeDataset(d) });
      option.value = d.name;
      option.dataset.kind = d.kind;
      return option;
    }),
  );
  if (datasets.has(current)) select.value = current;
  syncFormToDataset();
  $('datasets')
    .querySelector('tbody')!
    .replaceChildren(
      ...list.map((d) => {
        const text = d.kind === 'text';
        const input = text ? 'characters' : d.kind === 'images' ? (d.exampleShape ?? [d.features]).join('×') : `${d.features} features`;
        const classes = el('td', { className: 'num', text: text ? `${d.vocabSize ?? d.classes} chars` : String(d.classes) });
        if (d.classNames) classes.title = d.classNames.join(', ');
        const count = (n: number) => (text ? `${fmt.int(n)} chars` : fmt.int(n));
        return el(
          'tr',
          {},
          el('td', { text: d.name }),
          el('td', { text: d.kind }),
          el('td', { className: 'num', text: input }),
          classes,
          el('td', { className: 'num', text: count(text ? (d.characters?.train ?? d.trainCount) : d.trainCount) }),
          el('td', { className: 'num', text: count(text ? (d.characters?.test ?? d.testCount) : d.testCount) }),
        );
      }),
    );
}

/** The upload's answer in words: a text by its characters, other data by examples and features. */
function uploadedText(d: DatasetView): string {
  if (d.kind === 'text') {
    const chars = d.characters ?? { train: d.trainCount, test: d.testCount };
    return `Uploaded "${d.name}": a text of ${fmt.int(chars.train + chars.test)} characters, ${d.vocabSize ?? d.classes} distinct (${fmt.int(chars.train)} for training, ${fmt.int(chars.test)} for validation). Runs name it with a context (window length, default ${DEFAULT_CONTEXT}).`;
  }
  return `Uploaded "${d.name}": ${d.features} features, ${d.classes} classes, ${fmt.int(d.trainCount)} training and ${fmt.int(d.testCount)} test examples.`;
}

async function uploadDataset(form: HTMLFormElement): Promise<void> {
  const result = $('dataset-result');
  const data = new FormData();
  const fields = new FormData(form);
  // The name first: the server reads the parts in order and names the files by it.
  data.append('name', String(fields.get('name') ?? ''));
  for (const file of $<HTMLInputElement>('dataset-files').files ?? []) data.append('file', file, file.name);
  setMessage(result, 'Uploading…');
  try {
    const { dataset: d } = await api<{ dataset: DatasetView }>('/api/datasets', { method: 'POST', body: data });
    setMessage(result, uploadedText(d));
    form.reset();
    await loadDatasets();
  } catch (err) {
    setMessage(result, `Upload refused: ${(err as Error).message}`, true);
  }
}

// ---- Wiring ----

$<HTMLFormElement>('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void login($<HTMLInputElement>('token').value);
});
$('logout').addEventListener('click', () => {
  void api('/api/admin/logout', { method: 'POST' }).finally(() => showLogin());
});
$<HTMLFormElement>('create-form').addEventListener('submit', (e) => {
  e.preventDefault();
  let spec: RunSpecInput;
  try {
    spec = specFromForm();
  } catch (err) {
    showFormIssues(issuesOf(err));
    return;
  }
  void createRun({ json: spec }, showFormIssues);
});
$('dataset-select').addEventListener('change', syncFormToDataset);
$('form-to-yaml').addEventListener('click', () => {
  try {
    $<HTMLTextAreaElement>('yaml').value = runSpecToYaml(parseRunSpec(specFromForm()));
    showFormIssues([]);
    schedulePreview(0);
  } catch (err) {
    showFormIssues(issuesOf(err));
  }
});
$('classroom-preset').addEventListener('click', () => {
  // examples/classroom.yaml, bundled: the form and the YAML box both get the recipe.
  fillForm(parseRunSpecText(classroomYaml));
  $<HTMLTextAreaElement>('yaml').value = classroomYaml;
  showFormIssues([]);
  fillIssues($('yaml-errors'), []);
  schedulePreview(0);
  setMessage($('create-result'), 'Classroom preset: a 784-32-10 model, 3 s rounds, stops at 0.92 test accuracy. Create the run, then open its board on the projector.');
});
$('create-yaml').addEventListener('click', () => {
  void createRun({ text: $<HTMLTextAreaElement>('yaml').value }, (issues) => fillIssues($('yaml-errors'), issues));
});
$<HTMLInputElement>('yaml-file').addEventListener('change', async (e) => {
  const input = e.currentTarget as HTMLInputElement;
  const file = input.files?.[0];
  if (!file) return;
  $<HTMLTextAreaElement>('yaml').value = await file.text();
  fillIssues($('yaml-errors'), []);
  input.value = '';
  schedulePreview(0);
});
$('yaml').addEventListener('input', () => schedulePreview());
$<HTMLFormElement>('dataset-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void uploadDataset(e.currentTarget as HTMLFormElement);
});
window.addEventListener('hashchange', () => {
  const id = fromHash();
  if (id) selectRun(id);
});

async function boot(): Promise<void> {
  $<HTMLTextAreaElement>('yaml').value = defaultYaml();
  try {
    const { admin } = await api<{ admin: boolean }>('/api/admin/session');
    if (admin) enterConsole();
    else showLogin();
  } catch (err) {
    showLogin(`Could not reach the coordinator: ${(err as Error).message}`);
  }
}

void boot();
