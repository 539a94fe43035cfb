// Synchronous data-parallel rounds: every worker that holds the current parameters gets a task
// sized to its measured speed (task-sizing.ts), results are validated and folded into the round's
// accumulator, and the round commits once every task is in. Tasks have leases: a stalled worker's
// examples go to a worker that is free, or back to the queue, and never hold the round past its
// deadline. A worker that finishes early gets more of the round's time while tasks are out.
//
// The same class runs local mode (DiLoCo, `sync.mode: local`): a task is whole inner steps of
// the worker's own optimizer (H for the worker of median speed, the others in proportion), its
// result the pseudo-gradient, and the commit the coordinator's outer step. A task lost to a
// leaver or a lease is not handed again: its examples go back to the queue, and the round
// commits with the pseudo-gradients that came in.
//
// Parameters go out through the run's ParamChannel: a snapshot over HTTP to a worker that holds
// none, then one message per commit to all (float32 values, or a delta coded as compression.down).
// Results come coded as compression.up and are folded into the round's sum in place.
//
// Spot checks (sync rounds only): a task drawn at its worker's trust (verification/trust.ts) is
// also computed by a worker of another identity, with the same examples on the same version. The
// results are held, not folded, until two agree within the tolerance (verification/replication.ts):
// then one copy is folded; a disagreement goes to a third worker, and the odd one out gets a
// strike. If the round reaches its deadline first, a lone result that only waited for its check is
// folded as unchecked and two that disagree are not (their examples go back to the queue).
// Checks drawn as a round opens are planned into it: the checker's own task shrinks by the
// check's examples and the check goes out with it, so a round with a check takes about as long
// as one without (rather than the checker computing it after its own task, doubling the round).
// Local-mode tasks are not checked: each worker's inner optimizer state is its own, so honest
// pseudo-gradients of the same examples differ by more than a hostile one need to.
import { randomUUID } from 'node:crypto';
import { isBinary } from '../../shared/binary.ts';
import type { RelayMeta, ResultAck, TaskMeta, TaskResult } from '../../shared/protocol.ts';
import { codingOf, UpdateCodecError } from '../../shared/update-codec.ts';
import { aggregationContext, createAccumulator, type Accumulator } from '../accumulator.ts';
import { checkCodedUpdate } from '../aggregator.ts';
import type { TimerHandle } from '../clock.ts';
import type { Run } from '../run.ts';
import { gatherMs, lateTaskSize, leaseMs, localDeadlineMs, lrFactor, planLocalRound, planRound } from '../task-sizing.ts';
import { countTraffic } from '../worker-port.ts';
import type { WorkerEntry } from '../workers.ts';
import { checkable, judge, needsWorker, type Quorum } from '../verification/replication.ts';
import { identityOf } from '../verification/verification.ts';
import { registerRoundMode, type RoundHost, type RoundMode } from './round-mode.ts';

interface Task {
  id: string;
  workerId: string;
  indices: Uint32Array;
  sentAt: number;
  /**
   * When its worker began computing it: sentAt, or, for a task sent while the worker still held
   * another (a check planned into the round), when that one's result came. Times the worker.
   */
  startedAt?: number;
  lease: TimerHandle;
  /** Set when the task is checked: the quorum its result is held in. */
  quorum?: Quorum;
}

interface SyncRound {
  version: number;
  openedAt: number;
  plannedMs: number;
  deadlineMs: number;
  /** Most examples the round may hand out (globalBatch, or sync.maxBatch; unbounded in local mode). */
  budget: number;
  /** Examples handed out so far, re-handed ones not counted twice. */
  assigned: number;
  tasks: Map<string, Task>;
  /** Examples of expired or failed tasks, handed to the next free worker of this round first. */
  pending: number[];
  sum: Accumulator;
  deadline: TimerHandle;
  /** Checked tasks of this round (spot checks). */
  quorums: Quorum[];
  /** Set while the round waits, with no task out, for a free worker to compute a check. */
  checkWait?: TimerHandle;
}

/** A task whose lease ran out or whose round closed: its result is late, but still times its worker. */
interface ExpiredTask {
  workerId: string;
  examples: number;
  sentAt: number;
}

export class SyncRounds implements RoundMode {
  private readonly rounds = new Map<string, SyncRound>();
  /** Until when a run's next round waits for the workers that hold the parameters but are not ready yet. */
  private readonly gathers = new Map<string, { until: number; timer: TimerHandle }>();
  private readonly expired = new Map<string, ExpiredTask>();

  constructor(
    private readonly host: RoundHost,
    /** 'local': DiLoCo's inner steps and outer step; 'sync': one gradient a round. */
    private readonly kind: 'sync' | 'local' = 'sync',
  ) {}

  joined(run: Run, w: WorkerEntry): void {
    this.sendSnapshot(run, w);
  }

  /** The run's current parameters as a snapshot URL: the worker fetches them over HTTP. */
  private sendSnapshot(run: Run, w: WorkerEntry): void {
    const channel = this.host.channel(run);
    if (channel.view.version !== run.version) channel.reset(run.params, run.version);
    w.paramsSent = run.version;
    this.host.port.params(w.id, channel.snapshot().meta, new Uint8Array(0));
  }

  ready(run: Run, w: WorkerEntry, resync = false, dropped?: string): void {
    // Messages to a worker arrive in order: once the newest params were sent, a task sent after
    // them is computed on them. Resend only to a worker that missed them (it joined late) or
    // could not apply a delta (it says so).
    if (w.paramsSent < run.version || resync) this.sendSnapshot(run, w);
    w.version = run.version;
    const round = this.rounds.get(run.id);
    // A task the worker gives up: another worker computes its examples now, and a result for it
    // that still comes is late, not wrong.
    const gone = dropped !== undefined ? round?.tasks.get(dropped) : undefined;
    if (round && gone && gone.workerId === w.id) {
      this.rememberExpired(gone);
      this.host.event(run.id, 'late', `worker ${w.id} gave up task ${gone.id}; its ${gone.indices.length} examples go to another worker`, w.id);
      this.takeBack(run, round, gone);
      if (this.rounds.get(run.id) !== round) return this.ready(run, w);
    }
    // A worker computes one task at a time and says `ready` once its result is answered: a `ready`
    // while it still holds a task of the open round earns nothing (a forged one would otherwise
    // collect tasks it never answers, each holding the round until its lease ends).
    if (round && round.version === run.version && [...round.tasks.values()].some((t) => t.workerId === w.id)) return;
    w.ready = !w.paused;
    if (round && round.version === run.version) {
      if (w.ready) this.offer(run, round, w);
      return;
    }
    this.maybeOpen(run);
  }

  maybeOpen(run: Run): void {
    if (run.state !== 'running' || this.rounds.has(run.id)) return;
    const present = this.host.workersOf(run.id);
    const ready = present.filter((w) => w.ready && w.version === run.version).sort((a, b) => a.joinedAt - b.joinedAt || a.id.localeCompare(b.id));
    if (ready.length === 0 || ready.length < run.spec.sync.minWorkers) return;
    // Start with every worker that will hold the parameters in a moment, not with the first one:
    // those that have computed for this run before (a worker still warming up joins the open
    // round with a task of its own when it is ready, or the next one).
    const coming = present.some((w) => !w.paused && w.speed.known && !(w.ready && w.version === run.version));
    const now = this.host.clock.now();
    let gather = this.gathers.get(run.id);
    if (coming && (!gather || now < gather.until)) {
      if (!gather) {
        const ms = gatherMs(run.spec);
        // The timer ends the gather even when it fires a little before `until` by now() (Node's
        // timers count from the loop's cached time): else no one would call maybeOpen again.
        const over = () => {
          this.gathers.get(run.id)!.until = -Infinity;
          this.maybeOpen(run);
        };
        gather = { until: now + ms, timer: this.host.clock.setTimeout(over, ms) };
        this.gathers.set(run.id, gather);
      }
      return;
    }
    if (gather) this.host.clock.clearTimeout(gather.timer);
    this.gathers.delete(run.id);
    this.open(run, ready);
  }

  private open(run: Run, ready: WorkerEntry[]): void {
    const spec = run.spec;
    const sized = ready.map((w) => ({ id: w.id, speed: w.speed.perSec, satOut: w.satOut }));
    const plan = this.kind === 'local' ? planLocalRound(spec, sized) : planRound(spec, sized);
    const deadlineMs = this.kind === 'local' ? localDeadlineMs(spec, plan.plannedMs) : spec.sync.roundDeadlineMs;
    ready.forEach((w, i) => (w.satOut = plan.sizes[i] > 0 ? 0 : w.satOut + 1));
    const now = this.host.clock.now();
    const round: SyncRound = {
      version: run.version,
      openedAt: now,
      plannedMs: plan.plannedMs,
      deadlineMs,
      budget: this.kind === 'local' ? Infinity : (spec.globalBatch ?? spec.sync.maxBatch),
      assigned: 0,
      tasks: new Map(),
      pending: [],
      sum: createAccumulator(run.spec.aggregation.rule, run.paramCount, aggregationContext(run, run.spec.aggregation, run.paramCount)),
      deadline: this.host.clock.setTimeout(() => this.closeRound(run, 'deadline'), deadlineMs),
      quorums: [],
    };
    this.rounds.set(run.id, round);
    const sizes = [...plan.sizes];
    const checks = this.planChecks(run, ready, sizes);
    // The checked tasks first: their checks go out with (before) their checkers' own tasks.
    for (const { checked, checker } of checks ?? []) {
      const task = this.give(run, round, ready[checked], sizes[checked], false);
      if (!task) continue;
      const q = this.quorumOf(run, round, ready[checked], task);
      if (this.rounds.get(run.id) === round) this.sendCheck(run, round, ready[checker], q);
    }
    const planned = new Set((checks ?? []).map((c) => c.checked));
    ready.forEach((w, i) => {
      if (sizes[i] > 0 && !planned.has(i) && this.rounds.get(run.id) === round) this.give(run, round, w, sizes[i], checks === null);
    });
    // A worker the plan left out checks a task at once.
    for (const w of ready) if (w.ready && this.rounds.get(run.id) === round) this.serveCheck(run, round, w);
    if (this.rounds.get(run.id) === round) this.maybeComplete(run, round);
  }

  /**
   * Hands a worker `n` examples of the round: re-handed ones first, then fresh ones. `draw`: whether
   * the task may be drawn for a spot check here (not when the round's plan already decided).
   */
  private give(run: Run, round: SyncRound, w: WorkerEntry, n: number, draw = true): Task | undefined {
    const fromPending = Math.min(n, round.pending.length);
    const fresh = Math.min(n - fromPending, Math.max(0, round.budget - round.assigned));
    if (fromPending + fresh === 0) return undefined;
    const indices = new Uint32Array(fromPending + fresh);
    indices.set(round.pending.splice(0, fromPending));
    const taken = fresh > 0 ? run.cursor.take(fresh) : { indices: new Uint32Array(0), loose: 0, spans: [] };
    indices.set(taken.indices, fromPending);
    round.assigned += fresh;
    // On the wire: the re-handed and re-queued indices, then spans of the seeded epoch orders the
    // worker walks itself (a few bytes a task instead of four a example).
    const loose = fromPending + taken.loose;
    const order = taken.spans.length ? { examples: run.cursor.count, seed: run.spec.seed, spans: taken.spans } : undefined;
    const task = this.send(run, round, w, indices, order, loose);
    if (draw && this.drawCheck(run, w)) this.quorumOf(run, round, w, task);
    return task;
  }

  /** Sends a task of `indices` (the first `loose` as indices, the rest as `order`'s spans) under a lease. */
  private send(run: Run, round: SyncRound, w: WorkerEntry, indices: Uint32Array, order: TaskMeta['order'], loose: number, quorum?: Quorum): Task {
    const id = randomUUID().slice(0, 12);
    // A worker computes its tasks one after another: the lease of one sent behind others covers theirs too.
    let ahead = 0;
    for (const t of round.tasks.values()) if (t.workerId === w.id) ahead += t.indices.length;
    const ms = leaseMs(run.spec, indices.length + ahead, w.speed.perSec, round.plannedMs, round.deadlineMs);
    const now = this.host.clock.now();
    const task: Task = { id, workerId: w.id, indices, sentAt: now, ...(ahead === 0 ? { startedAt: now } : {}), lease: this.host.clock.setTimeout(() => this.expire(run, id), ms), ...(quorum ? { quorum } : {}) };
    round.tasks.set(id, task);
    w.ready = false;
    const batch = run.spec.batchPerTask;
    const local = this.kind === 'local' ? { local: { steps: indices.length / batch, batch } } : {};
    this.host.port.task(w.id, { taskId: id, runId: run.id, version: round.version, leaseMs: ms, count: indices.length, ...local, ...(order ? { order } : {}) }, order ? indices.subarray(0, loose) : indices);
    return task;
  }

  // ---- spot checks (verification/) ---------------------------------------------------------

  /** Draws whether a sync task of `w` is checked (at its trust), where another identity could check it. */
  private drawCheck(run: Run, w: WorkerEntry): boolean {
    if (this.kind !== 'sync' || !checkable(codingOf(run.spec.compression, 'up'))) return false;
    const key = identityOf(w);
    if (!this.host.workersOf(run.id).some((o) => computes(o) && identityOf(o) !== key)) return false;
    return this.host.verification.shouldCheck(run.id, run.spec.seed, w);
  }

  /** The quorum a checked task's result will wait in for a second worker's. */
  private quorumOf(run: Run, round: SyncRound, w: WorkerEntry, task: Task): Quorum {
    const q: Quorum = { id: task.id, version: round.version, indices: task.indices, holders: new Set([identityOf(w)]), open: new Set([task.id]), results: [], wanted: 2, settled: false, maxDifference: 0 };
    task.quorum = q;
    round.quorums.push(q);
    this.host.verification.stats(run.id).checks++;
    return q;
  }

  /**
   * The checks of a round as it opens, drawn at each worker's trust, each with a checker among the
   * round's other identities: preferably one whose own task is not checked, with the most of the
   * round left. Where task sizes follow speed, that checker's own share shrinks by the check's
   * examples (`sizes` is changed in place): the check costs it the time it would have spent on as
   * many examples of its own.
   * A drawn task with no checker in the round is not checked. Null when nothing was drawn here (a
   * round of one worker): its task is drawn as it is given, and checked by whoever comes.
   */
  private planChecks(run: Run, ready: WorkerEntry[], sizes: number[]): { checked: number; checker: number }[] | null {
    if (this.kind !== 'sync' || ready.length < 2) return null;
    const checks: { checked: number; checker: number }[] = [];
    const keys = ready.map(identityOf);
    const resizable = run.spec.globalBatch === undefined && run.spec.sync.taskSizing !== 'fixed';
    const drawn = ready.map((w, i) => sizes[i] > 0 && this.drawCheck(run, w));
    for (let i = 0; i < ready.length; i++) {
      if (!drawn[i]) continue;
      // A checker whose own task is not checked gives up examples of its own for the check; one whose
      // task is checked too keeps its task whole (both must be computed), and the round takes longer.
      let best = -1;
      for (let j = 0; j < ready.length; j++) {
        if (keys[j] === keys[i] || ready[j].paused) continue;
        if (best < 0 || (drawn[best] && !drawn[j]) || (drawn[best] === drawn[j] && sizes[j] > sizes[best])) best = j;
      }
      if (best < 0) continue;
      checks.push({ checked: i, checker: best });
      // A round of a fixed batch (globalBatch, or fixed task sizes) keeps every example of it: there
      // the check is extra work for its checker, and the round takes longer.
      if (!drawn[best] && resizable) {
        const left = sizes[best] - sizes[i];
        sizes[best] = left >= run.spec.batchPerTask ? left : 0;
      }
    }
    return checks;
  }

  /** Sends a quorum's task to `w` now, even while it holds another task of the round (it queues it). */
  private sendCheck(run: Run, round: SyncRound, w: WorkerEntry, q: Quorum): void {
    q.holders.add(identityOf(w));
    // The examples as indices: the checker computes exactly what the first worker did.
    const task = this.send(run, round, w, q.indices, undefined, q.indices.length, q);
    q.open.add(task.id);
    this.host.verification.stats(run.id).replicaExamples += q.indices.length;
  }

  /** Gives a free worker the task of a quorum that needs another result and that it has not held; true if it did. */
  private serveCheck(run: Run, round: SyncRound, w: WorkerEntry): boolean {
    if (!w.ready || w.version !== round.version) return false;
    const key = identityOf(w);
    const q = round.quorums.find((x) => needsWorker(x) && !x.holders.has(key));
    if (!q) return false;
    if (round.checkWait && !round.quorums.some((x) => x !== q && needsWorker(x))) {
      this.host.clock.clearTimeout(round.checkWait);
      round.checkWait = undefined;
    }
    this.sendCheck(run, round, w, q);
    return true;
  }

  /** Offers the round's checks to its free workers. */
  private serveChecks(run: Run, round: SyncRound): void {
    for (const w of this.host.workersOf(run.id)) {
      if (!round.quorums.some(needsWorker)) return;
      this.serveCheck(run, round, w);
    }
  }

  /**
   * Closes the round once no task is out and no check waits for a worker who could still come: one
   * that computes (it has been timed, or is ready) and is of another identity. A worker that just
   * sent its result says `ready` within a round trip; one that never does (a joiner that idles, a
   * hostile one) holds the round for at most half its planned time, then the check is given up.
   */
  private maybeComplete(run: Run, round: SyncRound): void {
    if (this.rounds.get(run.id) !== round || round.tasks.size > 0) return;
    const present = this.host.workersOf(run.id).filter(computes);
    let waiting = false;
    for (const q of round.quorums) {
      if (!needsWorker(q)) continue;
      if (present.some((w) => !q.holders.has(identityOf(w)))) waiting = true;
      else this.giveUp(run, round, q, 'no other worker is left to compute it');
    }
    if (!waiting) return this.closeRound(run, 'complete');
    round.checkWait ??= this.host.clock.setTimeout(() => {
      round.checkWait = undefined;
      if (this.rounds.get(run.id) !== round) return;
      for (const q of round.quorums) if (needsWorker(q)) this.giveUp(run, round, q, 'no worker was free to compute it in time');
      this.maybeComplete(run, round);
    }, Math.max(200, round.plannedMs / 2));
  }

  /**
   * A quorum that cannot be completed. One result that was only waiting for its check is folded as
   * if it had not been drawn (there is no one to check it against); two that disagree are not folded.
   */
  private giveUp(run: Run, round: SyncRound, q: Quorum, why: string): void {
    q.settled = true;
    if (q.results.length === 1 && q.wanted === 2) return this.foldHeld(run, round, q.results[0]);
    this.host.verification.stats(run.id).unsettled++;
    run.cursor.requeue(q.indices);
    if (q.results.length > 0) this.host.event(run.id, 'check', `check of task ${q.id} left unsettled (${why}): its ${q.results.length} result(s) not folded, its examples back in the queue`);
  }

  /** Folds one held result of a quorum into the round (its copy, once). */
  private foldHeld(run: Run, round: SyncRound, r: Quorum['results'][number]): void {
    const coding = codingOf(run.spec.compression, 'up');
    round.sum.addCoded(coding, r.bytes, r.meta.samples, r.meta.loss, r.workerId);
    run.counters.folded++;
    this.host.verification.lossUsed(run.id, r.meta.loss);
    this.host.onFold?.(run, round.version, r.meta);
  }

  /** A checked task's result: held in its quorum, which is judged once it holds two. */
  private hold(run: Run, round: SyncRound, task: Task, w: WorkerEntry, meta: TaskResult, bytes: Uint8Array, ack: (a: ResultAck) => void): void {
    const q = task.quorum!;
    this.host.clock.clearTimeout(task.lease);
    round.tasks.delete(task.id);
    q.open.delete(task.id);
    ack({ ok: true });
    if (!q.settled) {
      q.results.push({ workerId: w.id, key: identityOf(w), backend: w.hello.backend, meta, bytes });
      this.settle(run, round, q);
    }
    if (round.quorums.some(needsWorker)) this.serveChecks(run, round);
    this.maybeComplete(run, round);
  }

  private settle(run: Run, round: SyncRound, q: Quorum): void {
    const verification = this.host.verification;
    // A result from a worker banned meanwhile is not counted.
    q.results = q.results.filter((r) => !verification.banOf(run.id, r.key));
    const coding = codingOf(run.spec.compression, 'up');
    const tolerance = verification.tolerance[coding.kind] ?? 0;
    const verdict = judge(q, coding, run.paramCount, tolerance);
    const stats = verification.stats(run.id);
    const who = (r: { workerId: string; backend: string }) => `worker ${r.workerId} (${r.backend})`;
    switch (verdict.kind) {
      case 'waiting':
        return;
      case 'agreed': {
        q.settled = true;
        stats.agreed++;
        stats.maxAgreeingDifference = Math.max(stats.maxAgreeingDifference, verdict.difference);
        this.foldHeld(run, round, verdict.agreed);
        for (const r of verdict.agreeing) {
          verification.agree(run.id, r.key, r.workerId, r.backend);
          // Each worker that computed an agreeing copy is credited with it.
          const agreeing = this.host.workersOf(run.id).find((x) => x.id === r.workerId);
          if (!agreeing) continue;
          agreeing.tasksDone++;
          agreeing.samples += r.meta.samples;
          this.host.workerChanged(agreeing);
        }
        for (const r of verdict.wrong) {
          const reason = `its result for task ${q.id} (round ${q.version + 1}) differs from ${verdict.agreeing.map(who).join(' and ')}'s, which agree`;
          const wrong = this.host.workersOf(run.id).find((x) => x.id === r.workerId);
          if (wrong) wrong.rejected++;
          run.counters.rejected++;
          this.host.event(run.id, 'strike', `strike for ${who(r)}: ${reason}`, r.workerId);
          const ban = verification.strike(run.id, r.key, r.workerId, r.backend, reason);
          if (ban) this.host.event(run.id, 'ban', `${who(r)} banned from the run: ${ban.reason}`, r.workerId);
        }
        return;
      }
      case 'third':
        q.wanted = 3;
        stats.disagreements++;
        stats.minDisagreeingDifference = Math.min(stats.minDisagreeingDifference ?? Infinity, verdict.difference);
        this.host.event(run.id, 'check', `results of task ${q.id} differ by ${verdict.difference.toPrecision(3)} (relative L2, tolerance ${tolerance}): a third worker decides`);
        return;
      case 'inconclusive':
        q.settled = true;
        stats.inconclusive++;
        run.cursor.requeue(q.indices);
        this.host.event(run.id, 'check', `the three results of task ${q.id} all differ: none folded, no strike, its examples back in the queue`);
        return;
    }
  }

  /** A free worker during an open round: the examples of a failed task, or more of the round's time. */
  private offer(run: Run, round: SyncRound, w: WorkerEntry): void {
    if (this.kind === 'local') {
      // A worker free mid-round (a joiner, or one that finished early) takes whole steps in the time left.
      const b = run.spec.batchPerTask;
      const msLeft = round.openedAt + round.plannedMs - this.host.clock.now();
      if (run.spec.sync.taskSizing === 'fixed' || !(w.speed.perSec > 0) || msLeft < round.plannedMs / 2) return;
      const steps = Math.min(2 * run.spec.sync.innerSteps, Math.floor((w.speed.perSec * msLeft) / 1000 / b));
      if (steps >= 1) this.give(run, round, w, steps * b);
      return;
    }
    if (this.serveCheck(run, round, w)) return;
    if (round.pending.length > 0) {
      const size = Math.max(run.spec.batchPerTask, Math.ceil((w.speed.perSec * round.plannedMs) / 1000));
      this.give(run, round, w, Math.min(size, round.pending.length));
      return;
    }
    if (run.spec.globalBatch !== undefined) return; // the batch is fixed and handed out
    const msLeft = round.openedAt + round.plannedMs - this.host.clock.now();
    const n = lateTaskSize(run.spec, w.speed.perSec, msLeft, round.budget - round.assigned, round.plannedMs);
    if (n > 0) this.give(run, round, w, n);
  }

  /** Takes a task back (lease over, worker gone, bad result): its examples go to a free worker or the queue. */
  private takeBack(run: Run, round: SyncRound, task: Task): void {
    this.host.clock.clearTimeout(task.lease);
    round.tasks.delete(task.id);
    const q = task.quorum;
    if (q) {
      q.open.delete(task.id);
      // Nothing computed of it yet and no one else on it: it goes on as an unchecked task. Else the
      // quorum asks another worker (or has already folded or re-queued its examples).
      const untouched = !q.settled && q.results.length === 0 && q.open.size === 0;
      if (!untouched) return this.afterTakeBack(run, round, task);
      q.settled = true;
    }
    // Local mode: the lost inner steps are not redone this round; their examples go back to the queue.
    if (this.kind === 'local') run.cursor.requeue(task.indices);
    else for (let i = 0; i < task.indices.length; i++) round.pending.push(task.indices[i]);
    this.afterTakeBack(run, round, task);
  }

  /** The examples of a task taken back (or the check it was part of) to the round's free workers. */
  private afterTakeBack(run: Run, round: SyncRound, task: Task): void {
    for (const w of this.host.workersOf(run.id)) {
      if (round.pending.length === 0 && !round.quorums.some(needsWorker)) break;
      if (this.rounds.get(run.id) !== round) return;
      if (w.ready && w.version === round.version && w.id !== task.workerId) this.offer(run, round, w);
    }
    this.maybeComplete(run, round);
  }

  private expire(run: Run, taskId: string): void {
    const round = this.rounds.get(run.id);
    const task = round?.tasks.get(taskId);
    if (!round || !task) return;
    this.rememberExpired(task);
    this.host.event(run.id, 'late', `task ${taskId} of worker ${task.workerId} passed its lease; its ${task.indices.length} examples go to another worker`, task.workerId);
    this.takeBack(run, round, task);
  }

  private rememberExpired(task: Task): void {
    if (this.expired.size > 10_000) this.expired.clear();
    this.expired.set(task.id, { workerId: task.workerId, examples: task.indices.length, sentAt: task.sentAt });
  }

  result(run: Run, w: WorkerEntry, meta: TaskResult, data: unknown, ack: (a: ResultAck) => void): void {
    const reject = (error: string, counts = true) => {
      if (counts) {
        w.rejected++;
        run.counters.rejected++;
      } else run.counters.late++;
      ack({ ok: false, error });
      this.host.log.warn({ workerId: w.id, taskId: meta.taskId, runId: run.id, error }, 'result rejected');
      this.host.event(run.id, counts ? 'reject' : 'late', `result of worker ${w.id} not used: ${error}`, w.id);
    };
    const round = this.rounds.get(run.id);
    const task = round?.tasks.get(meta.taskId);
    if (!round || !task) {
      const late = this.expired.get(meta.taskId);
      if (late && late.workerId === w.id) {
        this.expired.delete(meta.taskId);
        // Its worker is slower than measured: time it, so that its next task is smaller.
        w.speed.observe(late.examples, this.host.clock.now() - late.sentAt);
        return reject('late: its lease ran out or its round closed before this result arrived', false);
      }
      return reject(`unknown task ${meta.taskId}`);
    }
    if (task.workerId !== w.id) return reject(`task ${meta.taskId} belongs to another worker`);
    if (meta.version !== round.version) return reject(`result computed on version ${meta.version}, the round is at ${round.version}`);
    if (meta.samples !== task.indices.length) return reject(`result covers ${meta.samples} samples, the task had ${task.indices.length}`);
    const implausible = this.host.verification.lossRefusal(run.id, meta.loss);
    if (implausible) {
      // The task goes back first: the worker's next `ready` must find it free.
      this.takeBack(run, round, task);
      return reject(implausible);
    }
    if (!isBinary(data)) return reject('gradient must be a binary attachment');
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    countTraffic(this.host.traffic, run.id, 'socketIn', bytes.byteLength);
    const now = this.host.clock.now();
    w.speed.observe(task.indices.length, now - (task.startedAt ?? task.sentAt));
    // The worker's next task (a planned check) starts now.
    for (const t of round.tasks.values()) {
      if (t.workerId === w.id && t !== task && t.startedAt === undefined) {
        t.startedAt = now;
        break;
      }
    }
    const coding = codingOf(run.spec.compression, 'up');
    if ((meta.coding ?? 'none') !== coding.kind) {
      // The task goes back first: the worker's next `ready` must find it free.
      this.takeBack(run, round, task);
      return reject(`result coded as ${meta.coding ?? 'none'}; this run's compression.up is ${coding.kind}`);
    }
    const check = checkCodedUpdate(coding, bytes, run.paramCount, meta.loss, round.sum.maxNorm?.(this.host.maxGradientNorm) ?? this.host.maxGradientNorm);
    if (!check.ok) {
      // The task goes back first: the worker's next `ready` must find it free.
      this.takeBack(run, round, task);
      return reject(check.message!);
    }
    if (task.quorum) return this.hold(run, round, task, w, meta, bytes, ack);
    try {
      round.sum.addCoded(coding, bytes, meta.samples, meta.loss, w.id);
    } catch (err) {
      if (!(err instanceof UpdateCodecError)) throw err;
      // The task goes back first: the worker's next `ready` must find it free.
      this.takeBack(run, round, task);
      return reject(err.message);
    }
    this.host.clock.clearTimeout(task.lease);
    round.tasks.delete(task.id);
    run.counters.folded++;
    this.host.verification.lossUsed(run.id, meta.loss);
    w.tasksDone++;
    w.samples += meta.samples;
    this.host.onFold?.(run, round.version, meta);
    this.host.workerChanged(w);
    ack({ ok: true });
    this.maybeComplete(run, round);
  }

  relay(): void {
    // Data-parallel workers relay nothing; a relay here is ignored.
  }

  /** Ends the run's open round: its timers stop, and what was not computed goes back to the cursor (late results are expected). */
  private release(run: Run): SyncRound | undefined {
    const round = this.rounds.get(run.id);
    if (!round) return undefined;
    this.rounds.delete(run.id);
    this.host.clock.clearTimeout(round.deadline);
    if (round.checkWait) this.host.clock.clearTimeout(round.checkWait);
    for (const task of round.tasks.values()) {
      this.host.clock.clearTimeout(task.lease);
      this.rememberExpired(task);
      if (!task.quorum) run.cursor.requeue(task.indices);
    }
    // A check the round could not settle: neither result is folded, the examples go back once.
    for (const q of round.quorums) {
      if (q.settled) continue;
      q.settled = true;
      this.host.verification.stats(run.id).unsettled++;
      run.cursor.requeue(q.indices);
    }
    if (round.pending.length) run.cursor.requeue(round.pending);
    return round;
  }

  private closeRound(run: Run, how: 'complete' | 'deadline'): void {
    const open = this.rounds.get(run.id);
    // A result that only waited for its check, whose checker did not answer in time, is folded as
    // if it had not been drawn (as when no checker is left); disagreements stay unfolded.
    for (const q of open?.quorums ?? []) if (!q.settled && q.results.length === 1 && q.wanted === 2) this.giveUp(run, open!, q, 'its checker did not answer before the round closed');
    const round = this.release(run);
    if (!round) return;
    if (how === 'deadline') {
      run.counters.roundsTimedOut++;
      this.host.log.warn({ runId: run.id, version: round.version, missing: round.tasks.size }, 'round closed at its deadline');
      this.host.event(run.id, 'round-timeout', `round ${round.version + 1} closed at its ${round.deadlineMs} ms deadline without ${round.tasks.size} result(s)`);
    }
    this.host.roundClosed(run, this.host.clock.now() - round.openedAt, how);
    const { sum } = round;
    if (sum.weight > 0 && run.state === 'running') {
      const factor = this.kind === 'local' ? 1 : lrFactor(run.spec, sum.weight);
      this.host.commit(run, { update: sum.mean(), samples: sum.weight, loss: sum.meanLoss(), openedAt: round.openedAt, lrFactor: factor }, () => this.publish(run));
    } else {
      sum.release?.();
      if (sum.weight > 0) this.host.log.info({ runId: run.id, state: run.state }, 'round discarded: run not running');
    }
    this.maybeOpen(run);
  }

  /**
   * The new parameters to every worker of the run, as one broadcast: a delta against the version
   * they hold (or the values, uncompressed). If the run's parameters changed outside the rounds
   * (a restored checkpoint), the channel starts over from them and sends them in full.
   */
  private publish(run: Run): void {
    const channel = this.host.channel(run);
    if (channel.view.version === run.version - 1) {
      const { meta, data } = channel.publish(run.params, run.version);
      this.host.port.broadcastParams(run.id, meta, data);
    } else {
      channel.reset(run.params, run.version);
      this.host.port.broadcastParams(run.id, { runId: run.id, version: run.version, count: run.paramCount, form: 'full' }, channel.view.params);
    }
    for (const w of this.host.workersOf(run.id)) w.paramsSent = run.version;
  }

  left(run: Run, w: WorkerEntry): void {
    aggregationContext(run, run.spec.aggregation, run.paramCount).state.forget(w.id);
    const round = this.rounds.get(run.id);
    if (!round) return this.maybeOpen(run);
    for (const task of [...round.tasks.values()]) {
      if (task.workerId === w.id && this.rounds.get(run.id) === round) this.takeBack(run, round, task);
    }
    if (!this.rounds.has(run.id)) this.maybeOpen(run);
  }

  stop(run: Run): void {
    const gather = this.gathers.get(run.id);
    if (gather) this.host.clock.clearTimeout(gather.timer);
    this.gathers.delete(run.id);
    this.release(run)?.sum.release?.();
  }

  /** Examples each open task holds, by worker (tests and the benchmark read the schedule). */
  openTasks(runId: string): { workerId: string; examples: number; sentAt: number }[] {
    const round = this.rounds.get(runId);
    return round ? [...round.tasks.values()].map((t) => ({ workerId: t.workerId, examples: t.indices.length, sentAt: t.sentAt })) : [];
  }

  close(): void {
    for (const r of this.rounds.values()) {
      this.host.clock.clearTimeout(r.deadline);
      if (r.checkWait) this.host.clock.clearTimeout(r.checkWait);
      for (const t of r.tasks.values()) this.host.clock.clearTimeout(t.lease);
    }
    for (const g of this.gathers.values()) this.host.clock.clearTimeout(g.timer);
    this.rounds.clear();
    this.gathers.clear();
  }
}

/** A worker that will compute a check: not paused, and timed on a task before or ready now. */
function computes(w: WorkerEntry): boolean {
  return !w.paused && (w.ready || w.speed.known);
}

registerRoundMode('sync', (host) => new SyncRounds(host, 'sync'));
registerRoundMode('local', (host) => new SyncRounds(host, 'local'));
