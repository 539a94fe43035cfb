// The run spec: what one training run is (model, data, optimizer, rounds, stopping rule), as
// one zod schema that validates REST bodies, files and forms and gives the TypeScript types.
import { z } from 'zod';
import { describeIssue } from './run-spec-messages.ts';
import { LayerError } from './layers/layer.ts';
import { describeRunModel } from './run-model.ts';
import { expandLayers, mlpLayers } from './layers/shorthand.ts';

/**
 * Largest model a run may have. Parameters and results move in chunks (shared/chunks.ts) and
 * snapshots over HTTP, so no socket message bounds it; the coordinator's memory (parameters,
 * optimizer state, the workers' shared view, a snapshot: about 20 bytes a parameter) does.
 */
export const MAX_MODEL_PARAMS = 32_000_000;

/** Round pacing defaults (see docs/architecture.md, "Batch policy"). */
export const DEFAULT_SYNC = { mode: 'sync' as const, roundDeadlineMs: 15_000, minWorkers: 1, targetRoundMs: 500, maxBatch: 1024, lrScaling: 'linear' as const, taskSizing: 'speed' as const, innerSteps: 32 };

/** DiLoCo's outer optimizer: SGD with Nesterov momentum on the averaged pseudo-gradient. */
export const DEFAULT_OUTER = { lr: 0.7, momentum: 0.9, nesterov: true };

/** The codings of what crosses the wire (shared/update-codec.ts). */
export const CODINGS = ['none', 'fp16', 'int8', 'topk'] as const;
export type CodingName = (typeof CODINGS)[number];

/**
 * What workers send (`up`: gradients, pseudo-gradients) and how the coordinator's parameter
 * deltas travel (`down`), as a name or in full. A name sets both (topk sets up; its deltas go int8).
 */
export const CompressionSchema = z.preprocess(
  (v) => (typeof v === 'string' ? { up: v, down: v === 'topk' ? 'int8' : v } : v),
  z
    .object({
      up: z.enum(CODINGS).default('none'),
      down: z.enum(CODINGS).default('none'),
      /** int8 and topk: values per f32 scale. */
      block: z.number().int().min(8).max(65536).default(256),
      /** topk: the share of the values sent (the largest in magnitude), with their indices. */
      fraction: z.number().gt(0).lte(0.5).default(0.01),
    })
    .strict(),
);
export type Compression = z.output<typeof CompressionSchema>;

/** How a round's results become one update (server/accumulators/). */
export const AGGREGATION_RULES = ['mean', 'trimmed-mean', 'median', 'centered-clip'] as const;
export type AggregationRule = (typeof AGGREGATION_RULES)[number];

/**
 * The aggregation rule, as a name (`aggregation: median`) or in full. 'mean' weights results by
 * their examples; the robust rules count each worker's result once (server/accumulators/). Every
 * run is open to whoever has its URL, so the default is centered clipping; a classroom of trusted
 * laptops may choose `mean` (docs/security.md "Robust aggregation").
 */
export const AggregationSchema = z
  .object({
    rule: z.enum(AGGREGATION_RULES).default('centered-clip'),
    /** trimmed-mean: the share of the results cut from each end of every coordinate. */
    trim: z.number().gte(0).lt(0.5).default(0.2),
    /** centered-clip: the clipping radius τ, or 'auto' (the median distance of the round's results to the centre). */
    radius: z.union([z.number().gt(0), z.literal('auto')], { error: (issue) => `must be a number greater than 0, or auto (got ${JSON.stringify(issue.input)})` }).default('auto'),
    /** centered-clip: clipping iterations per round (L). */
    iterations: z.number().int().min(1).max(10).default(1),
    /**
     * centered-clip: β of the momentum the coordinator keeps on each worker's results (the paper's
     * 0.9); 0, the default, clips the raw results: on top of the coordinator's own optimizer
     * (Adam's first moment, or momentum) a second momentum made honest runs markedly slower.
     */
    workerMomentum: z.number().gte(0).lt(1).default(0),
  })
  .strict();
export type Aggregation = z.output<typeof AggregationSchema>;
export const DEFAULT_AGGREGATION: Aggregation = { rule: 'centered-clip', trim: 0.2, radius: 'auto', iterations: 1, workerMomentum: 0 };

export const OptimizerSchema = z
  .object({
    kind: z.enum(['sgd', 'momentum', 'adam', 'adamw']).default('adam'),
    lr: z.number().gt(0).lte(10).default(1e-3),
    momentum: z.number().gte(0).lt(1).optional(),
    beta1: z.number().gte(0).lt(1).optional(),
    beta2: z.number().gte(0).lt(1).optional(),
    eps: z.number().gt(0).lte(1).optional(),
    weightDecay: z.number().gte(0).lte(1).optional(),
  })
  .strict();

/** The MLP shorthand: `{ kind: mlp, layers: [784, 128, 10], activation: relu }` (dense layers). */
export const MlpModelSchema = z
  .object({
    kind: z.literal('mlp').default('mlp'),
    layers: z.array(z.number().int().min(1).max(65536)).min(2).max(16).default([784, 128, 10]),
    activation: z.enum(['relu', 'gelu']).default('relu'),
  })
  .strict();

/** One layer as a spec writes it; its fields are checked by its kind (shared/layers) against the dataset. */
export const LayerConfigSchema = z.object({ kind: z.string().min(1).max(40) }).catchall(z.unknown());

/** A model as a list of typed layers: `{ layers: [{ kind: conv2d, out: 8, kernel: 5 }, ...] }`. */
export const LayerListModelSchema = z
  .object({
    kind: z.literal('layers'),
    layers: z.array(LayerConfigSchema).min(1).max(64),
  })
  .strict();

/** Either form; a `layers` list of objects is a layer list, anything else the MLP shorthand. */
export const ModelSchema = z.preprocess((v) => {
  if (v && typeof v === 'object' && !Array.isArray(v) && !('kind' in v)) {
    const layers = (v as { layers?: unknown }).layers;
    return { kind: Array.isArray(layers) && layers.some((l) => l !== null && typeof l === 'object') ? 'layers' : 'mlp', ...v };
  }
  return v;
}, z.discriminatedUnion('kind', [MlpModelSchema, LayerListModelSchema]));

export const RunSpecSchema = z
  .object({
    name: z.string().trim().min(1).max(80).default('mnist-mlp'),
    /** 'mnist' (built in) or the name of an uploaded dataset. */
    dataset: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'a dataset name: lowercase letters, digits, - and _, at most 64')
      .default('mnist'),
    model: ModelSchema.default({ kind: 'mlp', layers: [784, 128, 10], activation: 'relu' }),
    optimizer: OptimizerSchema.default({ kind: 'adam', lr: 1e-3 }),
    /**
     * The batch the optimizer's settings are for, a new worker's first (probe) task, and the
     * micro-batch a worker computes at a time; tasks are sized by measured speed (sync.targetRoundMs).
     */
    batchPerTask: z.number().int().min(1).max(4096).default(64),
    /** Examples in one round, split across its workers; unset: batchPerTask per worker. */
    globalBatch: z.number().int().min(1).max(65536).optional(),
    sync: z
      .object({
        /**
         * 'sync': each round averages the workers' gradients and the coordinator steps `optimizer`.
         * 'local' (DiLoCo): each worker takes innerSteps steps of `optimizer` (AdamW unless given)
         * on its own batches and sends its pseudo-gradient; the coordinator steps `outer` with their mean.
         */
        mode: z.enum(['sync', 'local']).default('sync'),
        /** Local mode: inner steps per outer round (H) of the worker whose speed is the round's median. */
        innerSteps: z.number().int().min(1).max(100_000).default(DEFAULT_SYNC.innerSteps),
        /** Local mode: the coordinator's outer optimizer (SGD with Nesterov momentum). */
        outer: z
          .object({
            lr: z.number().gt(0).lte(10).default(DEFAULT_OUTER.lr),
            momentum: z.number().gte(0).lt(1).default(DEFAULT_OUTER.momentum),
            nesterov: z.boolean().default(DEFAULT_OUTER.nesterov),
          })
          .strict()
          .default({ ...DEFAULT_OUTER }),
        /** A round closes at this deadline with the results that arrived (the longest lease). */
        roundDeadlineMs: z.number().int().min(100).max(600_000).default(15_000),
        /** Workers needed before a round opens. */
        minWorkers: z.number().int().min(1).max(10_000).default(1),
        /**
         * How long a round's computing should take: each worker's task is this many ms of its
         * measured speed, so the tasks of a round finish together (unless maxBatch binds first).
         */
        targetRoundMs: z.number().int().min(10).max(600_000).default(DEFAULT_SYNC.targetRoundMs),
        /** Most examples in one round when globalBatch is unset (one optimizer step's batch). */
        maxBatch: z.number().int().min(1).max(1_000_000).default(DEFAULT_SYNC.maxBatch),
        /**
         * How the learning rate follows a round's batch when globalBatch is unset, relative to
         * batchPerTask (the batch the rate was chosen for): 'linear' (default: fastest to the target
         * on the simulator, docs/benchmarks.md "Time to target"), 'sqrt' (Adam's theory), 'none'.
         */
        lrScaling: z.enum(['sqrt', 'linear', 'none']).default(DEFAULT_SYNC.lrScaling),
        /**
         * 'speed': tasks sized by each worker's measured speed (above). 'fixed': every worker
         * computes batchPerTask examples a round (globalBatch split evenly), whatever its speed:
         * classic synchronous data parallelism, reproducible from the worker count alone.
         */
        taskSizing: z.enum(['speed', 'fixed']).default(DEFAULT_SYNC.taskSizing),
      })
      .strict()
      .default({ ...DEFAULT_SYNC, outer: { ...DEFAULT_OUTER } }),
    /** Compression of updates (worker to coordinator) and parameter deltas (coordinator to workers). */
    compression: CompressionSchema.default({ up: 'none', down: 'none', block: 256, fraction: 0.01 }),
    /** How a round's results are combined: the mean, or a rule robust to hostile workers. */
    aggregation: AggregationSchema.default({ ...DEFAULT_AGGREGATION }),
    stop: z
      .object({
        targetAccuracy: z.number().gt(0).lte(1).optional(),
        /** Stop once an evaluation's loss (nats per label) is at or below this. */
        targetLoss: z.number().gt(0).optional(),
        maxRounds: z.number().int().min(1).max(10_000_000).optional(),
        maxSamples: z.number().int().min(1).optional(),
      })
      .strict()
      .default({}),
    /** Rounds between checkpoints (also written on pause and stop). */
    checkpointEvery: z.number().int().min(1).max(1_000_000).default(50),
    /** Rounds between test-set evaluations. */
    evalEvery: z.number().int().min(1).max(100_000).default(10),
    /** Test examples each evaluation uses (the first ones of the test split, so always the same); unset: all. */
    evalExamples: z.number().int().min(10).max(1_000_000).optional(),
    seed: z.number().int().min(0).max(2 ** 32 - 1).default(1),
    /**
     * This run's weight when several runs share the grid (server/grid-shares.ts): running runs
     * receive worker-seconds in proportion to their shares, after each has its sync.minWorkers.
     */
    share: z.number().gt(0).max(1e6).default(1),
    /** For a text dataset: characters per training window (the model's positions); unset: 64. */
    context: z.number().int().min(2).max(4096).optional(),
    /**
     * Model parallelism: the layers cut into `stages` held by different workers (a pipeline), and
     * `replicas` copies of that pipeline training on different examples ('auto': as many as the
     * workers allow). Each replica's batch is split into `microBatches` (GPipe schedule).
     */
    parallelism: z
      .object({
        stages: z.number().int().min(1).max(16).default(1),
        replicas: z.union([z.number().int().min(1).max(1024), z.literal('auto')]).default('auto'),
        microBatches: z.number().int().min(1).max(64).default(4),
      })
      .strict()
      .default({ stages: 1, replicas: 'auto', microBatches: 4 }),
  })
  .strict()
  .superRefine((spec, ctx) => {
    if (spec.parallelism.stages > 1) {
      if (spec.sync.mode === 'local') ctx.addIssue({ code: 'custom', path: ['sync', 'mode'], message: 'local mode trains the whole model on each worker: parallelism.stages must be 1' });
      if (spec.compression.up !== 'none' || spec.compression.down !== 'none') {
        ctx.addIssue({ code: 'custom', path: ['compression'], message: 'a pipeline run relays activations and stage slices uncompressed: compression must be none when parallelism.stages > 1' });
      }
    }
    // A stage holds at least one layer of the list (shorthands expanded; the mlp form's activations count).
    const stagesAtMost = (count: number) => {
      if (spec.parallelism.stages > count) {
        ctx.addIssue({ code: 'custom', path: ['parallelism', 'stages'], message: `must be at most the number of layers, ${count} (got ${spec.parallelism.stages}): each stage holds at least one layer` });
      }
    };
    if (spec.model.kind === 'layers') {
      // Shapes and sizes need the dataset's example shape: checkSpecAgainstDataset checks them.
      let count: number;
      try {
        count = expandLayers(spec.model.layers).length;
      } catch (err) {
        if (err instanceof LayerError) return; // named by checkSpecAgainstDataset
        throw err;
      }
      stagesAtMost(count);
      return;
    }
    const { layers } = spec.model;
    let params = 0;
    for (let i = 0; i + 1 < layers.length; i++) params += layers[i] * layers[i + 1] + layers[i + 1];
    if (params > MAX_MODEL_PARAMS) ctx.addIssue({ code: 'custom', path: ['model', 'layers'], message: `the model has ${params} parameters; at most ${MAX_MODEL_PARAMS} are allowed` });
    stagesAtMost(mlpLayers(layers, spec.model.activation).length);
  });

export type RunSpec = z.output<typeof RunSpecSchema>;

/** Examples a worker computes at a time; a larger task is summed over micro-batches of this size. */
export function microBatchOf(spec: Pick<RunSpec, 'batchPerTask' | 'globalBatch'>): number {
  return Math.min(1024, Math.max(spec.batchPerTask, spec.globalBatch ?? 0));
}

/** What checkSpecAgainstDataset needs to know about a dataset. */
export interface DatasetShape {
  name: string;
  features: number;
  classes: number;
  exampleShape?: number[];
  /** Labels per example (a text's window length: one next character per position). */
  labelWidth?: number;
  /** Set for a text cut into windows. */
  text?: { corpus: string; context: number };
}

/** The model must fit the dataset: as many inputs as features, as many outputs as classes. */
export function checkSpecAgainstDataset(spec: RunSpec, dataset: DatasetShape): void {
  if (spec.context !== undefined && !dataset.text) {
    throw new RunSpecError([{ path: 'context', message: `${dataset.name} is not a text dataset; context (a window length) applies to text datasets only` }]);
  }
  if (spec.model.kind === 'layers') return checkLayersAgainstDataset(spec, dataset);
  const { layers } = spec.model;
  const issues: { path: string; message: string }[] = [];
  if (dataset.text) issues.push({ path: 'model', message: `${dataset.name} is a text: the mlp form cannot model it; give a layer list (embedding, positional, transformer-block, ..., dense to ${dataset.classes})` });
  if (layers[0] !== dataset.features) issues.push({ path: 'model.layers.0', message: `${dataset.name} has ${dataset.features} features, so model.layers[0] must be ${dataset.features} (got ${layers[0]})` });
  const last = layers[layers.length - 1];
  if (last !== dataset.classes) issues.push({ path: `model.layers.${layers.length - 1}`, message: `${dataset.name} has ${dataset.classes} classes, so the last layer must be ${dataset.classes} wide (got ${last})` });
  if (issues.length) throw new RunSpecError(issues);
}

function checkLayersAgainstDataset(spec: RunSpec, dataset: DatasetShape): void {
  let model;
  try {
    model = describeRunModel(spec, dataset).description;
  } catch (err) {
    if (!(err instanceof LayerError)) throw err;
    const at = /^layer (\d+)/.exec(err.message);
    throw new RunSpecError([{ path: at ? `model.layers.${at[1]}` : 'model.layers', message: err.message }]);
  }
  const out = model.outShape;
  const last = `model.layers.${spec.model.layers.length - 1}`;
  const width = dataset.labelWidth ?? 1;
  if (width > 1) {
    if (out.length !== 2 || out[0] !== width || out[1] !== dataset.classes) {
      throw new RunSpecError([{ path: last, message: `${dataset.name} has ${width} next-character labels per window and ${dataset.classes} characters, so the model must end in [${width}, ${dataset.classes}] logits (it ends in [${out.join(', ')}])` }]);
    }
  } else if (out.length !== 1 || out[0] !== dataset.classes) {
    throw new RunSpecError([{ path: last, message: `${dataset.name} has ${dataset.classes} classes, so the model must end in [${dataset.classes}] logits (it ends in [${out.join(', ')}])` }]);
  }
  if (model.paramCount > MAX_MODEL_PARAMS) throw new RunSpecError([{ path: 'model.layers', message: `the model has ${model.paramCount} parameters; at most ${MAX_MODEL_PARAMS} are allowed` }]);
}

export type RunSpecInput = z.input<typeof RunSpecSchema>;

export class RunSpecError extends Error {
  override name = 'RunSpecError';
  constructor(readonly issues: { path: string; message: string }[]) {
    super(issues.map((i) => `${i.path || '(spec)'}: ${i.message}`).join('; '));
  }
}

/** The spec's shorthands in full: `compression: <name>` for both directions, `aggregation: <rule>`, and local mode's inner optimizer AdamW unless named (DiLoCo's choice). */
function expandShorthands(input: unknown): unknown {
  if (!input || typeof input !== 'object' || Array.isArray(input)) return input;
  let spec = input as { sync?: { mode?: unknown }; optimizer?: unknown; compression?: unknown; aggregation?: unknown };
  if (typeof spec.aggregation === 'string') spec = { ...spec, aggregation: { rule: spec.aggregation } };
  // `compression: int8` in full here, so that a bad name is reported against the field it sets.
  if (typeof spec.compression === 'string') {
    const name = spec.compression;
    spec = { ...spec, compression: (CODINGS as readonly string[]).includes(name) ? { up: name, down: name === 'topk' ? 'int8' : name } : { up: name } };
  }
  if (spec.sync?.mode !== 'local') return spec;
  const optimizer = spec.optimizer;
  if (optimizer !== undefined && (typeof optimizer !== 'object' || optimizer === null || 'kind' in optimizer)) return spec;
  return { ...spec, optimizer: { ...(optimizer as object | undefined), kind: 'adamw' } };
}

/** Validates and fills defaults; throws RunSpecError naming every bad field. */
export function parseRunSpec(input: unknown): RunSpec {
  const given = expandShorthands(input ?? {});
  const r = RunSpecSchema.safeParse(given);
  if (r.success) return r.data;
  throw new RunSpecError(r.error.issues.flatMap((i) => describeIssue(i, RunSpecSchema, given)));
}

/** The default run `npm start` creates when there is none (PyTorch passes 0.93 on it after ~6 epochs). */
export const DEFAULT_RUN_SPEC: RunSpecInput = {
  name: 'mnist-mlp',
  dataset: 'mnist',
  model: { kind: 'mlp', layers: [784, 128, 10], activation: 'relu' },
  optimizer: { kind: 'adam', lr: 1e-3 },
  batchPerTask: 64,
  stop: { targetAccuracy: 0.93 },
};
