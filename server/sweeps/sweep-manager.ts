// The sweep manager: turns a sweep spec into trials, each an ordinary run (stored, checkpointed,
// resumable) named `<sweep>-t<index>`, keeps at most maxConcurrent of them running, applies the
// early-termination policy at each evaluation, and ends the sweep with its best trial. Drawing
// values is the sampler's job and the stopping rule the policy's (sampler.ts, early-termination.ts);
// which workers serve which run is the scheduler's.
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { isBetter, parseSweepSpec, reachesTarget, trialSpec, type SweepSettings, type SweepSpec } from '../../shared/sweep-spec.ts';
import type { SweepBest, SweepTrialView, SweepView } from '../../shared/rest-types.ts';
import type { RunSpec } from '../../shared/run-spec.ts';
import type { EventLog } from '../event-log.ts';
import type { MetricPoint, Run } from '../run.ts';
import type { Scheduler } from '../scheduler.ts';
import type { Store, SweepRecord, TrialRecord, TrialState } from '../store/store.ts';
import { evaluateTrial, type TrialProgress } from './early-termination.ts';
import { createSampler, type Sampler, type TrialHistory } from './sampler.ts';

export interface SweepManagerOptions {
  scheduler: Scheduler;
  store: Store;
  events: EventLog;
  log: FastifyBaseLogger;
  /** The coordinator's run creation (validates the spec against its dataset; throws RunSpecError). */
  createRun(spec: RunSpec): Run;
  /** The coordinator's run verbs (a checkpoint on stop, the record saved). */
  setRunState(run: Run, state: 'running' | 'paused' | 'stopped'): void;
  /**
   * How often trials are checked for ends no hook reports (an admin's stop, a deleted run), ms;
   * default 1000. Commits and evaluations are seen at once.
   */
  reconcileMs?: number;
}

interface LiveSweep {
  record: SweepRecord;
  spec: SweepSpec;
  sampler: Sampler;
  /** By index; a trial's record is saved whenever it changes. */
  trials: TrialRecord[];
  /** The sampler has nothing more to draw (a grid covered). */
  exhausted: boolean;
}

/** The metric of an evaluated point, or null for a point without an evaluation. */
function metricOf(settings: SweepSettings, p: MetricPoint): number | null {
  const v = settings.metric === 'accuracy' ? p.accuracy : p.evalLoss;
  return v === null || v === undefined || !Number.isFinite(v) ? null : v;
}

/**
 * @example
 * const sweeps = new SweepManager({ scheduler, store, events, log, createRun, setRunState });
 * sweeps.restore(); // after the runs are restored
 * const view = sweeps.start(parseSweepSpec(body));
 */
export class SweepManager {
  private readonly sweeps = new Map<string, LiveSweep>();
  /** Run id -> its sweep, for the running trials only. */
  private readonly byRun = new Map<string, LiveSweep>();
  /** Run id -> the newest version whose evaluation the policy has seen. */
  private readonly judged = new Map<string, number>();
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(private readonly opts: SweepManagerOptions) {
    // After the commit or evaluation returns: stopping a run inside the round's own commit would
    // cut the round mode off mid-step.
    const seen = (run: Run) => {
      if (this.byRun.has(run.id)) queueMicrotask(() => this.observe(run.id));
    };
    opts.scheduler.onCommit(seen);
    opts.scheduler.onEvaluated(seen);
    this.timer = setInterval(() => this.reconcile(), opts.reconcileMs ?? 1000);
    this.timer.unref();
  }

  /** Creates the sweep and its first trials. A first trial that cannot be created (a bad base spec) throws, and nothing is kept. */
  start(spec: SweepSpec): SweepView {
    const now = Date.now();
    const record: SweepRecord = { id: randomUUID().slice(0, 8), name: spec.name, spec, state: 'running', reason: null, createdAt: now, updatedAt: now };
    const sweep: LiveSweep = { record, spec, sampler: createSampler(spec.sweep), trials: [], exhausted: false };
    // The first trial alone first: its error is the caller's (a 400), before anything is stored.
    const first = this.draw(sweep);
    if (!first) throw new Error(`sweep ${spec.name}: the sampler drew no trial`);
    const run = this.opts.createRun(trialSpec(spec, first, this.trialName(sweep, 0)));
    this.opts.store.saveSweep(record);
    this.sweeps.set(record.id, sweep);
    this.addTrial(sweep, first, run);
    this.opts.log.info({ sweepId: record.id, name: spec.name, maxTrials: spec.sweep.maxTrials, maxConcurrent: spec.sweep.maxConcurrent }, 'sweep started');
    this.fill(sweep);
    return this.view(sweep);
  }

  /**
   * Brings back every unfinished sweep the store holds; call it after the runs are restored.
   * Running trials go on as their runs do; the sampler continues at the next index.
   */
  restore(): void {
    for (const record of this.opts.store.listSweeps()) {
      if (record.state !== 'running' || this.sweeps.has(record.id)) continue;
      let spec: SweepSpec;
      try {
        // Validated again as written (the base's fields beside `sweep:`): a field added since gets its default.
        const stored = record.spec as SweepSpec;
        spec = parseSweepSpec({ ...stored.base, name: stored.name, sweep: stored.sweep });
      } catch (err) {
        this.opts.log.error({ sweepId: record.id, err }, 'sweep not restored: its stored spec no longer validates');
        continue;
      }
      const sweep: LiveSweep = { record, spec, sampler: createSampler(spec.sweep), trials: this.opts.store.trials(record.id), exhausted: false };
      this.sweeps.set(record.id, sweep);
      for (const t of sweep.trials) if (t.state === 'running') this.byRun.set(t.runId, sweep);
      this.opts.log.info({ sweepId: record.id, trials: sweep.trials.length }, 'sweep restored');
      this.reconcileSweep(sweep);
    }
  }

  get(id: string): SweepView | undefined {
    const live = this.sweeps.get(id);
    if (live) return this.view(live);
    const record = this.opts.store.getSweep(id);
    return record ? this.viewOf(record, record.spec as SweepSpec, this.opts.store.trials(id)) : undefined;
  }

  /** Every sweep the store holds, oldest first. */
  list(): SweepView[] {
    return this.opts.store.listSweeps().map((r) => this.get(r.id)!);
  }

  /**
   * Ends a running sweep: its running trials are stopped (their runs keep their checkpoints) and
   * no more start. Returns undefined for an unknown sweep, the view unchanged for one already ended.
   */
  stop(id: string, reason = 'stopped by the admin'): SweepView | undefined {
    const live = this.sweeps.get(id);
    if (!live) return this.get(id);
    this.end(live, 'stopped', reason);
    return this.view(live);
  }

  close(): void {
    clearInterval(this.timer);
  }

  // ---- trials ----------------------------------------------------------------------------------

  private trialName(sweep: LiveSweep, index: number): string {
    return `${sweep.spec.name}-t${index}`;
  }

  private history(sweep: LiveSweep): TrialHistory[] {
    return sweep.trials.map((t) => ({ index: t.index, values: t.values, metric: t.metric, state: t.state }));
  }

  /** The next trial's values, or null when the sampler has none left. */
  private draw(sweep: LiveSweep): Record<string, number | string | boolean> | null {
    const values = sweep.sampler.next(sweep.trials.length, this.history(sweep));
    if (!values) sweep.exhausted = true;
    return values;
  }

  private addTrial(sweep: LiveSweep, values: TrialRecord['values'], run: Run | null, error?: string): void {
    const t: TrialRecord = {
      sweepId: sweep.record.id,
      index: sweep.trials.length,
      runId: run?.id ?? '',
      values,
      state: run ? 'running' : 'failed',
      metric: null,
      stoppedReason: run ? null : `not started: ${error}`,
    };
    sweep.trials.push(t);
    this.opts.store.saveTrial(t);
    if (run) {
      this.byRun.set(run.id, sweep);
      this.opts.log.info({ sweepId: sweep.record.id, runId: run.id, index: t.index, values }, 'sweep trial started');
    } else {
      this.opts.log.warn({ sweepId: sweep.record.id, index: t.index, values, error }, 'sweep trial not started');
    }
  }

  /** Starts trials while a slot is free and trials are left; ends the sweep when none run and none are left. */
  private fill(sweep: LiveSweep): void {
    const { maxTrials, maxConcurrent } = sweep.spec.sweep;
    while (sweep.record.state === 'running' && !sweep.exhausted && sweep.trials.length < maxTrials && this.running(sweep).length < maxConcurrent) {
      const values = this.draw(sweep);
      if (!values) break;
      const index = sweep.trials.length;
      try {
        this.addTrial(sweep, values, this.opts.createRun(trialSpec(sweep.spec, values, this.trialName(sweep, index))));
      } catch (err) {
        this.addTrial(sweep, values, null, (err as Error).message);
      }
    }
    if (sweep.record.state === 'running' && this.running(sweep).length === 0) {
      const finished = sweep.trials.length;
      this.end(sweep, 'completed', sweep.exhausted && finished < maxTrials ? `every combination tried (${finished} trials)` : `${finished} trials finished`);
    }
  }

  private running(sweep: LiveSweep): TrialRecord[] {
    return sweep.trials.filter((t) => t.state === 'running');
  }

  /** The trial's evaluated points, from the run held or else the store. */
  private progress(sweep: LiveSweep, t: TrialRecord): TrialProgress {
    const metrics = this.opts.scheduler.runs.get(t.runId)?.metrics ?? (t.runId ? this.opts.store.metrics(t.runId) : []);
    const points: TrialProgress['points'] = [];
    for (const p of metrics) {
      const m = metricOf(sweep.spec.sweep, p);
      if (m !== null) points.push({ step: p.version, metric: m });
    }
    return { id: t.runId, state: t.state, points };
  }

  /** A commit or an evaluation of a trial's run: its best metric, the policy, the target, its end. */
  private observe(runId: string): void {
    const sweep = this.byRun.get(runId);
    const t = sweep?.trials.find((x) => x.runId === runId);
    if (!sweep || !t || t.state !== 'running' || sweep.record.state !== 'running') return;
    const run = this.opts.scheduler.runs.get(runId);
    if (!run) return this.reconcileSweep(sweep);
    const settings = sweep.spec.sweep;
    const progress = this.progress(sweep, t);
    const latest = progress.points.at(-1);
    let changed = false;
    for (const p of progress.points) {
      if (t.metric === null || isBetter(settings.goal, p.metric, t.metric)) {
        t.metric = p.metric;
        changed = true;
      }
    }
    if (changed) this.opts.store.saveTrial(t);
    if (t.metric !== null && reachesTarget(settings, t.metric)) {
      this.finishTrial(sweep, t, run, run.state === 'running' ? `the sweep's target ${settings.target} was reached` : undefined);
      return this.end(sweep, 'completed', `trial ${t.index} reached the target ${settings.metric} ${settings.target}`);
    }
    if (run.state === 'running' && settings.earlyTermination && latest && latest.step > (this.judged.get(runId) ?? 0)) {
      this.judged.set(runId, latest.step);
      const others = sweep.trials.filter((x) => x !== t && x.runId).map((x) => this.progress(sweep, x));
      const verdict = evaluateTrial(settings, progress, others);
      if (verdict.stop) {
        const reason = `stopped early: ${verdict.reason ?? `the ${settings.earlyTermination.policy} policy`}`;
        this.opts.events.append(run.id, 'state', `sweep ${sweep.spec.name}: trial ${t.index} ${reason}`);
        this.finishTrial(sweep, t, run, reason);
      }
    }
    // Paused or waiting, a trial keeps its slot: only a run that has ended frees it.
    if (run.state === 'completed' || run.state === 'stopped') this.finishTrial(sweep, t, run);
    this.fill(sweep);
  }

  /**
   * Records a trial's end. With `stopWith`, its run is stopped for that reason (which frees its
   * workers); without, the run has already ended and its own state and reason are taken.
   */
  private finishTrial(sweep: LiveSweep, t: TrialRecord, run: Run | undefined, stopWith?: string): void {
    if (t.state !== 'running') return;
    if (run && stopWith && (run.state === 'running' || run.state === 'paused' || run.state === 'waiting')) {
      run.stopReason = stopWith;
      this.opts.setRunState(run, 'stopped');
    }
    const state: TrialState = !run ? 'failed' : run.state === 'completed' ? 'completed' : 'stopped';
    t.state = state;
    t.stoppedReason = stopWith ?? (run ? (run.stopReason ?? `its run was ${run.state}`) : 'its run was deleted');
    this.byRun.delete(t.runId);
    this.judged.delete(t.runId);
    this.opts.store.saveTrial(t);
    this.opts.log.info({ sweepId: sweep.record.id, runId: t.runId, index: t.index, state, metric: t.metric, reason: t.stoppedReason }, 'sweep trial ended');
  }

  private end(sweep: LiveSweep, state: 'completed' | 'stopped', reason: string): void {
    if (sweep.record.state !== 'running') return;
    for (const t of this.running(sweep)) this.finishTrial(sweep, t, this.opts.scheduler.runs.get(t.runId), `the sweep ended: ${reason}`);
    sweep.record.state = state;
    sweep.record.reason = reason;
    sweep.record.updatedAt = Date.now();
    this.opts.store.saveSweep(sweep.record);
    this.sweeps.delete(sweep.record.id);
    const best = this.best(sweep.spec, sweep.trials);
    this.opts.log.info({ sweepId: sweep.record.id, state, reason, best }, 'sweep ended');
  }

  /** Catches ends no hook reports: an admin's stop, a deleted run, runs that ended while the coordinator was down. */
  private reconcile(): void {
    for (const sweep of [...this.sweeps.values()]) this.reconcileSweep(sweep);
  }

  private reconcileSweep(sweep: LiveSweep): void {
    for (const t of this.running(sweep)) {
      const run = this.opts.scheduler.runs.get(t.runId);
      if (!run) this.finishTrial(sweep, t, undefined);
      else this.observe(t.runId);
      if (sweep.record.state !== 'running') return;
    }
    this.fill(sweep);
  }

  // ---- views -------------------------------------------------------------------------------------

  private best(spec: SweepSpec, trials: TrialRecord[]): SweepBest | null {
    let best: SweepBest | null = null;
    for (const t of trials) if (t.metric !== null && (!best || isBetter(spec.sweep.goal, t.metric, best.metric))) best = { index: t.index, runId: t.runId, metric: t.metric };
    return best;
  }

  private view(sweep: LiveSweep): SweepView {
    return this.viewOf(sweep.record, sweep.spec, sweep.trials);
  }

  private viewOf(record: SweepRecord, spec: SweepSpec, trials: TrialRecord[]): SweepView {
    const views: SweepTrialView[] = trials.map((t) => ({ index: t.index, runId: t.runId, values: t.values, state: t.state, metric: t.metric, stoppedReason: t.stoppedReason }));
    return {
      id: record.id,
      name: record.name,
      state: record.state,
      reason: record.reason,
      createdAt: new Date(record.createdAt).toISOString(),
      spec,
      trials: views,
      best: this.best(spec, trials),
    };
  }
}
