// What every coordinator plugin (routes, namespaces, metrics) is given: the scheduler, the
// store, the event log and the run verbs. Built once by buildApp; `app.crowdtrain` holds it.
import type { Server } from 'socket.io';
import type { Dataset, InputCoding } from '../shared/dataset.ts';
import type { ShardInfo } from '../shared/protocol.ts';
import type { HttpAnswer } from './data/dataset-files.ts';
import type { DatasetRegistry } from './data/registry.ts';
import type { EventLog } from './event-log.ts';
import type { Run } from './run.ts';
import type { Scheduler } from './scheduler.ts';
import type { Store } from './store/store.ts';
import type { SweepManager } from './sweeps/sweep-manager.ts';

export interface DatasetInfo {
  name: string;
  features: number;
  /** Shape of one example ([1, 28, 28] for MNIST's images); unset: [features]. */
  exampleShape?: number[];
  classes: number;
  /** Labels per example: 1, or the window length of a text (the next character at each position). */
  labelWidth?: number;
  /** How example bytes become inputs: byte/255 (default) or token ids (a text). */
  inputs?: InputCoding;
  /** Names of the classes, index = label (Fashion-MNIST's 'T-shirt/top', ...); unset: the digits. */
  classNames?: string[];
  /** A text's characters, index = token id. */
  vocab?: string[];
  /** A text cut into windows: the corpus's name and the window length (the spec's `context`). */
  text?: { corpus: string; context: number };
  trainCount: number;
  testCount: number;
  /** The train split in content-hashed shards: what workers fetch. */
  shards: ShardInfo[];
  source: 'builtin' | 'upload';
  createdAt: number;
}

export interface LoadedDataset {
  info: DatasetInfo;
  train: Dataset;
  test: Dataset;
}

/** The datasets runs can name: the built-in MNIST and uploaded ones. */
export interface Datasets {
  get(name: string): LoadedDataset | undefined;
  /**
   * The examples a spec trains on: the named dataset, or for a text corpus its windows of the
   * spec's `context` characters (named '<corpus>@<context>', made on first use).
   */
  forSpec(spec: { dataset: string; context?: number }): LoadedDataset | undefined;
  /** Every dataset, without shards: built-ins are listed before they are converted. */
  list(): Omit<DatasetInfo, 'shards'>[];
  /** Answers GET requests under /api/datasets/ (indexes and content-hashed shards). */
  answer(path: string): HttpAnswer | undefined;
}

export interface CoordinatorContext {
  dataDir: string;
  /** The built-in and uploaded datasets (server/data/registry.ts). */
  datasets: DatasetRegistry;
  scheduler: Scheduler;
  store: Store;
  events: EventLog;
  io: Server;
  /** Sweeps: trials as runs, early termination, the best trial (server/sweeps/sweep-manager.ts). */
  sweeps: SweepManager;
  /**
   * Validates a spec (an object, or YAML/JSON text), creates the run and starts it.
   * Throws RunSpecError (shared/run-spec.ts) naming every bad field.
   */
  createRun(input: unknown): Run;
  /** Pause, resume or stop; a checkpoint is written on pause and stop. */
  setRunState(run: Run, state: 'running' | 'paused' | 'stopped'): void;
  /** Stops the run and forgets it (its checkpoints stay on disk). */
  deleteRun(id: string): boolean;
  /** Absolute path of the run's latest checkpoint file, if any. */
  latestCheckpointFile(runId: string): string | undefined;
}
