// Run checkpoints: parameters under PyTorch nn.Sequential names ('0.weight' [out, in], '0.bias',
// '2.weight', ...), optimizer state under 'optimizer.*', and JSON-able metadata, in one
// safetensors file written atomically (temporary file, fsync, rename, fsync of the directory).
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { LayerConfig } from '../shared/layers/layer.ts';
import { describeModel } from '../shared/layers/sequence.ts';
import { parseRunSpec } from '../shared/run-spec.ts';
import { optimizerStateCount } from '../shared/reference/optimizer.ts';
import { decodeSafetensors, encodeSafetensors, type F32Tensor } from '../shared/safetensors.ts';
import { aggregationContext } from './accumulator.ts';
import type { NormBoundState } from './accumulators/norm-bound.ts';
import type { Run } from './run.ts';
import type { CheckpointRecord } from './store/store.ts';

export const CHECKPOINT_FORMAT = 'crowdtrain-checkpoint-v1';
/** How inputs are preprocessed, so that the weights are usable elsewhere as they are. */
export const INPUT_PREPROCESSING = 'x = pixel / 255 (uint8 image, row-major, flattened); no other normalisation';
/** What a text model's inputs are (its checkpoint's input_preprocessing). */
export const TOKEN_PREPROCESSING = 'x = token ids (index into the vocab metadata: the characters of the text sorted by code point); labels: the next character at each position';

const STATE_NAMES = { momentum: ['momentum_buffer'], adam: ['exp_avg', 'exp_avg_sq'], adamw: ['exp_avg', 'exp_avg_sq'], sgd: [] } as const;

export function specHash(run: Run): string {
  return createHash('sha256').update(JSON.stringify(run.spec)).digest('hex').slice(0, 16);
}

/**
 * A checkpoint written under an older version of the spec schema (before a field with a default
 * was added) belongs to the run when its spec, with today's defaults filled in, is the run's.
 */
function sameSpec(written: string | undefined, run: Run): boolean {
  if (!written) return false;
  try {
    return canonical(parseRunSpec(JSON.parse(written))) === canonical(run.spec);
  } catch {
    return false;
  }
}

/** JSON with every object's keys sorted: two specs with the same fields compare equal whatever order their defaults were filled in. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x));
}

/** The run's state as safetensors bytes. */
export function encodeCheckpoint(run: Run): Uint8Array {
  const layout = tensorLayout(run);
  const tensors: F32Tensor[] = layout.tensors.map((t) => ({ name: t.name, shape: t.shape, data: run.params.subarray(t.offset, t.offset + t.size) }));
  const kind = run.coordinatorOptimizer().kind;
  const states = [run.optimizerState.m, run.optimizerState.v].slice(0, optimizerStateCount(kind));
  STATE_NAMES[kind].forEach((stateName, i) => {
    for (const t of layout.tensors) tensors.push({ name: `optimizer.${stateName}.${t.name}`, shape: t.shape, data: states[i]!.subarray(t.offset, t.offset + t.size) });
  });
  // Set for a text dataset (the character of each token id) and for named classes (Fashion-MNIST).
  const { vocab: text, classNames } = run.dataset as { vocab?: string[]; classNames?: string[] };
  return encodeSafetensors(tensors, {
    format: CHECKPOINT_FORMAT,
    run_id: run.id,
    run_name: run.name,
    version: String(run.version),
    optimizer_step: String(run.version),
    samples: String(run.samples),
    spec_hash: specHash(run),
    spec: JSON.stringify(run.spec),
    model: JSON.stringify(
      run.model
        ? { kind: 'mlp', layers: run.model.layers, activation: run.model.activation, torch: torchSequential(run.net.layers, run.net.inputShape) }
        : { kind: 'layers', layers: run.net.layers, inputShape: run.net.inputShape, torch: torchSequential(run.net.layers, run.net.inputShape) },
    ),
    input_preprocessing: text ? TOKEN_PREPROCESSING : INPUT_PREPROCESSING,
    dataset: run.dataset.name,
    ...(text ? { vocab: JSON.stringify(text) } : {}),
    ...(classNames ? { class_names: JSON.stringify(classNames) } : {}),
    cursor: JSON.stringify({ epoch: run.cursor.epoch, position: run.cursor.position }),
    // The learned norm bound (a few numbers). Centered clipping's centre and the workers' momenta
    // are not kept: workers come back under new ids, and the momenta restart bias-corrected.
    norm_bound: JSON.stringify(aggregationContext(run, run.spec.aggregation, run.paramCount).normBound!.save()),
    loss: String(run.loss ?? ''),
    accuracy: String(run.accuracy ?? ''),
  });
}

/** Every parameter tensor of the run's model: PyTorch state_dict names, shapes, places in the flat vector. */
function tensorLayout(run: Run): { tensors: { name: string; shape: number[]; offset: number; size: number }[] } {
  return { tensors: run.net.description.layers.flatMap((l) => l.params.map(({ name, shape, offset, size }) => ({ name, shape, offset, size }))) };
}

/**
 * The PyTorch module these weights load into, as text for people: nn.Sequential of torch.nn
 * modules, with the three small classes docs/pytorch.md defines (Residual, CausalSelfAttention,
 * LearnedPositions) where torch.nn has no exact equivalent.
 */
export function torchSequential(layers: readonly LayerConfig[], inputShape: readonly number[]): string {
  const d = describeModel(layers, inputShape);
  const module = (l: (typeof d.layers)[number]): string => {
    const c = l.config as Record<string, unknown> & { kind: string };
    const inp = l.inShape;
    switch (c.kind) {
      case 'dense':
        return `nn.Linear(${inp[inp.length - 1]}, ${c.out}${c.bias === false ? ', bias=False' : ''})`;
      case 'conv2d':
        return `nn.Conv2d(${inp[0]}, ${c.out}, ${c.kernel}${c.stride ? `, stride=${c.stride}` : ''}${c.padding ? `, padding=${c.padding}` : ''})`;
      case 'relu':
        return 'nn.ReLU()';
      case 'gelu':
        return "nn.GELU(approximate='tanh')";
      case 'maxpool2d':
      case 'avgpool2d':
        return `nn.${c.kind === 'maxpool2d' ? 'MaxPool2d' : 'AvgPool2d'}(${c.size}${c.stride ? `, stride=${c.stride}` : ''})`;
      case 'flatten':
        return 'nn.Flatten()';
      case 'layernorm':
        return `nn.LayerNorm(${inp[inp.length - 1]}${c.eps ? `, eps=${c.eps}` : ''})`;
      case 'embedding':
        return `nn.Embedding(${c.vocab}, ${c.dim})`;
      case 'positional':
        return `LearnedPositions(${inp[0]}, ${inp[1]})`;
      case 'attention':
        return `CausalSelfAttention(${inp[1]}, ${c.heads})`;
      case 'residual':
        return `Residual(${torchSequential(c.layers as LayerConfig[], inp)})`;
      default:
        return `# ${c.kind}`;
    }
  };
  return `nn.Sequential(${d.layers.map(module).join(', ')})`;
}

/** Writes bytes so that a reader sees the old file or the whole new one, never half. */
export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    let at = 0;
    while (at < bytes.byteLength) at += writeSync(fd, bytes, at, bytes.byteLength - at);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/** Writes the run's checkpoint under <dataDir>/checkpoints/<runId>/ and returns its record. */
export function saveCheckpoint(run: Run, dataDir: string): CheckpointRecord {
  const bytes = encodeCheckpoint(run);
  const path = join(dataDir, 'checkpoints', run.id, `v${String(run.version).padStart(8, '0')}.safetensors`);
  writeFileAtomic(path, bytes);
  return { runId: run.id, version: run.version, path: relative(dataDir, path), bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex'), time: Date.now() };
}

export class CheckpointMismatchError extends Error {
  override name = 'CheckpointMismatchError';
}

/** Puts a checkpoint's parameters, optimizer state, version and data position back into a run. */
export function restoreCheckpoint(run: Run, bytes: Uint8Array): void {
  const file = decodeSafetensors(bytes);
  if (file.metadata.format !== CHECKPOINT_FORMAT) throw new CheckpointMismatchError(`not a crowdtrain checkpoint (format ${file.metadata.format ?? 'missing'})`);
  if (file.metadata.spec_hash !== specHash(run) && !sameSpec(file.metadata.spec, run)) throw new CheckpointMismatchError(`checkpoint of another spec (hash ${file.metadata.spec_hash}, run has ${specHash(run)})`);
  const layout = tensorLayout(run);
  const take = (name: string, into: Float32Array, offset: number, size: number) => {
    const t = file.tensors.get(name);
    if (!t || t.data.length !== size) throw new CheckpointMismatchError(`checkpoint lacks ${name} of ${size} values`);
    into.set(t.data, offset);
  };
  for (const t of layout.tensors) take(t.name, run.params, t.offset, t.size);
  const kind = run.coordinatorOptimizer().kind;
  const states = [run.optimizerState.m, run.optimizerState.v];
  STATE_NAMES[kind].forEach((stateName, i) => {
    for (const t of layout.tensors) take(`optimizer.${stateName}.${t.name}`, states[i]!, t.offset, t.size);
  });
  run.version = Number(file.metadata.version);
  run.samples = Number(file.metadata.samples);
  const loss = Number.parseFloat(file.metadata.loss);
  const accuracy = Number.parseFloat(file.metadata.accuracy);
  run.loss = Number.isFinite(loss) ? loss : null;
  run.accuracy = Number.isFinite(accuracy) ? accuracy : null;
  const cursor = JSON.parse(file.metadata.cursor ?? '{"epoch":0,"position":0}') as { epoch: number; position: number };
  run.cursor.restore(cursor.epoch, cursor.position);
  if (file.metadata.norm_bound) aggregationContext(run, run.spec.aggregation, run.paramCount).normBound!.restore(JSON.parse(file.metadata.norm_bound) as NormBoundState);
}

export function readCheckpointFile(dataDir: string, record: CheckpointRecord): Uint8Array {
  return readFileSync(join(dataDir, record.path));
}
