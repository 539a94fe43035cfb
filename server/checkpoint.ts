// Run checkpoints: parameters under PyTorch nn.Sequential names ('0.weight' [out, in], '0.bias',
// '2.weight', ...), optimizer state under 'optimizer.*', and JSON-able metadata, in one
// safetensors file written atomically (temporary file, fsync, rename, fsync of the directory).
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { mlpLayout } from '../shared/model.ts';
import { optimizerStateCount } from '../shared/reference/optimizer.ts';
import { decodeSafetensors, encodeSafetensors, type F32Tensor } from '../shared/safetensors.ts';
import type { Run } from './run.ts';
import type { CheckpointRecord } from './store/store.ts';

export const CHECKPOINT_FORMAT = 'crowdtrain-checkpoint-v1';
/** How inputs are preprocessed, so that the weights are usable elsewhere as they are. */
export const INPUT_PREPROCESSING = 'x = pixel / 255 (uint8 image, row-major, flattened); no other normalisation';

const STATE_NAMES = { momentum: ['momentum_buffer'], adam: ['exp_avg', 'exp_avg_sq'], adamw: ['exp_avg', 'exp_avg_sq'], sgd: [] } as const;

export function specHash(run: Run): string {
  return createHash('sha256').update(JSON.stringify(run.spec)).digest('hex').slice(0, 16);
}

/** The run's state as safetensors bytes. */
export function encodeCheckpoint(run: Run): Uint8Array {
  const layout = mlpLayout(run.model);
  const tensors: F32Tensor[] = layout.tensors.map((t) => ({ name: t.name, shape: t.shape, data: run.params.subarray(t.offset, t.offset + t.size) }));
  const kind = run.spec.optimizer.kind;
  const states = [run.optimizerState.m, run.optimizerState.v].slice(0, optimizerStateCount(kind));
  STATE_NAMES[kind].forEach((stateName, i) => {
    for (const t of layout.tensors) tensors.push({ name: `optimizer.${stateName}.${t.name}`, shape: t.shape, data: states[i]!.subarray(t.offset, t.offset + t.size) });
  });
  return encodeSafetensors(tensors, {
    format: CHECKPOINT_FORMAT,
    run_id: run.id,
    run_name: run.name,
    version: String(run.version),
    optimizer_step: String(run.version),
    samples: String(run.samples),
    spec_hash: specHash(run),
    spec: JSON.stringify(run.spec),
    model: JSON.stringify({ kind: 'mlp', layers: run.model.layers, activation: run.model.activation, torch: torchSequential(run) }),
    input_preprocessing: INPUT_PREPROCESSING,
    cursor: JSON.stringify({ epoch: run.cursor.epoch, position: run.cursor.position }),
    loss: String(run.loss ?? ''),
    accuracy: String(run.accuracy ?? ''),
  });
}

/** The PyTorch module these weights load into, as text for people. */
function torchSequential(run: Run): string {
  const act = run.model.activation === 'relu' ? 'nn.ReLU()' : "nn.GELU(approximate='tanh')";
  const parts: string[] = [];
  for (let i = 0; i + 1 < run.model.layers.length; i++) {
    if (i > 0) parts.push(act);
    parts.push(`nn.Linear(${run.model.layers[i]}, ${run.model.layers[i + 1]})`);
  }
  return `nn.Sequential(${parts.join(', ')})`;
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
  if (file.metadata.spec_hash !== specHash(run)) throw new CheckpointMismatchError(`checkpoint of another spec (hash ${file.metadata.spec_hash}, run has ${specHash(run)})`);
  const layout = mlpLayout(run.model);
  const take = (name: string, into: Float32Array, offset: number, size: number) => {
    const t = file.tensors.get(name);
    if (!t || t.data.length !== size) throw new CheckpointMismatchError(`checkpoint lacks ${name} of ${size} values`);
    into.set(t.data, offset);
  };
  for (const t of layout.tensors) take(t.name, run.params, t.offset, t.size);
  const kind = run.spec.optimizer.kind;
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
}

export function readCheckpointFile(dataDir: string, record: CheckpointRecord): Uint8Array {
  return readFileSync(join(dataDir, record.path));
}
