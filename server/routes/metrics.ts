// GET /metrics in Prometheus text format: workers, runs by state, rounds, samples, results
// rejected and late, round latency and tensor traffic. Each app has its own prom-client Registry
// (tests build many apps in one process); values are read from the runs when scraped.
// GET /healthz lives in app.ts.
//
//   crowdtrain_workers_connected                      gauge    workers connected to this coordinator
//   crowdtrain_run_workers{run}                       gauge    workers serving each run
//   crowdtrain_runs{state}                            gauge    runs in each state
//   crowdtrain_run_info{run,name,state}               gauge    1 per run: maps run ids to names
//   crowdtrain_run_samples_per_second{run}            gauge    recent throughput
//   crowdtrain_run_loss{run}, crowdtrain_run_accuracy{run}     last training loss, last test accuracy
//   crowdtrain_rounds_total{run}                      counter  rounds committed (the run's version)
//   crowdtrain_samples_total{run}                     counter  examples folded into committed rounds
//   crowdtrain_results_folded_total{run}              counter  results folded into a round
//   crowdtrain_results_rejected_total{run}            counter  results refused by validation
//   crowdtrain_results_late_total{run}                counter  results that arrived after their round closed
//   crowdtrain_rounds_timed_out_total{run}            counter  rounds closed at their deadline
//   crowdtrain_round_seconds{run,how}                 histogram  round latency, how = complete | deadline
//   crowdtrain_bytes_received_total, crowdtrain_bytes_sent_total  counter  tensor payload bytes from/to workers
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RunState } from '../../shared/protocol.ts';
import type { CoordinatorContext } from '../context.ts';
import type { Run } from '../run.ts';

const RUN_STATES: RunState[] = ['waiting', 'running', 'paused', 'stopped', 'completed'];
/** Round latency buckets, seconds: a fast LAN round is tens of ms; a deadline is seconds. */
const ROUND_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/**
 * Registers GET /metrics.
 * @example metricsRoutes(app, app.crowdtrain); // curl localhost:8080/metrics
 */
export function metricsRoutes(app: FastifyInstance, ctx: CoordinatorContext): void {
  const registry = new Registry();
  const registers = [registry];
  const runs = () => [...ctx.scheduler.runs.values()];

  new Gauge({
    name: 'crowdtrain_workers_connected',
    help: 'Workers connected to this coordinator',
    registers,
    collect() {
      this.set(ctx.scheduler.workers.size);
    },
  });
  new Gauge({
    name: 'crowdtrain_run_workers',
    help: 'Workers serving each run',
    labelNames: ['run'],
    registers,
    collect() {
      this.reset();
      for (const r of runs()) this.set({ run: r.id }, ctx.scheduler.workersOf(r.id).length);
    },
  });
  new Gauge({
    name: 'crowdtrain_runs',
    help: 'Runs in each state',
    labelNames: ['state'],
    registers,
    collect() {
      const counts = new Map<string, number>(RUN_STATES.map((s) => [s, 0]));
      for (const r of runs()) counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
      this.reset();
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'crowdtrain_run_info',
    help: 'One per run: its name and state',
    labelNames: ['run', 'name', 'state'],
    registers,
    collect() {
      this.reset();
      for (const r of runs()) this.set({ run: r.id, name: r.name, state: r.state }, 1);
    },
  });

  const perRunGauge = (name: string, help: string, value: (r: Run) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['run'],
      registers,
      collect() {
        this.reset();
        for (const r of runs()) {
          const v = value(r);
          if (v !== null && Number.isFinite(v)) this.set({ run: r.id }, v);
        }
      },
    });
  perRunGauge('crowdtrain_run_samples_per_second', 'Recent training throughput of each run, examples per second', (r) => r.metrics.at(-1)?.samplesPerSec ?? 0);
  perRunGauge('crowdtrain_run_loss', 'Training loss of the last committed round', (r) => r.loss);
  perRunGauge('crowdtrain_run_accuracy', 'Test accuracy at the last evaluation', (r) => r.accuracy);

  // Counters mirror values the runs keep; a run restored after a restart starts its counters
  // again (Prometheus' rate() treats that as a counter reset), its rounds from the checkpoint.
  const perRunCounter = (name: string, help: string, value: (r: Run) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['run'],
      registers,
      collect() {
        this.reset();
        for (const r of runs()) this.inc({ run: r.id }, Math.max(0, value(r)));
      },
    });
  perRunCounter('crowdtrain_rounds_total', 'Rounds committed', (r) => r.version);
  perRunCounter('crowdtrain_samples_total', 'Examples folded into committed rounds', (r) => r.samples);
  perRunCounter('crowdtrain_results_folded_total', 'Worker results folded into a round', (r) => r.counters.folded);
  perRunCounter('crowdtrain_results_rejected_total', 'Worker results refused by validation', (r) => r.counters.rejected);
  perRunCounter('crowdtrain_results_late_total', 'Worker results that arrived after their round closed', (r) => r.counters.late);
  perRunCounter('crowdtrain_rounds_timed_out_total', 'Rounds closed at their deadline rather than complete', (r) => r.counters.roundsTimedOut);

  new Counter({
    name: 'crowdtrain_run_bytes_total',
    help: 'Payload bytes of a run: up (from workers) and down (to workers), by layer (socket messages, HTTP snapshots)',
    labelNames: ['run', 'direction', 'layer'],
    registers,
    collect() {
      this.reset();
      for (const r of runs()) {
        this.inc({ run: r.id, direction: 'up', layer: 'socket' }, r.traffic.socketIn);
        this.inc({ run: r.id, direction: 'down', layer: 'socket' }, r.traffic.socketOut);
        this.inc({ run: r.id, direction: 'down', layer: 'http' }, r.traffic.httpOut);
      }
    },
  });

  const traffic = (which: 'bytesIn' | 'bytesOut') => (ctx.scheduler as { traffic?: { bytesIn?: number; bytesOut?: number } }).traffic?.[which] ?? 0;
  new Counter({
    name: 'crowdtrain_bytes_received_total',
    help: 'Tensor payload bytes received from workers',
    registers,
    collect() {
      this.reset();
      this.inc(traffic('bytesIn'));
    },
  });
  new Counter({
    name: 'crowdtrain_bytes_sent_total',
    help: 'Tensor payload bytes sent to workers',
    registers,
    collect() {
      this.reset();
      this.inc(traffic('bytesOut'));
    },
  });

  const roundSeconds = new Histogram({
    name: 'crowdtrain_round_seconds',
    help: 'Round latency: from handing out its tasks to closing it',
    labelNames: ['run', 'how'],
    buckets: ROUND_BUCKETS,
    registers,
    collect() {
      // Forget deleted runs' series.
      for (const [runId, hows] of observed) {
        if (ctx.scheduler.runs.has(runId)) continue;
        for (const how of hows) this.remove({ run: runId, how });
        observed.delete(runId);
      }
    },
  });
  const observed = new Map<string, Set<string>>();
  ctx.scheduler.onRoundClosed((run, ms, how) => {
    roundSeconds.observe({ run: run.id, how }, ms / 1000);
    let hows = observed.get(run.id);
    if (!hows) observed.set(run.id, (hows = new Set()));
    hows.add(how);
  });

  app.get('/metrics', async (_req, reply) => {
    const text = await registry.metrics();
    return reply.type(registry.contentType).send(text);
  });
}
