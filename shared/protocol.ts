// The wire protocol between workers and the coordinator, in one place: the version, the typed
// Socket.IO event maps of both ends, and the schemas every worker message is validated against.
// Tensors travel as binary attachments (ArrayBuffer), never as JSON arrays.
import { z } from 'zod';
import type { MlpSpec } from './model.ts';
import type { LayerConfig } from './layers/layer.ts';
import type { RunSpec } from './run-spec.ts';
import type { NetInfo } from './run-model.ts';
import type { UpdateCoding } from './update-codec.ts';
import type { OrderSpan } from './epoch-order.ts';

/**
 * Bumped on any incompatible change; a worker of another version is refused at connect.
 * 3: shards in dataset format v2 (labels per example, token inputs), stage ranges as indices of
 * the layer list, the dataset's class names and vocabulary and evalLoss in run messages.
 * 4: parameters as snapshots over HTTP and coded deltas, coded results, local-mode tasks, task
 * examples as spans of the seeded epoch orders, and binaries past CHUNK_BYTES sent as `chunk` messages.
 * 5: the hello's browser id, the `banned` message and the `banned` refusal (spot checks and bans).
 * 6: `ready` may name a task the worker gives up (`dropped`); a coordinator of 5 refuses the field.
 */
export const PROTOCOL_VERSION = 6;

/** Socket.IO namespace of contributing workers. */
export const WORKER_NAMESPACE = '/worker';

export type Backend = 'webgpu' | 'cpu';
export type RunState = 'waiting' | 'running' | 'paused' | 'stopped' | 'completed';

// ---- handshake (socket.io `auth`) --------------------------------------------------------

export const WorkerHelloSchema = z
  .object({
    protocol: z.number().int(),
    backend: z.enum(['webgpu', 'cpu']),
    adapter: z
      .object({ vendor: z.string().max(200), architecture: z.string().max(200), description: z.string().max(400) })
      .strict()
      .default({ vendor: '', architecture: '', description: '' }),
    /** Why this worker computes on the CPU, when it does. */
    backendReason: z.string().max(400).optional(),
    nickname: z.string().max(64).optional(),
    userAgent: z.string().max(400).optional(),
    /**
     * A random id the page keeps in its localStorage (the same for every tab of one browser
     * profile): the coordinator keeps trust and bans under it, so a reload does not escape a ban.
     */
    browserId: z.string().min(8).max(64).regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only').optional(),
  })
  .strict();
export type WorkerHello = z.infer<typeof WorkerHelloSchema>;

/** The `data` of the Error a refused handshake's connect_error carries. */
export interface RefusalData {
  code: 'protocol_mismatch' | 'bad_hello' | 'origin_not_allowed' | 'too_many_sockets' | 'websocket_only' | 'banned';
  message: string;
}

// ---- server -> worker ------------------------------------------------------------------------

export interface ShardInfo {
  /** Content-hashed URL of the shard (a CTDS dataset, see shared/dataset.ts). */
  url: string;
  sha256: string;
  /** First global example index the shard holds. */
  start: number;
  count: number;
  bytes: number;
}

export interface RunInfo {
  id: string;
  name: string;
  state: RunState;
  version: number;
  /** The MLP form's widths and activation; null for a layer-list model. */
  model: MlpSpec | null;
  /** The model as layers (shorthands expanded) and the shape of one example they take. */
  layers: LayerConfig[];
  inputShape: number[];
  paramCount: number;
  spec: RunSpec;
  dataset: { name: string; features: number; classes: number; shards: ShardInfo[] } & DatasetLabels;
}

/** What the pages need of a run's dataset beyond its shape, to show its examples and outputs. */
export interface DatasetLabels {
  /** Names of the classes, index = label (Fashion-MNIST's); unset: the labels are shown as numbers. */
  classNames?: string[];
  /** A text's characters, index = token id. */
  vocab?: string[];
  /** Set for a text cut into windows: the corpus and the window length. */
  text?: { corpus: string; context: number };
}

export interface Welcome {
  workerId: string;
  protocol: number;
  run: RunInfo | null;
}

/**
 * Parameters at `version`, in one of three forms:
 *   full      the binary holds the float32 values (a pipeline stage's slice when `offset` is set)
 *   delta     the binary is an update coded as `coding` (shared/update-codec.ts): fold it with
 *             weight 1 into the parameters of version `base` (shared/param-replica.ts), which gives
 *             bit for bit the parameters every worker and the coordinator hold at `version`
 *   snapshot  the binary is empty: fetch `snapshot.url` (immutable, content-addressed, float32)
 */
export interface ParamsMeta {
  runId: string;
  version: number;
  count: number;
  /** Unset: full. */
  form?: 'full' | 'delta' | 'snapshot';
  /** delta: the version it applies to. */
  base?: number;
  /** delta: how it is coded. */
  coding?: UpdateCoding;
  /** snapshot: where to fetch it, its SHA-256 (hex) and size in bytes. */
  snapshot?: { url: string; sha256: string; bytes: number };
  /** Set when the message holds one stage's slice of the parameters, starting at this element. */
  offset?: number;
  /** Set when the binary came in `chunk` messages of this stream: the binary of this message is empty. */
  chunks?: string;
}

/**
 * One piece of a binary too large for one message (a model's parameters or a result past
 * CHUNK_BYTES): pieces of a stream come in order, then the message that names the stream.
 */
export interface ChunkMeta {
  stream: string;
  index: number;
  count: number;
  /** Bytes of the whole binary. */
  total: number;
}

/** Binaries larger than this travel as chunks. */
export const CHUNK_BYTES = 4 << 20;

export interface TaskMeta {
  taskId: string;
  runId: string;
  /** The parameters' version this task's gradient must be computed on. */
  version: number;
  /** Milliseconds until the lease expires and the result would be dropped. */
  leaseMs: number;
  /**
   * Number of examples; their indices come as a binary Uint32Array, or, with `order`, only the
   * first of them (re-queued examples) do and the rest are spans of the run's seeded epoch orders.
   */
  count: number;
  /** The examples as spans of epochOrder(examples, seed, epoch) (shared/epoch-order.ts), after the binary's indices. */
  order?: { examples: number; seed: number; spans: OrderSpan[] };
  /**
   * Set for a local-mode run: take `steps` optimizer steps of the run's (inner) optimizer, batch
   * `batch` each, over the examples in order (count = steps · batch), and send the pseudo-gradient
   * (parameters at `version` minus the parameters after the steps).
   */
  local?: { steps: number; batch: number };
  /**
   * Set for a pipeline run: this task is one stage of one replica. The binary is then the
   * example indices for the first stage, the labels for the last, and empty in between.
   */
  stage?: StageTask;
}

export interface StageTask {
  /** Stage s of P, in replica r. */
  index: number;
  stages: number;
  replica: number;
  /** Layers [firstLayer, endLayer) of the model's layer list and where their parameters sit in the model vector. */
  firstLayer: number;
  endLayer: number;
  paramOffset: number;
  paramCount: number;
  /** Rows of each micro-batch, in order; they sum to the replica's batch. */
  microBatches: number[];
}

/** An activation (forward) or activation gradient (backward) of one micro-batch, relayed between stages. */
export interface RelayMeta {
  taskId: string;
  mb: number;
  kind: 'activation' | 'gradient';
}

/** Where a worker sits in a pipeline run (shown on the pages). */
export interface Placement {
  replica: number;
  stage: number;
  stages: number;
  firstLayer: number;
  endLayer: number;
}

export interface RunUpdate {
  runId: string;
  state: RunState;
  version: number;
  loss: number | null;
  accuracy: number | null;
  /** Held-out loss of the latest evaluation, nats per label (a language model's nats/char). */
  evalLoss?: number | null;
  workers: number;
  samplesPerSec: number;
  samples: number;
}

/** One committed round of a run, as the coordinator records it and the admin page charts it. */
export interface MetricPoint {
  version: number;
  /** Milliseconds since the epoch. */
  time: number;
  loss: number | null;
  /** Test accuracy (next-token accuracy for a language model), on rounds that were evaluated. */
  accuracy: number | null;
  /** Held-out loss, nats per label (per token for a language model; bits = / ln 2), on rounds that were evaluated. */
  evalLoss: number | null;
  samplesPerSec: number;
  workers: number;
  samples: number;
}

/** A run as GET /api/runs lists it and the pages show it. */
export interface RunSummary {
  id: string;
  name: string;
  state: RunState;
  /** Rounds committed. */
  version: number;
  loss: number | null;
  accuracy: number | null;
  /** Held-out loss of the latest evaluation, nats per label (a language model's nats per character). */
  evalLoss: number | null;
  workers: number;
  samples: number;
  samplesPerSec: number;
  /** Σ of the workers' speeds as the coordinator measured them, examples/s. */
  offeredSamplesPerSec: number;
  /** samplesPerSec / offeredSamplesPerSec: the share of the grid's speed that turns into training (null: not known yet). */
  efficiency: number | null;
  epochs: number;
  stopReason: string | null;
  /** ISO time. */
  createdAt: string;
  counters: { folded: number; late: number; rejected: number; roundsTimedOut: number };
  /**
   * Payload bytes since the coordinator started: up (results, relays), down (parameters, tasks,
   * relays over the socket, plus snapshots over HTTP), and each per example folded (null: none yet).
   */
  traffic: { upBytes: number; downBytes: number; snapshotBytes: number; upBytesPerExample: number | null; downBytesPerExample: number | null };
  spec: RunSpec;
  /** The model as a worker builds it (the MLP form, or the layers and the example shape they take). */
  net: NetInfo;
  /** The examples it trains on: their shape, and the names of their classes or characters. */
  dataset: { name: string; features: number; classes: number } & DatasetLabels;
}

export interface ResultAck {
  ok: boolean;
  /** Set when the result was not folded in: why. */
  error?: string;
}

export interface ServerToWorkerEvents {
  welcome: (w: Welcome) => void;
  /** The run this worker serves changed (created, stopped, completed). */
  run: (r: RunInfo | null) => void;
  /** Parameters at `version`, dense layout of shared/model.ts, in the form the meta names. */
  params: (meta: ParamsMeta, data: ArrayBuffer) => void;
  /** A piece of the binary of a later message (params). */
  chunk: (meta: ChunkMeta, data: ArrayBuffer) => void;
  /** Compute the gradient of params@version on these examples (Uint32Array of train indices). */
  task: (meta: TaskMeta, indices: ArrayBuffer) => void;
  /** Pipeline: a neighbouring stage's activation or activation gradient for one of your tasks. */
  relay: (meta: RelayMeta, data: ArrayBuffer) => void;
  /** Pipeline: the round of this task was abandoned (a stage worker left); drop it. */
  cancel: (c: { taskId: string; reason: string }) => void;
  'run-update': (u: RunUpdate) => void;
  /** This worker is banned from the run (its results failed spot checks): the socket is closed next. */
  banned: (b: { runId: string; reason: string }) => void;
}

// ---- worker -> server -----------------------------------------------------------------------

export const ReadySchema = z
  .object({
    runId: z.string().max(64),
    version: z.number().int().min(0),
    /** The worker could not apply a parameter delta (it holds another version): send it a snapshot. */
    resync: z.boolean().optional(),
    /**
     * A task this worker gives up without a result (its batch could not be fetched, its backend
     * failed, it arrived for parameters the worker no longer holds): the coordinator hands its
     * examples to another worker now instead of at the lease's end.
     */
    dropped: z.string().max(64).optional(),
  })
  .strict();
export type Ready = z.infer<typeof ReadySchema>;

export const TaskResultSchema = z
  .object({
    taskId: z.string().max(64),
    runId: z.string().max(64),
    version: z.number().int().min(0),
    samples: z.number().int().min(1),
    loss: z.number(),
    computeMs: z.number().min(0).optional(),
    /** Bytes the worker allocated for the task's model (or stage): what it holds on its GPU. */
    allocatedBytes: z.number().int().min(0).optional(),
    /** How the binary is coded (the run's compression.up); unset: none (float32). */
    coding: z.enum(['none', 'fp16', 'int8', 'topk']).optional(),
    /** Set when the binary came in `chunk` messages of this stream. */
    chunks: z.string().max(64).optional(),
  })
  .strict();

export const ChunkMetaSchema = z
  .object({ stream: z.string().min(1).max(64), index: z.number().int().min(0), count: z.number().int().min(1).max(1 << 16), total: z.number().int().min(0) })
  .strict();
export type TaskResult = z.infer<typeof TaskResultSchema>;

export const RelaySchema = z
  .object({ taskId: z.string().max(64), mb: z.number().int().min(0).max(1023), kind: z.enum(['activation', 'gradient']) })
  .strict();

export const WorkerStatusSchema = z
  .object({
    paused: z.boolean(),
    /** Fraction of the time the contributor lets this tab work, in (0, 1]. */
    cap: z.number().gt(0).lte(1),
    samplesPerSec: z.number().min(0),
    nickname: z.string().max(64).optional(),
  })
  .strict();
export type WorkerStatus = z.infer<typeof WorkerStatusSchema>;

export interface WorkerToServerEvents {
  /** Warmed up, holds params@version, wants a task. */
  ready: (r: Ready) => void;
  result: (meta: TaskResult, gradient: ArrayBuffer, ack: (a: ResultAck) => void) => void;
  /** A piece of the binary of a later result. */
  chunk: (meta: ChunkMeta, data: ArrayBuffer) => void;
  relay: (meta: RelayMeta, data: ArrayBuffer) => void;
  status: (s: WorkerStatus) => void;
}

/** Per-socket state the coordinator keeps (Socket.IO's SocketData). */
export interface WorkerSocketData {
  workerId: string;
  hello: WorkerHello;
}

/** Formats a zod error as "field: problem; ..." for an ack or a log line. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`).join('; ');
}
