// The shapes of the coordinator's REST answers and of the admin Socket.IO namespace, declared once
// for the server that sends them and the pages that read them. Routes are listed in
// server/routes/runs.ts and server/routes/admin.ts; error codes and statuses in server/errors.ts.
// The worker protocol lives in protocol.ts, the board's in board-protocol.ts.
import type { MetricPoint, Placement, RunSummary } from './protocol.ts';

/** One issue of an invalid run spec: the field's path and what is wrong with it. */
export interface SpecIssue {
  path: string;
  message: string;
}

/** Every error answer: `{ error: code, message }`, plus `issues` for an invalid spec. */
export interface ApiErrorBody {
  error?: string;
  message?: string;
  issues?: SpecIssue[];
}

/** One row of the admin page's worker table (GET /api/runs/:id/workers, the `workers` event). */
export interface AdminWorker {
  id: string;
  runId: string;
  nickname: string | null;
  /** GPU adapter as the worker reported it ("vendor architecture description"), '' when unknown. */
  adapter: string;
  backend: string;
  samplesPerSec: number;
  tasksDone: number;
  samples: number;
  rejected: number;
  /** ISO time. */
  lastSeen: string;
  connected: boolean;
  /** Pipeline runs: which layers of which replica it holds (null: standby, or not a pipeline run). */
  placement: Placement | null;
  /** Bytes it reported allocating for its model or stage. */
  allocatedBytes: number | null;
}

/** What POST /api/specs/preview answers: the model a spec would train, before any run exists. */
export interface SpecPreview {
  /** Shape of one example as the first layer sees it ([1, 28, 28] for mnist's images). */
  inputShape: number[];
  /** Shorthands expanded (a transformer-block is two residual layers; the mlp form dense layers). */
  layers: { index: number; kind: string; outShape: number[]; params: number }[];
  paramCount: number;
  /** The model in one line, as the board shows it. */
  line: string;
}

/** One nickname's contribution to a run, over every worker (tab) that used it (GET /api/runs/:id/leaderboard). */
export interface LeaderboardEntry {
  /** "anonymous" for workers that gave none. */
  nickname: string;
  /** Examples whose gradients were folded into the run. */
  samples: number;
  /** Tasks done: one per round joined (data parallel) or stage computed (pipeline). */
  rounds: number;
  workers: number;
}

/**
 * One entry of a run's event log as the admin page gets it (GET /api/runs/:id/events, the `event`
 * event). The server's RunEvent (server/event-log.ts) narrows `kind` to the kinds it writes.
 */
export interface RunEventEntry {
  runId: string;
  /** Milliseconds since the epoch. */
  time: number;
  kind: string;
  message: string;
  workerId?: string;
}

/** The admin namespace's events, server to admin page. */
export interface AdminServerEvents {
  runs: (runs: RunSummary[]) => void;
  metric: (m: { runId: string; point: MetricPoint }) => void;
  /** A point already sent, again with its evaluation's numbers (they arrived after it). */
  evaluation: (m: { runId: string; point: MetricPoint }) => void;
  workers: (w: { runId: string; workers: AdminWorker[] }) => void;
  event: (e: RunEventEntry) => void;
}

/** One trial of a sweep: a run drawn with these parameter values (GET /api/sweeps/:id). */
export interface SweepTrialView {
  /** 0, 1, 2, ... in the order drawn; its run is named `<sweep>-t<index>`. */
  index: number;
  /** The trial's run ('' if it could not be created). */
  runId: string;
  /** The swept fields' values, by field path ('optimizer.lr': 0.03). */
  values: Record<string, number | string | boolean>;
  state: 'running' | 'completed' | 'stopped' | 'failed';
  /** Its best evaluation of the sweep's metric, in the goal's direction; null before the first. */
  metric: number | null;
  /** Why it stopped ("stopped early: ..." for the early-termination policy), null while running. */
  stoppedReason: string | null;
}

/** The best trial so far: the one whose best metric is best in the goal's direction. */
export interface SweepBest {
  index: number;
  runId: string;
  metric: number;
}

/** A sweep as GET /api/sweeps and GET /api/sweeps/:id show it (POST /api/sweeps answers `{ sweep }`). */
export interface SweepView {
  id: string;
  name: string;
  state: 'running' | 'completed' | 'stopped';
  /** Why it ended, null while running. */
  reason: string | null;
  createdAt: string;
  /** The sweep spec as parsed (shared/sweep-spec.ts's SweepSpec): base run spec, settings, seed. */
  spec: unknown;
  trials: SweepTrialView[];
  best: SweepBest | null;
}
