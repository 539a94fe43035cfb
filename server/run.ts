// One run's state on the coordinator: its spec, the global parameters and optimizer state
// (float32), the example cursor, metrics and counters. Rounds and workers live in the scheduler.
import { randomUUID } from 'node:crypto';
import { ExampleCursor } from '../shared/epoch-order.ts';
import { initModelParams } from '../shared/layers/sequence.ts';
import type { MlpSpec } from '../shared/model.ts';
import { describeRunModel, type RunModel } from '../shared/run-model.ts';
import type { DatasetLabels, MetricPoint, RunInfo, RunState, RunSummary, RunUpdate, ShardInfo } from '../shared/protocol.ts';
import { optimizerStepRef, type OptimizerConfig } from '../shared/reference/optimizer.ts';
import type { RunSpec } from '../shared/run-spec.ts';
import type { RunRecord } from './store/store.ts';
import type { RunTraffic } from './worker-port.ts';

export type { MetricPoint };

export interface RunCounters {
  /** Results folded into a round. */
  folded: number;
  /** Results that arrived after their round closed (dropped). */
  late: number;
  /** Results refused by validation (shape, finiteness, norm, unknown task). */
  rejected: number;
  /** Rounds that closed at their deadline rather than with every result in. */
  roundsTimedOut: number;
}

export class Run {
  readonly id: string;
  /** The MLP form's widths and activation (its fast whole-model paths); null for a layer list. */
  readonly model: MlpSpec | null;
  /** The model as layers: shapes, PyTorch names and offsets of every parameter. */
  readonly net: RunModel;
  readonly paramCount: number;
  state: RunState = 'running';
  /** Rounds committed. */
  version = 0;
  params: Float32Array;
  readonly optimizerState: { m?: Float32Array; v?: Float32Array };
  readonly cursor: ExampleCursor;
  /** Examples whose gradients were folded into committed rounds. */
  samples = 0;
  loss: number | null = null;
  /** Test accuracy of the latest evaluation (next-token accuracy for a language model). */
  accuracy: number | null = null;
  /** Held-out loss of the latest evaluation, nats per label (bits: / ln 2). */
  evalLoss: number | null = null;
  /** Version the latest evaluation measured. */
  evaluatedVersion = 0;
  /** Versions whose evaluation is running or queued off the event loop. */
  readonly evaluating = new Set<number>();
  readonly metrics: MetricPoint[] = [];
  readonly counters: RunCounters = { folded: 0, late: 0, rejected: 0, roundsTimedOut: 0 };
  createdAt = Date.now();
  /** Why the run stopped, when it did. */
  stopReason: string | null = null;
  /** Σ of its workers' measured speeds at the last commit, examples/s (efficiency's denominator). */
  offeredSamplesPerSec = 0;
  /** Payload bytes its workers sent and were sent since the coordinator started (the port and the snapshot route count them). */
  readonly traffic: RunTraffic = { socketIn: 0, socketOut: 0, httpOut: 0 };

  constructor(
    readonly spec: RunSpec,
    /** The dataset's shape and the shards workers fetch. */
    readonly dataset: { name: string; features: number; classes: number; trainCount: number; shards: ShardInfo[]; exampleShape?: number[] } & DatasetLabels,
    id?: string,
  ) {
    this.id = id ?? randomUUID().slice(0, 8);
    this.net = describeRunModel(spec, dataset);
    this.model = this.net.mlp;
    this.paramCount = this.net.description.paramCount;
    // PyTorch's default initialisation of each module, drawn in parameter order from the seed.
    this.params = initModelParams(this.net.description, spec.seed);
    this.optimizerState = { m: new Float32Array(this.paramCount), v: new Float32Array(this.paramCount) };
    this.cursor = new ExampleCursor(dataset.trainCount, spec.seed);
  }

  get name(): string {
    return this.spec.name;
  }

  /**
   * The coordinator's optimizer: the spec's `optimizer` in sync mode; in local mode the outer one
   * (SGD with Nesterov momentum on the mean pseudo-gradient; `optimizer` runs on the workers).
   */
  coordinatorOptimizer(): OptimizerConfig {
    if (this.spec.sync.mode !== 'local') return this.spec.optimizer;
    const { lr, momentum, nesterov } = this.spec.sync.outer;
    return momentum > 0 ? { kind: 'momentum', lr, momentum, nesterov } : { kind: 'sgd', lr };
  }

  /** One optimizer step (float32, PyTorch semantics) with the round's mean (pseudo-)gradient; `lrFactor` is the batch policy's. */
  applyGradient(mean: Float32Array, samples: number, lrFactor = 1): void {
    const base = this.coordinatorOptimizer();
    const config = lrFactor === 1 ? base : { ...base, lr: base.lr * lrFactor };
    optimizerStepRef(this.params, mean, this.optimizerState, config, this.version + 1);
    this.version++;
    this.samples += samples;
  }

  /** Whether the stop rule is met; sets the state and reason when it is. */
  checkStop(): boolean {
    const { targetAccuracy, targetLoss, maxRounds, maxSamples } = this.spec.stop;
    let reason: string | null = null;
    if (targetAccuracy !== undefined && this.accuracy !== null && this.accuracy >= targetAccuracy) reason = `reached test accuracy ${this.accuracy.toFixed(4)} >= ${targetAccuracy}`;
    else if (targetLoss !== undefined && this.evalLoss !== null && this.evalLoss <= targetLoss) reason = `reached held-out loss ${this.evalLoss.toFixed(4)} <= ${targetLoss}`;
    else if (maxRounds !== undefined && this.version >= maxRounds) reason = `reached ${maxRounds} rounds`;
    else if (maxSamples !== undefined && this.samples >= maxSamples) reason = `reached ${maxSamples} samples`;
    if (reason) {
      this.state = 'completed';
      this.stopReason = reason;
    }
    return reason !== null;
  }

  info(): RunInfo {
    return {
      id: this.id,
      name: this.name,
      state: this.state,
      version: this.version,
      model: this.model,
      layers: this.net.layers,
      inputShape: this.net.inputShape,
      paramCount: this.paramCount,
      spec: this.spec,
      dataset: { ...this.datasetLabels(), shards: this.dataset.shards },
    };
  }

  update(workers: number): RunUpdate {
    const last = this.metrics.at(-1);
    return {
      runId: this.id,
      state: this.state,
      version: this.version,
      loss: this.loss,
      accuracy: this.accuracy,
      evalLoss: this.evalLoss,
      workers,
      samplesPerSec: last?.samplesPerSec ?? 0,
      samples: this.samples,
    };
  }

  /**
   * Committed examples/s over the recent rounds divided by what its workers offer (the sum of
   * their measured speeds); null until both are known. 1: no worker waits for another.
   */
  efficiency(): number | null {
    const sps = this.metrics.at(-1)?.samplesPerSec ?? 0;
    if (this.state !== 'running' || !(this.offeredSamplesPerSec > 0) || !(sps > 0)) return null;
    return Math.min(1, sps / this.offeredSamplesPerSec);
  }

  /** What the store keeps of the run between checkpoints. */
  record(): RunRecord {
    return {
      id: this.id,
      name: this.name,
      spec: this.spec,
      state: this.state,
      version: this.version,
      samples: this.samples,
      loss: this.loss,
      accuracy: this.accuracy,
      stopReason: this.stopReason,
      createdAt: this.createdAt,
      updatedAt: Date.now(),
    };
  }

  /** What GET /api/runs shows. */
  summary(workers: number): RunSummary {
    return {
      id: this.id,
      name: this.name,
      state: this.state,
      version: this.version,
      loss: this.loss,
      accuracy: this.accuracy,
      evalLoss: this.evalLoss,
      workers,
      samples: this.samples,
      samplesPerSec: this.metrics.at(-1)?.samplesPerSec ?? 0,
      offeredSamplesPerSec: this.offeredSamplesPerSec,
      efficiency: this.efficiency(),
      epochs: this.cursor.epochs,
      stopReason: this.stopReason,
      createdAt: new Date(this.createdAt).toISOString(),
      counters: { ...this.counters },
      traffic: this.trafficSummary(),
      spec: this.spec,
      net: { model: this.model, layers: this.net.layers, inputShape: this.net.inputShape },
      dataset: this.datasetLabels(),
    };
  }

  /** Bytes each way, and per example folded: what compression and local steps save. */
  trafficSummary(): RunSummary['traffic'] {
    const up = this.traffic.socketIn;
    const down = this.traffic.socketOut + this.traffic.httpOut;
    const per = (b: number) => (this.samples > 0 ? b / this.samples : null);
    return { upBytes: up, downBytes: down, snapshotBytes: this.traffic.httpOut, upBytesPerExample: per(up), downBytesPerExample: per(down) };
  }

  /** The dataset as the pages show it: its shape and the names of its classes or characters. */
  private datasetLabels(): RunSummary['dataset'] {
    const { name, features, classes, classNames, vocab, text } = this.dataset;
    return { name, features, classes, ...(classNames && { classNames }), ...(vocab && { vocab }), ...(text && { text }) };
  }
}
