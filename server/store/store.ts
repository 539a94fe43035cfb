// What the coordinator keeps across restarts, behind one interface so that SQLite (one machine)
// can give way to a server database (several coordinator processes) without touching callers.
import type { RunEvent } from '../event-log.ts';
import type { MetricPoint } from '../run.ts';
import type { RunState } from '../../shared/protocol.ts';
import type { LeaderboardEntry } from '../../shared/rest-types.ts';
import type { RunSpec } from '../../shared/run-spec.ts';

export interface RunRecord {
  id: string;
  name: string;
  spec: RunSpec;
  state: RunState;
  version: number;
  samples: number;
  loss: number | null;
  accuracy: number | null;
  stopReason: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface CheckpointRecord {
  runId: string;
  version: number;
  /** Path of the safetensors file, relative to the data dir. */
  path: string;
  bytes: number;
  sha256: string;
  time: number;
}

export interface WorkerRecord {
  runId: string;
  workerId: string;
  nickname: string | null;
  backend: string;
  adapter: string;
  tasksDone: number;
  samples: number;
  rejected: number;
  firstSeen: number;
  lastSeen: number;
}

// Declared in shared/ (the pages read it from GET /api/runs/:id/leaderboard).
export type { LeaderboardEntry } from '../../shared/rest-types.ts';
export const ANONYMOUS = 'anonymous';

/** An admin session: kept by the SHA-256 of its id, so a copy of the store logs no one in. */
export interface SessionRecord {
  /** Hex SHA-256 of the session id the cookie carries. */
  idHash: string;
  createdAt: number;
  expiresAt: number;
}

/** How a sweep stands: running (trials start as slots free up), completed, or stopped by the admin. */
export type SweepState = 'running' | 'completed' | 'stopped';
/** A trial's run: running (or paused), completed by its stop rule, stopped (early, or by the admin), failed (never started or lost). */
export type TrialState = 'running' | 'completed' | 'stopped' | 'failed';
export type TrialValue = number | string | boolean;

/** A sweep: its spec as submitted (parsed), and how it ended. Its trials are kept apart, one row each. */
export interface SweepRecord {
  id: string;
  name: string;
  /** The parsed sweep spec (shared/sweep-spec.ts's SweepSpec), seed included: the sampler is rebuilt from it. */
  spec: unknown;
  state: SweepState;
  /** Why the sweep ended (maxTrials finished, target reached, stopped), null while running. */
  reason: string | null;
  createdAt: number;
  updatedAt: number;
}

/** One trial of a sweep: the values the sampler drew, the run it became and how it went. */
export interface TrialRecord {
  sweepId: string;
  /** 0, 1, 2, ... in the order drawn: the sampler's index. */
  index: number;
  runId: string;
  values: Record<string, TrialValue>;
  state: TrialState;
  /** The trial's best evaluation of the sweep's metric, in the goal's direction; null before its first. */
  metric: number | null;
  /** Why it stopped ("stopped early: ...", the run's stop rule, the admin), null while running. */
  stoppedReason: string | null;
}

export interface Store {
  saveRun(r: RunRecord): void;
  getRun(id: string): RunRecord | undefined;
  listRuns(): RunRecord[];
  deleteRun(id: string): void;

  appendMetric(runId: string, p: MetricPoint): void;
  metrics(runId: string, limit?: number): MetricPoint[];
  /** An evaluation that arrived after its round's point was appended. */
  setMetricEvaluation(runId: string, version: number, accuracy: number | null, evalLoss: number | null): void;
  /** Drops metric points past `version` (rounds lost in a crash, about to be redone). */
  truncateMetrics(runId: string, afterVersion: number): void;

  appendEvent(e: RunEvent): void;
  events(runId: string, limit?: number): RunEvent[];

  /** May be written later (SQLite batches them a second); the reads below see it at once. */
  saveWorker(w: WorkerRecord): void;
  workers(runId: string): WorkerRecord[];
  /** Contributions per nickname, most samples first. */
  leaderboard(runId: string): LeaderboardEntry[];

  addCheckpoint(c: CheckpointRecord): void;
  latestCheckpoint(runId: string): CheckpointRecord | undefined;
  checkpoints(runId: string): CheckpointRecord[];

  saveSession(s: SessionRecord): void;
  getSession(idHash: string): SessionRecord | undefined;
  deleteSession(idHash: string): void;
  /** Deletes the sessions expired at `now`; returns how many. */
  sweepSessions(now: number): number;

  saveSweep(s: SweepRecord): void;
  getSweep(id: string): SweepRecord | undefined;
  /** Oldest first. */
  listSweeps(): SweepRecord[];
  saveTrial(t: TrialRecord): void;
  /** A sweep's trials by index. */
  trials(sweepId: string): TrialRecord[];

  getSetting(key: string): string | undefined;
  setSetting(key: string, value: string): void;

  close(): void;
}
