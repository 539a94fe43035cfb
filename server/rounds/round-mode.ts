// How a run's rounds work, behind one interface: `sync` (data-parallel gradient rounds),
// `local` (DiLoCo: inner steps on the workers, an outer step on the coordinator) and
// `pipeline` (stages relaying micro-batches); a mode is chosen once from the spec and
// registered by name. A mode reaches workers only through the host's port and reads time only
// from the host's clock; every mode ends a round through the host's one commit step.
import type { FastifyBaseLogger } from 'fastify';
import type { RelayMeta, ResultAck, TaskResult } from '../../shared/protocol.ts';
import type { RunSpec } from '../../shared/run-spec.ts';
import type { Clock } from '../clock.ts';
import type { ParamChannel } from '../params/param-channel.ts';
import type { RunEventKind } from '../event-log.ts';
import type { Run } from '../run.ts';
import type { Traffic, WorkerPort } from '../worker-port.ts';
import type { WorkerEntry } from '../workers.ts';
import type { Verification } from '../verification/verification.ts';

/** What a round closes with: the update to apply and what it covered. */
export interface RoundOutcome {
  /** The round's mean gradient (or pseudo-gradient), the model's dense layout. */
  update: Float32Array;
  samples: number;
  loss: number;
  openedAt: number;
  /** Factor on the optimizer's learning rate for this round (the batch policy's). */
  lrFactor: number;
}

export interface RoundHost {
  clock: Clock;
  port: WorkerPort;
  traffic: Traffic;
  log: FastifyBaseLogger;
  /** Largest result norm accepted. */
  maxGradientNorm: number;
  /** Spot checks, trust, bans and the plausible-loss window (server/verification/). */
  verification: Verification;
  workersOf(runId: string): WorkerEntry[];
  /** The run's parameter channel: the view its workers hold, deltas and snapshots. */
  channel(run: Run): ParamChannel;
  /** Labels of training examples (the last pipeline stage needs them). */
  labels(run: Run, indices: Uint32Array): Uint32Array;
  /** The one commit step: optimizer, metric point, evaluation cadence, stop rule; `publish` sends the new parameters. */
  commit(run: Run, outcome: RoundOutcome, publish: () => void): void;
  event(runId: string, kind: RunEventKind, message: string, workerId?: string): void;
  roundClosed(run: Run, ms: number, how: 'complete' | 'deadline'): void;
  workerChanged(w: WorkerEntry): void;
  /** Observes every folded result (tests check invariants through it). */
  onFold?: (run: Run, roundVersion: number, result: TaskResult) => void;
}

export interface RoundMode {
  /** A worker was assigned to the run: send it what it needs before its first task. */
  joined(run: Run, w: WorkerEntry): void;
  /**
   * A worker holds the run's current parameters and wants work (`resync`: it could not apply a
   * delta and needs a snapshot; `dropped`: the id of a task it gives up without a result).
   */
  ready(run: Run, w: WorkerEntry, resync?: boolean, dropped?: string): void;
  /** Opens a round if the run and its workers allow one. */
  maybeOpen(run: Run): void;
  result(run: Run, w: WorkerEntry, meta: TaskResult, data: unknown, ack: (a: ResultAck) => void): void;
  relay(run: Run, w: WorkerEntry, meta: RelayMeta, data: unknown): void;
  /** A worker left the run (disconnected): its open work goes back to the queue. */
  left(run: Run, w: WorkerEntry): void;
  /** The run was paused or stopped: its open round ends without committing. */
  stop(run: Run): void;
  close(): void;
}

export type RoundModeFactory = (host: RoundHost) => RoundMode;

const modes = new Map<string, RoundModeFactory>();

export function registerRoundMode(name: string, make: RoundModeFactory): void {
  modes.set(name, make);
}

export function roundModeFactories(): ReadonlyMap<string, RoundModeFactory> {
  return modes;
}

/** The mode a spec asks for. */
export function roundModeOf(spec: RunSpec): string {
  return spec.parallelism.stages > 1 ? 'pipeline' : spec.sync.mode;
}
