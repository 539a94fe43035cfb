// The Store on one machine: SQLite through better-sqlite3 (12.x: 13 needs Node 22), WAL mode,
// schema migrations in code. Checkpoint files live beside it; this file only indexes them.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { RunEvent } from '../event-log.ts';
import type { MetricPoint } from '../run.ts';
import { WorkerBatch } from './worker-batch.ts';
import { ANONYMOUS, type CheckpointRecord, type LeaderboardEntry, type RunRecord, type SessionRecord, type Store, type SweepRecord, type TrialRecord, type WorkerRecord } from './store.ts';

/** Each entry moves the schema one version up; never edit a released one, append. */
const MIGRATIONS: string[] = [
  `CREATE TABLE runs (
     id TEXT PRIMARY KEY, name TEXT NOT NULL, spec TEXT NOT NULL, state TEXT NOT NULL,
     version INTEGER NOT NULL, samples INTEGER NOT NULL, loss REAL, accuracy REAL,
     stop_reason TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
   CREATE TABLE metrics (
     run_id TEXT NOT NULL, version INTEGER NOT NULL, time INTEGER NOT NULL, loss REAL, accuracy REAL,
     samples_per_sec REAL NOT NULL, workers INTEGER NOT NULL, samples INTEGER NOT NULL);
   CREATE INDEX metrics_run ON metrics (run_id, version);
   CREATE TABLE events (
     id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, time INTEGER NOT NULL,
     kind TEXT NOT NULL, message TEXT NOT NULL, worker_id TEXT);
   CREATE INDEX events_run ON events (run_id, id);
   CREATE TABLE workers (
     run_id TEXT NOT NULL, worker_id TEXT NOT NULL, nickname TEXT, backend TEXT NOT NULL, adapter TEXT NOT NULL,
     tasks_done INTEGER NOT NULL, samples INTEGER NOT NULL, rejected INTEGER NOT NULL,
     first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, PRIMARY KEY (run_id, worker_id));
   CREATE TABLE checkpoints (
     run_id TEXT NOT NULL, version INTEGER NOT NULL, path TEXT NOT NULL, bytes INTEGER NOT NULL,
     sha256 TEXT NOT NULL, time INTEGER NOT NULL, PRIMARY KEY (run_id, version));
   CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  `ALTER TABLE metrics ADD COLUMN eval_loss REAL;`,
  `CREATE TABLE sessions (id_hash TEXT PRIMARY KEY, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
   CREATE INDEX sessions_expiry ON sessions (expires_at);`,
  `CREATE TABLE sweeps (
     id TEXT PRIMARY KEY, name TEXT NOT NULL, spec TEXT NOT NULL, state TEXT NOT NULL, reason TEXT,
     created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
   CREATE TABLE sweep_trials (
     sweep_id TEXT NOT NULL, idx INTEGER NOT NULL, run_id TEXT NOT NULL, param_values TEXT NOT NULL,
     state TEXT NOT NULL, metric REAL, stopped_reason TEXT, PRIMARY KEY (sweep_id, idx));
   CREATE INDEX sweep_trials_run ON sweep_trials (run_id);`,
];

type Row = Record<string, unknown>;

export class SqliteStore implements Store {
  private db: Database.Database;
  /** Prepared once each: preparing is most of a small write's cost. */
  private readonly statements = new Map<string, Database.Statement>();
  /** Worker records wait here up to a second and go in one transaction: one row per worker, not one per message. */
  readonly workerBatch = new WorkerBatch((rows) => this.writeWorkers(rows));

  /** `path` ':memory:' for a throwaway store. */
  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.migrate();
  }

  private sql(text: string): Database.Statement {
    let s = this.statements.get(text);
    if (!s) {
      s = this.db.prepare(text);
      this.statements.set(text, s);
    }
    return s;
  }

  /** Schema version applied (PRAGMA user_version). */
  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  private migrate(): void {
    const from = this.schemaVersion;
    for (let v = from; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  saveRun(r: RunRecord): void {
    this.sql(
      `INSERT INTO runs (id, name, spec, state, version, samples, loss, accuracy, stop_reason, created_at, updated_at)
       VALUES (@id, @name, @spec, @state, @version, @samples, @loss, @accuracy, @stopReason, @createdAt, @updatedAt)
       ON CONFLICT(id) DO UPDATE SET name=@name, spec=@spec, state=@state, version=@version, samples=@samples,
         loss=@loss, accuracy=@accuracy, stop_reason=@stopReason, updated_at=@updatedAt`,
    ).run({ ...r, spec: JSON.stringify(r.spec) });
  }

  private toRun(row: Row): RunRecord {
    return {
      id: row.id as string,
      name: row.name as string,
      spec: JSON.parse(row.spec as string),
      state: row.state as RunRecord['state'],
      version: row.version as number,
      samples: row.samples as number,
      loss: row.loss as number | null,
      accuracy: row.accuracy as number | null,
      stopReason: row.stop_reason as string | null,
      createdAt: row.created_at as number,
      updatedAt: row.updated_at as number,
    };
  }

  getRun(id: string): RunRecord | undefined {
    const row = this.sql('SELECT * FROM runs WHERE id = ?').get(id) as Row | undefined;
    return row ? this.toRun(row) : undefined;
  }

  listRuns(): RunRecord[] {
    return (this.sql('SELECT * FROM runs ORDER BY created_at, id').all() as Row[]).map((r) => this.toRun(r));
  }

  deleteRun(id: string): void {
    this.workerBatch.discardRun(id);
    this.db.transaction(() => {
      for (const t of ['metrics', 'events', 'workers', 'checkpoints']) this.sql(`DELETE FROM ${t} WHERE run_id = ?`).run(id);
      this.sql('DELETE FROM runs WHERE id = ?').run(id);
    })();
  }

  appendMetric(runId: string, p: MetricPoint): void {
    this.sql('INSERT INTO metrics (run_id, version, time, loss, accuracy, eval_loss, samples_per_sec, workers, samples) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(runId, p.version, p.time, p.loss, p.accuracy, p.evalLoss, p.samplesPerSec, p.workers, p.samples);
  }

  setMetricEvaluation(runId: string, version: number, accuracy: number | null, evalLoss: number | null): void {
    this.sql('UPDATE metrics SET accuracy = ?, eval_loss = ? WHERE run_id = ? AND version = ?').run(accuracy, evalLoss, runId, version);
  }

  metrics(runId: string, limit = 100_000): MetricPoint[] {
    const rows = this.sql('SELECT * FROM (SELECT * FROM metrics WHERE run_id = ? ORDER BY version DESC LIMIT ?) ORDER BY version').all(runId, limit) as Row[];
    return rows.map((r) => ({
      version: r.version as number,
      time: r.time as number,
      loss: r.loss as number | null,
      accuracy: r.accuracy as number | null,
      evalLoss: (r.eval_loss as number | null) ?? null,
      samplesPerSec: r.samples_per_sec as number,
      workers: r.workers as number,
      samples: r.samples as number,
    }));
  }

  truncateMetrics(runId: string, afterVersion: number): void {
    this.sql('DELETE FROM metrics WHERE run_id = ? AND version > ?').run(runId, afterVersion);
  }

  appendEvent(e: RunEvent): void {
    this.sql('INSERT INTO events (run_id, time, kind, message, worker_id) VALUES (?, ?, ?, ?, ?)').run(e.runId, e.time, e.kind, e.message, e.workerId ?? null);
  }

  events(runId: string, limit = 200): RunEvent[] {
    const rows = this.sql('SELECT * FROM events WHERE run_id = ? ORDER BY id DESC LIMIT ?').all(runId, limit) as Row[];
    return rows.map((r) => ({
      runId: r.run_id as string,
      time: r.time as number,
      kind: r.kind as RunEvent['kind'],
      message: r.message as string,
      ...(r.worker_id ? { workerId: r.worker_id as string } : {}),
    }));
  }

  saveWorker(w: WorkerRecord): void {
    this.workerBatch.save(w);
  }

  private writeWorkers(rows: WorkerRecord[]): void {
    if (!this.db.open) return; // a worker that left while the coordinator closed
    const upsert = this.sql(
      `INSERT INTO workers (run_id, worker_id, nickname, backend, adapter, tasks_done, samples, rejected, first_seen, last_seen)
       VALUES (@runId, @workerId, @nickname, @backend, @adapter, @tasksDone, @samples, @rejected, @firstSeen, @lastSeen)
       ON CONFLICT(run_id, worker_id) DO UPDATE SET nickname=@nickname, tasks_done=@tasksDone, samples=@samples,
         rejected=@rejected, last_seen=@lastSeen`,
    );
    this.db.transaction(() => {
      for (const w of rows) upsert.run(w);
    })();
  }

  workers(runId: string): WorkerRecord[] {
    this.workerBatch.flush();
    const rows = this.sql('SELECT * FROM workers WHERE run_id = ? ORDER BY first_seen').all(runId) as Row[];
    return rows.map((r) => ({
      runId: r.run_id as string,
      workerId: r.worker_id as string,
      nickname: r.nickname as string | null,
      backend: r.backend as string,
      adapter: r.adapter as string,
      tasksDone: r.tasks_done as number,
      samples: r.samples as number,
      rejected: r.rejected as number,
      firstSeen: r.first_seen as number,
      lastSeen: r.last_seen as number,
    }));
  }

  leaderboard(runId: string): LeaderboardEntry[] {
    this.workerBatch.flush();
    return this.sql(
      `SELECT COALESCE(NULLIF(nickname, ''), @anonymous) AS nickname, SUM(samples) AS samples, SUM(tasks_done) AS rounds, COUNT(*) AS workers
       FROM workers WHERE run_id = @runId GROUP BY 1 ORDER BY samples DESC, rounds DESC, nickname`,
    ).all({ runId, anonymous: ANONYMOUS }) as LeaderboardEntry[];
  }

  addCheckpoint(c: CheckpointRecord): void {
    this.sql('INSERT OR REPLACE INTO checkpoints (run_id, version, path, bytes, sha256, time) VALUES (?, ?, ?, ?, ?, ?)')
      .run(c.runId, c.version, c.path, c.bytes, c.sha256, c.time);
  }

  private toCheckpoint(r: Row): CheckpointRecord {
    return { runId: r.run_id as string, version: r.version as number, path: r.path as string, bytes: r.bytes as number, sha256: r.sha256 as string, time: r.time as number };
  }

  latestCheckpoint(runId: string): CheckpointRecord | undefined {
    const row = this.sql('SELECT * FROM checkpoints WHERE run_id = ? ORDER BY version DESC LIMIT 1').get(runId) as Row | undefined;
    return row ? this.toCheckpoint(row) : undefined;
  }

  checkpoints(runId: string): CheckpointRecord[] {
    return (this.sql('SELECT * FROM checkpoints WHERE run_id = ? ORDER BY version').all(runId) as Row[]).map((r) => this.toCheckpoint(r));
  }

  saveSession(s: SessionRecord): void {
    this.sql('INSERT OR REPLACE INTO sessions (id_hash, created_at, expires_at) VALUES (?, ?, ?)').run(s.idHash, s.createdAt, s.expiresAt);
  }

  getSession(idHash: string): SessionRecord | undefined {
    const row = this.sql('SELECT * FROM sessions WHERE id_hash = ?').get(idHash) as Row | undefined;
    return row ? { idHash: row.id_hash as string, createdAt: row.created_at as number, expiresAt: row.expires_at as number } : undefined;
  }

  deleteSession(idHash: string): void {
    this.sql('DELETE FROM sessions WHERE id_hash = ?').run(idHash);
  }

  sweepSessions(now: number): number {
    return this.sql('DELETE FROM sessions WHERE expires_at <= ?').run(now).changes;
  }

  saveSweep(r: SweepRecord): void {
    this.sql(
      `INSERT INTO sweeps (id, name, spec, state, reason, created_at, updated_at) VALUES (@id, @name, @spec, @state, @reason, @createdAt, @updatedAt)
       ON CONFLICT(id) DO UPDATE SET name=@name, spec=@spec, state=@state, reason=@reason, updated_at=@updatedAt`,
    ).run({ ...r, spec: JSON.stringify(r.spec) });
  }

  private toSweep(row: Row): SweepRecord {
    return {
      id: row.id as string,
      name: row.name as string,
      spec: JSON.parse(row.spec as string),
      state: row.state as SweepRecord['state'],
      reason: row.reason as string | null,
      createdAt: row.created_at as number,
      updatedAt: row.updated_at as number,
    };
  }

  getSweep(id: string): SweepRecord | undefined {
    const row = this.sql('SELECT * FROM sweeps WHERE id = ?').get(id) as Row | undefined;
    return row ? this.toSweep(row) : undefined;
  }

  listSweeps(): SweepRecord[] {
    return (this.sql('SELECT * FROM sweeps ORDER BY created_at, id').all() as Row[]).map((r) => this.toSweep(r));
  }

  saveTrial(t: TrialRecord): void {
    this.sql(
      `INSERT INTO sweep_trials (sweep_id, idx, run_id, param_values, state, metric, stopped_reason)
       VALUES (@sweepId, @index, @runId, @values, @state, @metric, @stoppedReason)
       ON CONFLICT(sweep_id, idx) DO UPDATE SET run_id=@runId, param_values=@values, state=@state, metric=@metric, stopped_reason=@stoppedReason`,
    ).run({ ...t, values: JSON.stringify(t.values) });
  }

  trials(sweepId: string): TrialRecord[] {
    const rows = this.sql('SELECT * FROM sweep_trials WHERE sweep_id = ? ORDER BY idx').all(sweepId) as Row[];
    return rows.map((r) => ({
      sweepId: r.sweep_id as string,
      index: r.idx as number,
      runId: r.run_id as string,
      values: JSON.parse(r.param_values as string),
      state: r.state as TrialRecord['state'],
      metric: r.metric as number | null,
      stoppedReason: r.stopped_reason as string | null,
    }));
  }

  getSetting(key: string): string | undefined {
    const row = this.sql('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value;
  }

  setSetting(key: string, value: string): void {
    this.sql('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  close(): void {
    if (!this.db.open) return;
    this.workerBatch.flush();
    this.db.close();
  }
}
