// Evaluation off the event loop: one worker_threads thread (server/eval-worker.ts) that holds each
// dataset's fixed evaluation examples and evaluates copies of parameters, so a long evaluation
// (a transformer on a thousand windows) never delays a round. Per lane (a run) one evaluation
// runs at a time; one asked for while it runs waits as the lane's only queued job, and a newer
// one supersedes it (the superseded one answers null). Which rounds to evaluate and what to do
// with the numbers is the scheduler's business, not this file's.
import type { Worker } from 'node:worker_threads';
import { labelWidthOf, type Dataset } from '../shared/dataset.ts';
import type { LayerConfig } from '../shared/layers/layer.ts';
import type { Evaluation } from './scheduler.ts';
import { startTsThread } from './ts-thread.ts';

/** What the main thread sends the evaluation thread. */
export type ToEvalThread =
  | { type: 'examples'; key: string; examples: Dataset }
  | { type: 'evaluate'; id: number; key: string; layers: LayerConfig[]; inputShape: number[]; params: Float32Array };

/** What the evaluation thread answers, once per 'evaluate'. */
export type FromEvalThread = { type: 'result'; id: number; evaluation: Evaluation } | { type: 'error'; id: number; message: string };

export interface EvalJob {
  /** Names the evaluation examples (dataset and count); they travel to the thread once per key. */
  key: string;
  /** The examples under `key`, asked for only when the thread does not hold them yet. */
  examples: () => Dataset;
  layers: LayerConfig[];
  inputShape: number[];
  /** The parameters to evaluate; copied when the job is accepted, so the caller may keep training. */
  params: Float32Array;
}

interface Pending {
  job: EvalJob;
  resolve: (e: Evaluation | null) => void;
  reject: (err: Error) => void;
}

interface Lane {
  running: Pending | null;
  queued: Pending | null;
}

const ENTRY = new URL('./eval-worker.ts', import.meta.url);

/** The examples' own bytes (a view's whole buffer would otherwise be copied to the thread). */
function ownBytes(ds: Dataset): Dataset {
  return { ...ds, x: ds.x.slice(0, ds.count * ds.features), y: ds.y.slice(0, ds.count * labelWidthOf(ds)) };
}

/**
 * @example
 * const thread = new EvalThread();
 * const ev = await thread.evaluate(run.id, { key: 'mnist:2000', examples: () => sliceExamples(test, 0, 2000), layers, inputShape, params });
 * await thread.close();
 */
export class EvalThread {
  private worker: Worker | null = null;
  /** Example keys the current thread holds. */
  private held = new Set<string>();
  private lanes = new Map<string, Lane>();
  private inFlight = new Map<number, { lane: string; pending: Pending }>();
  private seq = 0;
  private closed = false;

  /** Evaluations started (tests read it). */
  started = 0;

  /** Evaluates `job` when its lane is free; null when a newer job of the lane superseded it or the thread closed. */
  evaluate(lane: string, job: EvalJob): Promise<Evaluation | null> {
    return new Promise((resolve, reject) => {
      if (this.closed) return resolve(null);
      const pending: Pending = { job: { ...job, params: job.params.slice() }, resolve, reject };
      let l = this.lanes.get(lane);
      if (!l) this.lanes.set(lane, (l = { running: null, queued: null }));
      if (l.running) {
        l.queued?.resolve(null);
        l.queued = pending;
        return;
      }
      this.start(lane, l, pending);
    });
  }

  /** Whether an evaluation of `lane` is running or queued. */
  busy(lane: string): boolean {
    return this.lanes.has(lane);
  }

  /** Stops the thread; evaluations still running or queued answer null. */
  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = null;
    for (const { pending } of this.inFlight.values()) pending.resolve(null);
    for (const l of this.lanes.values()) l.queued?.resolve(null);
    this.inFlight.clear();
    this.lanes.clear();
    if (worker) await worker.terminate();
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = startTsThread(ENTRY);
    // A coordinator that forgets to close must still be able to exit.
    worker.unref();
    worker.on('message', (m: FromEvalThread) => {
      if (m.type === 'result') this.settle(m.id, m.evaluation, null);
      else this.settle(m.id, null, new Error(m.message));
    });
    const fail = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = null;
      this.held.clear();
      for (const id of [...this.inFlight.keys()]) this.settle(id, null, err);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the evaluation thread exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  private start(lane: string, l: Lane, pending: Pending): void {
    l.running = pending;
    const id = ++this.seq;
    this.inFlight.set(id, { lane, pending });
    this.started++;
    const { key, layers, inputShape, params } = pending.job;
    try {
      const worker = this.thread();
      if (!this.held.has(key)) {
        worker.postMessage({ type: 'examples', key, examples: ownBytes(pending.job.examples()) } satisfies ToEvalThread);
        this.held.add(key);
      }
      worker.postMessage({ type: 'evaluate', id, key, layers, inputShape, params } satisfies ToEvalThread, [params.buffer as ArrayBuffer]);
    } catch (err) {
      this.settle(id, null, err as Error);
    }
  }

  private settle(id: number, evaluation: Evaluation | null, err: Error | null): void {
    const entry = this.inFlight.get(id);
    if (!entry) return;
    this.inFlight.delete(id);
    const l = this.lanes.get(entry.lane)!;
    l.running = null;
    if (err) entry.pending.reject(err);
    else entry.pending.resolve(evaluation);
    const next = l.queued;
    l.queued = null;
    if (next && !this.closed) this.start(entry.lane, l, next);
    else this.lanes.delete(entry.lane);
  }
}
