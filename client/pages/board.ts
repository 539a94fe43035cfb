// The classroom board (/board/<runId>): how to join, a tile per connected worker, the run's charts
// and speed-up, "try the model" and the test digits it gets wrong, and the leaderboard; or, at
// /board/sweep/<sweepId>, a sweep as a race of its trials' curves. It is
// read-only: it listens to the public /board namespace and fetches the run's parameters.
// Worker-supplied strings (nicknames, adapters) are only ever set as textContent.
import './no-eval.ts'; // first: before any zod schema is parsed
import QRCode from 'qrcode';
import { io, type Socket } from 'socket.io-client';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { BOARD_NAMESPACE, PARAMS_VERSION_HEADER, type BoardServerEvents, type BoardUpdate, type BoardWorker } from '../../shared/board-protocol.ts';
import type { BoardRun } from '../../shared/board-protocol.ts';
import type { Dataset } from '../../shared/dataset.ts';
import type { SweepTrialView, SweepView } from '../../shared/rest-types.ts';
import type { MetricPoint, Placement, RunSummary } from '../../shared/protocol.ts';
import { describeModel } from '../../shared/layers/sequence.ts';
import { netLine } from '../../shared/run-model.ts';
import { fetchDatasetSplit } from '../data/fetch-dataset.ts';
import { modelUse, type ModelUse } from '../ui/page-model.ts';
import { mountTryModel, type TryModelSource } from '../ui/try-model.ts';
import { imageShapeOf, mountWrongDigits } from '../ui/wrong-digits.ts';

/** New parameters for "try the model" at most this often. */
const PARAMS_EVERY_MS = 2000;
/** The wrong-digits strip is recomputed at most this often (it evaluates the whole test split). */
const WRONG_EVERY_MS = 5000;
/** Test examples the strip evaluates: the first 2,000, so a CNN's pass on the page's thread stays short. */
const WRONG_EVALUATED = 2000;
const LEADERBOARD_EVERY_MS = 5000;
/** How often the board asks which other runs share the grid. */
const OTHER_RUNS_EVERY_MS = 5000;
const LEADERBOARD_TOP = 10;
const MAX_CHART_POINTS = 5000;

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className = '', text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const fmt = {
  int: (v: number) => Math.round(v).toLocaleString('en-US'),
  percent: (v: number | null) => (v === null ? '–' : `${(100 * v).toFixed(1)} %`),
  loss: (v: number | null) => (v === null ? '' : v.toFixed(3)),
  /** 42 s, 3:07, 1:02:09 */
  duration(ms: number): string {
    const s = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, '0');
    if (h > 0) return `${h}:${String(m).padStart(2, '0')}:${ss}`;
    return m > 0 ? `${m}:${ss}` : `${s % 60} s`;
  },
};

/** The run this board shows: /board/<runId>, or ?run=<runId> on the dev server's board.html. */
function runIdFromLocation(): string | null {
  const m = /^\/board\/([^/]+)\/?$/.exec(location.pathname);
  if (m) return decodeURIComponent(m[1]);
  return new URLSearchParams(location.search).get('run');
}

function showError(message: string): void {
  const box = $('board-error');
  box.textContent = message;
  box.hidden = message === '';
}

// ---- Theme: the system's, or one chosen with the toggle (remembered on this machine) ----

type Theme = 'auto' | 'dark' | 'light';
const THEME_KEY = 'crowdtrain.board.theme';
const themeListeners: (() => void)[] = [];

function applyTheme(theme: Theme): void {
  if (theme === 'auto') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  $('theme').textContent = `Theme: ${theme}`;
  for (const f of themeListeners) f();
}

function setUpTheme(): void {
  const order: Theme[] = ['auto', 'dark', 'light'];
  let theme = (localStorage.getItem(THEME_KEY) as Theme | null) ?? 'auto';
  if (!order.includes(theme)) theme = 'auto';
  applyTheme(theme);
  $('theme').addEventListener('click', () => {
    theme = order[(order.indexOf(theme) + 1) % order.length];
    localStorage.setItem(THEME_KEY, theme);
    applyTheme(theme);
  });
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    for (const f of themeListeners) f();
  });
}

// ---- Join: the contributor URL, in type and as a QR code ----

async function showJoin(): Promise<void> {
  const res = await fetch('/api/join');
  if (!res.ok) throw new Error(`the coordinator answered ${res.status} for /api/join`);
  const { url } = (await res.json()) as { url: string };
  // https:// stays in sight: typed without it, the address would be tried over plain http.
  $('join-url').textContent = url.replace(/^http:\/\//, '').replace(/\/$/, '');
  $('join-url').title = url;
  // Dark on white whatever the theme: that is what phone cameras read best.
  const qr = await QRCode.toDataURL(url, { errorCorrectionLevel: 'M', margin: 2, width: 480, color: { dark: '#000000', light: '#ffffff' } });
  const img = $<HTMLImageElement>('join-qr');
  img.src = qr;
  img.dataset.url = url;
}

// ---- Charts: the x axis is the round ----

class RoundChart {
  private xs: number[] = [];
  private ys: number[] = [];
  private plot: uPlot | undefined;
  private createdFontPx = 0;

  constructor(
    private readonly container: HTMLElement,
    private readonly opts: { label: string; color: string; range?: [number, number]; tick: (v: number) => string },
  ) {
    new ResizeObserver(() => this.resize()).observe(container);
    themeListeners.push(() => this.rebuild());
  }

  add(points: [number, number][]): void {
    for (const [x, y] of points) {
      // A restored run may go back in rounds: start its line again.
      if (this.xs.length > 0 && x <= this.xs[this.xs.length - 1]) {
        this.xs = [];
        this.ys = [];
      }
      this.xs.push(x);
      this.ys.push(y);
    }
    if (this.xs.length > MAX_CHART_POINTS) {
      this.xs.splice(0, this.xs.length - MAX_CHART_POINTS);
      this.ys.splice(0, this.ys.length - MAX_CHART_POINTS);
    }
    this.container.dataset.points = String(this.xs.length);
    if (!this.plot) this.create();
    else this.plot.setData([this.xs, this.ys]);
  }

  private size(): { width: number; height: number } {
    return { width: this.container.clientWidth, height: this.container.clientHeight };
  }

  private create(): void {
    const { width, height } = this.size();
    if (width === 0 || height === 0) return;
    const css = getComputedStyle(document.documentElement);
    const muted = css.getPropertyValue('--muted').trim() || '#5b6475';
    const fontPx = this.fontPx();
    this.createdFontPx = fontPx;
    const axis = { stroke: muted, grid: { stroke: 'rgba(128,128,128,0.16)' }, ticks: { stroke: 'rgba(128,128,128,0.3)' }, font: `${fontPx}px system-ui, sans-serif` };
    const { range, tick, color, label } = this.opts;
    this.plot = new uPlot(
      {
        width,
        height,
        legend: { show: false },
        cursor: { show: false },
        scales: { x: { time: false }, y: range ? { range } : { auto: true } },
        series: [{ label: 'round' }, { label, stroke: color, width: 3, fill: `${color}22` }],
        axes: [
          { ...axis, size: fontPx * 2.2 },
          { ...axis, size: fontPx * 4, values: (_u, splits) => splits.map((v) => tick(v)) },
        ],
      },
      [this.xs, this.ys],
      this.container,
    );
  }

  private resize(): void {
    const { width, height } = this.size();
    if (width === 0 || height === 0) return;
    // Type scales with the viewport: axes drawn at another size are redrawn with the new one.
    if (this.plot && this.fontPx() !== this.createdFontPx) this.rebuild();
    else if (!this.plot) this.create();
    else this.plot.setSize({ width, height });
  }

  private fontPx(): number {
    return Math.round(parseFloat(getComputedStyle(document.documentElement).fontSize) * 0.8);
  }

  private rebuild(): void {
    this.plot?.destroy();
    this.plot = undefined;
    this.create();
  }
}

// ---- Worker tiles: one element per connected worker, keyed by its id ----

interface Tile {
  root: HTMLElement;
  nick: HTMLElement;
  backend: HTMLElement;
  adapter: HTMLElement;
  sps: HTMLElement;
  bar: HTMLElement;
  share: HTMLElement;
  placement: HTMLElement;
}

function placementText(p: Placement | null, stages: number): string {
  if (stages <= 1) return '';
  if (!p) return 'standby';
  const layers = p.endLayer - p.firstLayer === 1 ? `layer ${p.firstLayer + 1}` : `layers ${p.firstLayer + 1}–${p.endLayer}`;
  return `${layers} · replica ${p.replica + 1}`;
}

class Tiles {
  private readonly tiles = new Map<string, Tile>();
  private readonly more = el('div', 'tile more');

  constructor(private readonly container: HTMLElement) {
    new ResizeObserver(() => this.fit()).observe(container);
  }

  update(workers: BoardWorker[], stages: number): void {
    const seen = new Set<string>();
    for (const w of workers) {
      seen.add(w.id);
      let t = this.tiles.get(w.id);
      if (!t) {
        t = this.create(w.id);
        this.tiles.set(w.id, t);
        this.container.insertBefore(t.root, this.more.parentNode ? this.more : null);
      }
      t.nick.textContent = w.nickname?.trim() || `worker ${w.id.slice(0, 4)}`;
      t.nick.title = t.nick.textContent;
      t.backend.textContent = w.backend === 'webgpu' ? 'WebGPU' : w.backend === 'cpu' ? 'CPU' : w.backend;
      t.backend.dataset.backend = w.backend;
      t.adapter.textContent = w.adapter ? ` · ${w.adapter}` : '';
      t.root.title = `${t.nick.textContent}: ${t.backend.textContent}${t.adapter.textContent}`;
      t.sps.textContent = `${fmt.int(w.samplesPerSec)} samples/s`;
      t.sps.dataset.sps = String(w.samplesPerSec);
      t.bar.style.width = `${(100 * w.share).toFixed(1)}%`;
      t.share.textContent = `${(100 * w.share).toFixed(1)} % of the work`;
      const place = placementText(w.placement, stages);
      t.placement.textContent = place;
      t.placement.hidden = place === '';
    }
    for (const [id, t] of this.tiles) {
      if (seen.has(id)) continue;
      t.root.remove();
      this.tiles.delete(id);
    }
    // Smaller tiles as the class grows, so more of them fit before "+N more".
    this.container.dataset.density = workers.length <= 6 ? 'roomy' : workers.length <= 12 ? 'medium' : workers.length <= 24 ? 'compact' : 'tiny';
    $('worker-count').textContent = String(workers.length);
    this.fit();
  }

  private create(id: string): Tile {
    const root = el('div', 'tile');
    root.dataset.workerId = id;
    const nick = el('div', 'nick');
    const device = el('div', 'device');
    const backend = el('span', 'backend');
    const adapter = el('span', 'adapter');
    device.append(backend, adapter);
    const sps = el('div', 'sps');
    const barOuter = el('div', 'bar');
    const bar = el('div');
    barOuter.append(bar);
    const share = el('div', 'share');
    const placement = el('div', 'placement');
    root.append(nick, device, sps, barOuter, share, placement);
    return { root, nick, backend, adapter, sps, bar, share, placement };
  }

  /** Shows as many tiles as fit without scrolling; the rest are counted in a "+N more" tile. */
  private fit(): void {
    const all = [...this.tiles.values()];
    for (const t of all) t.root.hidden = false;
    this.more.remove();
    const overflows = () => this.container.scrollHeight > this.container.clientHeight + 1;
    if (!overflows()) return;
    this.container.append(this.more);
    let shown = all.length;
    while (shown > 0 && overflows()) {
      all[--shown].root.hidden = true;
      this.more.textContent = `+${all.length - shown} more`;
    }
  }
}

// ---- Leaderboard: GET /api/runs/:id/leaderboard when the coordinator has it, else the tiles' ----

interface LeaderRow {
  nickname: string | null;
  samples: number;
  rounds?: number;
  workers?: number;
}

class Leaderboard {
  private endpoint: 'unknown' | 'present' | 'absent' = 'unknown';
  private lastFetch = 0;
  private live: LeaderRow[] = [];

  constructor(
    private readonly list: HTMLElement,
    private readonly runId: string,
  ) {
    this.render([]);
  }

  /** Called with every board update; fetches the stored leaderboard every few seconds. */
  update(workers: BoardWorker[]): void {
    const byName = new Map<string, LeaderRow>();
    for (const w of workers) {
      const name = w.nickname?.trim() || `worker ${w.id.slice(0, 4)}`;
      const row = byName.get(name) ?? { nickname: name, samples: 0, workers: 0 };
      row.samples += w.samples;
      row.workers = (row.workers ?? 0) + 1;
      byName.set(name, row);
    }
    this.live = [...byName.values()].sort((a, b) => b.samples - a.samples);
    if (this.endpoint === 'absent') this.render(this.live);
    if (this.endpoint !== 'absent' && Date.now() - this.lastFetch >= LEADERBOARD_EVERY_MS) {
      this.lastFetch = Date.now();
      void this.fetchStored();
    }
  }

  private async fetchStored(): Promise<void> {
    try {
      const res = await fetch(`/api/runs/${encodeURIComponent(this.runId)}/leaderboard`);
      if (res.status === 404) {
        // This coordinator keeps no leaderboard: rank the connected workers instead.
        this.endpoint = 'absent';
        this.render(this.live);
        return;
      }
      if (!res.ok) return;
      this.endpoint = 'present';
      const body = (await res.json()) as { leaderboard: LeaderRow[] };
      // The store counts committed rounds: until the first lands, the connected workers stand in.
      this.render(body.leaderboard.length > 0 ? body.leaderboard : this.live);
    } catch {
      // Offline for a moment: the next update tries again.
    }
  }

  private render(rows: LeaderRow[]): void {
    if (rows.length === 0) {
      this.list.replaceChildren(el('li', 'empty', 'No contributions yet'));
      return;
    }
    this.list.replaceChildren(
      ...rows.slice(0, LEADERBOARD_TOP).map((r) => {
        const li = el('li');
        const rounds = r.rounds !== undefined ? ` · ${fmt.int(r.rounds)} rounds` : '';
        li.append(el('span', 'who', r.nickname?.trim() || 'anonymous'), el('span', 'what', `${fmt.int(r.samples)} samples${rounds}`));
        return li;
      }),
    );
    // Top N is what fits: drop the rows the panel would cut.
    while (this.list.children.length > 1 && this.list.scrollHeight > this.list.clientHeight + 1) this.list.lastElementChild!.remove();
  }
}

// ---- Try the model and the wrong digits: the run's latest parameters, fetched now and then ----

/**
 * How many wrong digits the strip's box holds, from the cell sizes board.css gives them (in rem):
 * 5.6 wide, about 4.3 high with the caption, 0.4 apart, under a two-line count.
 */
function digitsThatFit(box: HTMLElement): number {
  const rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
  const gap = 0.4 * rem;
  const cols = Math.floor((box.clientWidth + gap) / (5.6 * rem + gap));
  const rows = Math.floor((box.clientHeight - 2.7 * rem + gap) / (4.3 * rem + gap));
  return Math.max(1, cols * rows);
}

/** Hides the children of a clipped box that would be cut by its bottom edge (a safety net after resizes). */
function hideOverflowing(box: Element | null): void {
  if (!(box instanceof HTMLElement)) return;
  const bottom = box.getBoundingClientRect().bottom;
  for (const child of box.children) {
    const c = child as HTMLElement;
    c.hidden = false;
    c.hidden = c.getBoundingClientRect().bottom > bottom + 1;
  }
}

/** The try panel's title for what it offers: the pad serves 28×28 one-channel images. */
function tryTitle(use: ModelUse, classNames: string[] | undefined): string {
  if (use.kind === 'text') return 'Try the model: start a sentence';
  if (use.kind === 'image' && use.side === 28 && use.channels === 1) return classNames ? 'Try the model: draw one of its classes' : 'Try the model: draw a digit';
  return 'Try the model';
}

class ModelPanels {
  private model: TryModelSource | null = null;
  private run: Pick<BoardRun, 'net' | 'dataset'> | null = null;
  private wanted = 0;
  private lastFetch = 0;
  private fetching = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lastWrong = 0;
  private wrongTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly tryModel;
  private wrongDigits: ReturnType<typeof mountWrongDigits> | undefined;

  constructor(private readonly runId: string) {
    this.tryModel = mountTryModel($('try-model'), {
      getModel: () => this.model,
      onUse: (use) => ($('try-title').textContent = tryTitle(use, this.run?.dataset.classNames)),
    });
  }

  /** Starts fetching parameters, and loads the test split for the wrong-examples strip (image classifiers only). */
  async start(run: Pick<BoardRun, 'net' | 'dataset'>): Promise<void> {
    this.run = run;
    this.schedule();
    let use: ModelUse;
    try {
      use = modelUse(run.net, run.dataset);
    } catch (err) {
      use = { kind: 'other', why: `This model cannot run here: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (use.kind === 'text') {
      // A language model makes no image mistakes: the strip's panel gives its room to the others.
      $('wrong-panel').hidden = true;
      return;
    }
    if (use.kind !== 'image') {
      $('wrong-digits').replaceChildren(el('p', 'empty', 'This run does not classify images.'));
      return;
    }
    const test: Dataset = await fetchDatasetSplit(run.dataset.name, 'test');
    if (!imageShapeOf(test)) {
      $('wrong-digits').replaceChildren(el('p', 'empty', 'This run does not classify images.'));
      return;
    }
    if (run.dataset.classNames) $('wrong-title').textContent = 'Test images it gets wrong now';
    const box = $('wrong-digits');
    this.wrongDigits = mountWrongDigits(box, { test, classNames: run.dataset.classNames, max: digitsThatFit(box), evaluate: WRONG_EVALUATED });
    new ResizeObserver(() => hideOverflowing(box.querySelector('.wrong-strip'))).observe(box);
    this.refreshWrong();
  }

  /** The run is at `version`: fetch its parameters unless we fetched less than 2 s ago. */
  offer(version: number): void {
    this.wanted = version;
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.fetching || !this.run || this.wanted === this.model?.version) return;
    const wait = Math.max(0, this.lastFetch + PARAMS_EVERY_MS - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.fetchParams();
    }, wait);
  }

  private async fetchParams(): Promise<void> {
    const run = this.run;
    if (!run) return;
    this.fetching = true;
    this.lastFetch = Date.now();
    try {
      const res = await fetch(`/api/runs/${encodeURIComponent(this.runId)}/params`);
      if (!res.ok) throw new Error(`the coordinator answered ${res.status} for the parameters`);
      const version = Number(res.headers.get(PARAMS_VERSION_HEADER));
      const params = new Float32Array(await res.arrayBuffer());
      this.model = { net: run.net, labels: run.dataset, params, version };
      this.tryModel.redraw();
      this.refreshWrong();
    } catch (err) {
      console.warn('board: parameters not fetched', err);
    } finally {
      this.fetching = false;
      this.schedule();
    }
  }

  /** Recomputes the strip for the newest parameters, at most every 5 s. */
  private refreshWrong(): void {
    if (!this.wrongDigits || this.wrongTimer) return;
    const wait = Math.max(0, this.lastWrong + WRONG_EVERY_MS - Date.now());
    this.wrongTimer = setTimeout(() => {
      this.wrongTimer = undefined;
      this.lastWrong = Date.now();
      this.wrongDigits!.update(this.model);
      hideOverflowing($('wrong-digits').querySelector('.wrong-strip'));
    }, wait);
  }
}

// ---- The board ----

/** Whether the run's model ends in next-token logits [T, V]. */
function isLanguageModel(run: BoardRun): boolean {
  try {
    return describeModel(run.net.layers, run.net.inputShape).outShape.length === 2;
  } catch {
    return false;
  }
}

class Board {
  /** Test accuracy; for a language model, the validation loss in bits/char (made when the first update says which). */
  private accuracyChart: RoundChart | undefined;
  /** A language model: its quality is the validation loss per character, not an accuracy. */
  private lm = false;
  /** The latest validation loss, nats per label. */
  private evalLoss: number | null = null;
  private readonly lossChart = new RoundChart($('loss-chart'), { label: 'loss', color: '#e0672f', tick: (v) => (v >= 10 ? v.toFixed(0) : v.toPrecision(2)) });
  private readonly tiles = new Tiles($('tiles'));
  private readonly leaderboard: Leaderboard;
  private readonly models: ModelPanels;
  private started = false;
  private firstRoundAt: number | null = null;
  private lastRoundAt: number | null = null;
  private state = '';

  constructor(private readonly runId: string) {
    this.leaderboard = new Leaderboard($('leaderboard'), runId);
    this.models = new ModelPanels(runId);
    setInterval(() => this.showElapsed(), 1000);
    void this.showOtherRuns();
    setInterval(() => void this.showOtherRuns(), OTHER_RUNS_EVERY_MS);
  }

  /**
   * Several runs share the grid: the tiles are the workers serving this run, and a line under
   * their title names the other running runs and how many workers serve each (by their shares).
   */
  private async showOtherRuns(): Promise<void> {
    let runs: RunSummary[];
    try {
      const res = await fetch('/api/runs');
      if (!res.ok) return;
      runs = ((await res.json()) as { runs: RunSummary[] }).runs;
    } catch {
      return;
    }
    let line = document.getElementById('other-runs');
    if (!line) {
      line = el('p', 'muted');
      line.id = 'other-runs';
      $('workers-title').after(line);
    }
    const others = runs.filter((r) => r.id !== this.runId && r.state === 'running');
    const own = runs.find((r) => r.id === this.runId);
    line.hidden = others.length === 0;
    const share = (r: RunSummary) => r.spec.share ?? 1;
    const workers = (n: number) => `${n} ${n === 1 ? 'worker' : 'workers'}`;
    line.textContent = `The tiles are the workers serving this run${own ? ` (share ${share(own)})` : ''}. Also on this grid: ${others.map((r) => `${r.name}, ${workers(r.workers)} (share ${share(r)})`).join('; ')}.`;
  }

  apply(u: BoardUpdate): void {
    const run = u.run;
    if (!this.started) {
      this.started = true;
      document.title = `crowdtrain · ${run.name} · board`;
      this.lm = isLanguageModel(run);
      this.accuracyChart = this.lm
        ? new RoundChart($('accuracy-chart'), { label: 'validation loss, bits/char', color: '#19a463', tick: (v) => v.toFixed(1) })
        : new RoundChart($('accuracy-chart'), { label: 'test accuracy', color: '#19a463', range: [0, 1], tick: (v) => `${Math.round(v * 100)}%` });
      // The try panel follows the model; the wrong-examples strip serves image classifiers.
      void this.models.start(run).catch((err: unknown) => {
        $('wrong-digits').replaceChildren(el('p', 'empty', `The test examples did not load: ${err instanceof Error ? err.message : String(err)}`));
      });
      try {
        $('model-line').textContent = netLine(run.net);
      } catch {
        $('model-line').textContent = '';
      }
    }
    $('run-name').textContent = run.name;
    $('run-state').textContent = run.state;
    $('run-state').dataset.state = run.state;
    this.state = run.state;

    this.addPoints(u.points, u.evaluated ?? []);
    this.showQuality(run.accuracy);
    $('rounds').textContent = fmt.int(run.version);
    $('loss').textContent = fmt.loss(run.loss);

    const grid = u.grid.samplesPerSec;
    const best = u.grid.bestWorkerSamplesPerSec;
    $('grid-sps').textContent = fmt.int(grid);
    $('grid-sps').dataset.value = String(grid);
    $('best-sps').textContent = fmt.int(best);
    $('best-sps').dataset.value = String(best);
    this.showSpeedup(grid, best, u.workers.length, u.grid.efficiency);

    this.tiles.update(u.workers, run.spec.parallelism?.stages ?? 1);
    this.leaderboard.update(u.workers);
    this.models.offer(u.version);
    this.showElapsed();
  }

  /** `late`: points sent before, again with their evaluation's numbers (older than `points`). */
  private addPoints(points: MetricPoint[], late: MetricPoint[] = []): void {
    if (points.length > 0) {
      this.firstRoundAt ??= points[0].time;
      this.lastRoundAt = points[points.length - 1].time;
      this.lossChart.add(points.filter((p) => p.loss !== null).map((p) => [p.version, p.loss!]));
    }
    const scored = [...late, ...points];
    const evaluated = scored.filter((p) => p.evalLoss !== null && p.evalLoss !== undefined);
    if (evaluated.length > 0) this.evalLoss = evaluated[evaluated.length - 1].evalLoss!;
    if (this.lm) this.accuracyChart?.add(evaluated.map((p) => [p.version, p.evalLoss! / Math.LN2]));
    else this.accuracyChart?.add(scored.filter((p) => p.accuracy !== null).map((p) => [p.version, p.accuracy!]));
  }

  /**
   * The big quality figure: test accuracy, or for a language model (and any run without an
   * accuracy) the validation loss, as bits/char with nats/char beside it.
   */
  private showQuality(accuracy: number | null): void {
    const box = $('accuracy');
    const useLoss = this.lm || (accuracy === null && this.evalLoss !== null);
    $('accuracy-label').textContent = useLoss ? 'Validation loss' : 'Test accuracy';
    if (this.lm) $('accuracy-chart-title').textContent = this.evalLoss === null ? 'Validation loss, bits/char' : `Validation loss, bits/char (${this.evalLoss.toFixed(2)} nats/char)`;
    box.title = '';
    delete box.dataset.nats;
    if (!useLoss || this.evalLoss === null) {
      box.textContent = useLoss ? '–' : fmt.percent(accuracy);
      return;
    }
    box.dataset.nats = String(this.evalLoss);
    if (!this.lm) {
      box.textContent = this.evalLoss.toFixed(3);
      return;
    }
    box.replaceChildren(document.createTextNode((this.evalLoss / Math.LN2).toFixed(2)), el('span', 'unit', ' bits/char'));
    box.title = `${this.evalLoss.toFixed(3)} nats/char`;
  }

  private showSpeedup(grid: number, best: number, workers: number, efficiency: number | null): void {
    const line = $('speedup');
    if (workers === 0) {
      line.textContent = 'Waiting for the first workers: scan the code to join.';
      return;
    }
    if (best <= 0 || grid <= 0) {
      line.textContent = `${workers} ${workers === 1 ? 'worker is' : 'workers are'} warming up…`;
      return;
    }
    const times = grid / best;
    const strong = el('strong', '', `${times >= 10 ? times.toFixed(0) : times.toFixed(1)}×`);
    line.replaceChildren(document.createTextNode('The class is '), strong, document.createTextNode(times >= 1 ? ' faster than the fastest laptop alone' : ' the speed of the fastest laptop alone'));
    if (efficiency !== null) {
      // The honest half of the story: how much of everyone's speed turns into training.
      const eff = el('span', 'efficiency', ` · ${Math.round(efficiency * 100)} % of the laptops' combined speed trains the model`);
      eff.dataset.value = String(efficiency);
      line.append(eff);
    }
  }

  /** Training time: from the first round this board knows of to now (or to the last round). */
  private showElapsed(): void {
    if (this.firstRoundAt === null) return;
    const end = this.state === 'running' ? Date.now() : (this.lastRoundAt ?? Date.now());
    $('elapsed').textContent = fmt.duration(end - this.firstRoundAt);
  }
}

// ---- A sweep as a race (/board/sweep/<id>): every trial's curve on one chart ----
// Polled over REST (GET /api/sweeps/:id, then each trial run's metric series from GET
// /api/runs/:id, again only while the trial runs): a sweep changes a few times a minute, and a
// board that misses a poll just draws the next one.

const SWEEP_POLL_MS = 2000;
const TRIAL_COLORS = ['#2f6fed', '#19a463', '#e0672f', '#8a4fd8', '#d33f7a', '#0f9bb0', '#c07a12', '#7a8b12'];
/** Stopped trials drop out of the race: grey. */
const STOPPED_COLOR = '#9aa0aa';

/** The sweep this board shows: /board/sweep/<id>, or ?sweep=<id> on the dev server's board.html. */
function sweepIdFromLocation(): string | null {
  const m = /^\/board\/sweep\/([^/]+)\/?$/.exec(location.pathname);
  if (m) return decodeURIComponent(m[1]);
  return new URLSearchParams(location.search).get('sweep');
}

function valueText(v: number | string | boolean): string {
  return typeof v === 'number' ? String(Number(v.toPrecision(3))) : String(v);
}

/** "optimizer.lr 0.001": the trial's swept values, its name in the legend. */
function trialLabel(t: SweepTrialView): string {
  const values = Object.entries(t.values);
  return values.length === 0 ? `trial ${t.index}` : values.map(([k, v]) => `${k} ${valueText(v)}`).join(', ');
}

/**
 * The race's panel, made only in the sweep view (a run's board keeps its own panels):
 * a title naming the metric, a summary line, the chart and its legend. Returns the chart.
 */
function mountSweepPanel(): HTMLElement {
  const panel = el('section', 'panel sweep');
  panel.id = 'sweep-panel';
  panel.setAttribute('aria-labelledby', 'sweep-title');
  const title = el('h2', '', "The race: every trial's ");
  title.id = 'sweep-title';
  const metric = el('span', '', 'test accuracy');
  metric.id = 'sweep-metric';
  title.append(metric, document.createTextNode(' by round'));
  const summary = el('div', 'sweep-summary');
  summary.id = 'sweep-summary';
  const chart = el('div', 'chart');
  chart.id = 'sweep-chart';
  chart.dataset.series = '0';
  chart.dataset.points = '0';
  const legend = el('ol', 'sweep-legend');
  legend.id = 'sweep-legend';
  legend.setAttribute('aria-label', 'Trials');
  panel.append(title, summary, chart, legend);
  $('board-error').before(panel);
  return chart;
}

class SweepRace {
  private curves = new Map<string, { points: MetricPoint[]; final: boolean }>();
  private plot: uPlot | undefined;
  private plotKey = '';
  private last: SweepView | undefined;
  private readonly chart: HTMLElement;

  constructor(private readonly sweepId: string) {
    document.body.dataset.view = 'sweep';
    this.chart = mountSweepPanel();
    new ResizeObserver(() => {
      const { clientWidth: width, clientHeight: height } = this.chart;
      if (width === 0 || height === 0) return;
      if (this.plot) this.plot.setSize({ width, height });
      else if (this.last) this.draw(this.last);
    }).observe(this.chart);
    themeListeners.push(() => this.rebuild());
  }

  /** Polls until the page closes; a failed poll shows why and tries again. */
  start(): void {
    const connection = $('connection');
    const poll = async () => {
      try {
        await this.refresh();
        showError('');
        connection.textContent = 'live';
        connection.dataset.state = 'live';
      } catch (err) {
        showError(`The sweep did not load: ${err instanceof Error ? err.message : String(err)}`);
        connection.textContent = 'reconnecting…';
        connection.dataset.state = 'reconnecting';
      }
      setTimeout(() => void poll(), SWEEP_POLL_MS);
    };
    void poll();
  }

  private async refresh(): Promise<void> {
    const res = await fetch(`/api/sweeps/${encodeURIComponent(this.sweepId)}`);
    if (!res.ok) throw new Error(`the coordinator answered ${res.status}`);
    const sweep = (await res.json()) as SweepView;
    await Promise.all(
      sweep.trials
        .filter((t) => t.runId !== '' && !this.curves.get(t.runId)?.final)
        .map(async (t) => {
          const r = await fetch(`/api/runs/${encodeURIComponent(t.runId)}`);
          if (!r.ok) return; // a deleted trial run: its legend entry stays, without a curve
          const run = (await r.json()) as { metrics: MetricPoint[] };
          this.curves.set(t.runId, { points: run.metrics, final: t.state !== 'running' });
        }),
    );
    this.last = sweep;
    this.show(sweep);
  }

  private metric(s: SweepView): 'accuracy' | 'loss' {
    return (s.spec as { sweep?: { metric?: 'accuracy' | 'loss' } } | null)?.sweep?.metric ?? 'accuracy';
  }

  private metricText(s: SweepView, v: number | null): string {
    return this.metric(s) === 'accuracy' ? fmt.percent(v) : v === null ? '–' : v.toFixed(3);
  }

  private color(t: SweepTrialView): string {
    return t.state === 'stopped' ? STOPPED_COLOR : TRIAL_COLORS[t.index % TRIAL_COLORS.length];
  }

  private show(s: SweepView): void {
    document.title = `crowdtrain · ${s.name} · sweep board`;
    $('run-name').textContent = s.name;
    $('run-state').textContent = s.state;
    $('run-state').dataset.state = s.state;
    $('sweep-metric').textContent = this.metric(s) === 'accuracy' ? 'test accuracy' : 'held-out loss';
    const stopped = s.trials.filter((t) => t.state === 'stopped').length;
    const best = s.best ? s.trials.find((t) => t.index === s.best!.index) : undefined;
    const parts = [`${s.trials.length} ${s.trials.length === 1 ? 'trial' : 'trials'}`, `${stopped} stopped early`];
    if (best && s.best) parts.push(`leading: ${trialLabel(best)} at ${this.metricText(s, s.best.metric)}`);
    $('sweep-summary').textContent = parts.join(' · ');
    $('sweep-legend').replaceChildren(
      ...s.trials.map((t) => {
        const swatch = el('span', 'swatch');
        swatch.style.color = this.color(t);
        const li = el('li');
        li.dataset.state = t.state;
        li.dataset.trial = String(t.index);
        li.append(swatch, el('span', 'who', `${trialLabel(t)} · ${this.metricText(s, t.metric)}`));
        if (t.state === 'stopped') {
          const why = el('span', 'why', '(stopped)');
          why.title = t.stoppedReason ?? '';
          li.append(why);
        }
        return li;
      }),
    );
    this.draw(s);
  }

  private draw(s: SweepView): void {
    const metric = this.metric(s);
    const drawn = s.trials
      .map((t) => {
        const points = (this.curves.get(t.runId)?.points ?? []).flatMap((p) => {
          const y = metric === 'accuracy' ? p.accuracy : p.evalLoss;
          return y === null || y === undefined ? [] : [[p.version, y] as [number, number]];
        });
        return { t, points };
      })
      .filter((c) => c.points.length > 0);
    this.chart.dataset.series = String(drawn.length);
    this.chart.dataset.points = String(drawn.reduce((n, c) => n + c.points.length, 0));
    if (drawn.length === 0) return;
    const data = uPlot.join(drawn.map((c) => [c.points.map((p) => p[0]), c.points.map((p) => p[1])] as uPlot.AlignedData));
    const key = `${metric}|${drawn.map((c) => `${c.t.index}:${this.color(c.t)}`).join(',')}`;
    if (this.plot && key === this.plotKey) {
      this.plot.setData(data);
      return;
    }
    this.plot?.destroy();
    this.plot = undefined;
    const { clientWidth: width, clientHeight: height } = this.chart;
    if (width === 0 || height === 0) return;
    this.plotKey = key;
    const muted = getComputedStyle(document.documentElement).getPropertyValue('--muted').trim() || '#5b6475';
    const fontPx = Math.round(parseFloat(getComputedStyle(document.documentElement).fontSize) * 0.8);
    const axis = { stroke: muted, grid: { stroke: 'rgba(128,128,128,0.16)' }, ticks: { stroke: 'rgba(128,128,128,0.3)' }, font: `${fontPx}px system-ui, sans-serif` };
    this.plot = new uPlot(
      {
        width,
        height,
        legend: { show: false },
        cursor: { show: false },
        scales: { x: { time: false }, y: metric === 'accuracy' ? { range: [0, 1] } : { auto: true } },
        // Running and finished trials in colour, thick; stopped ones thin and grey, under them.
        series: [{ label: 'round' }, ...drawn.map((c) => ({ label: trialLabel(c.t), stroke: this.color(c.t), width: c.t.state === 'stopped' ? 2 : 4, spanGaps: true }))],
        axes: [
          { ...axis, size: fontPx * 2.2 },
          { ...axis, size: fontPx * 4, values: (_u: uPlot, splits: number[]) => splits.map((v) => (metric === 'accuracy' ? `${Math.round(v * 100)}%` : v.toPrecision(2))) },
        ],
      },
      data,
      this.chart,
    );
  }

  private rebuild(): void {
    this.plot?.destroy();
    this.plot = undefined;
    this.plotKey = '';
    if (this.last) this.draw(this.last);
  }
}

function main(): void {
  setUpTheme();
  showJoin().catch((err: unknown) => showError(`The join address did not load: ${err instanceof Error ? err.message : String(err)}`));
  const sweepId = sweepIdFromLocation();
  if (sweepId) {
    new SweepRace(sweepId).start();
    return;
  }
  const runId = runIdFromLocation();
  if (!runId) {
    showError('No run named: open /board/<run id>, or /board for the current run.');
    return;
  }
  const board = new Board(runId);
  const socket: Socket<BoardServerEvents> = io(BOARD_NAMESPACE, { auth: { runId } });
  const connection = $('connection');
  socket.on('connect', () => {
    connection.textContent = 'live';
    connection.dataset.state = 'live';
    showError('');
  });
  socket.on('disconnect', () => {
    connection.textContent = 'reconnecting…';
    connection.dataset.state = 'reconnecting';
  });
  socket.on('connect_error', (err: Error & { data?: { message?: string } }) => {
    connection.textContent = 'offline';
    connection.dataset.state = 'offline';
    showError(err.data?.message ? `The board cannot follow this run: ${err.data.message}` : `Cannot reach the coordinator: ${err.message}`);
  });
  socket.on('board', (u) => {
    try {
      board.apply(u);
    } catch (err) {
      console.error('board update failed', err);
    }
  });
}

main();
