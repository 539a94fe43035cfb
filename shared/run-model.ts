// A run's model as layers, whichever form its spec used: the MLP shorthand (dense layers on the
// flat features, PyTorch names '0.weight', '2.weight', ...) or a layer list on the dataset's
// example shape ([1, 28, 28] for MNIST images). Everything that needs shapes, parameter names or
// the chain rule reads this, not the spec's model field.
import './layers/index.ts';
import type { LayerConfig } from './layers/layer.ts';
import { describeModel, type ModelDescription } from './layers/sequence.ts';
import { expandLayers, mlpLayers } from './layers/shorthand.ts';
import type { MlpSpec } from './model.ts';

/** What a worker needs to build its backend for a run's model (RunInfo and RunSummary carry it). */
export interface NetInfo {
  /** The MLP form's widths and activation; null for a layer list. */
  model: MlpSpec | null;
  layers: LayerConfig[];
  inputShape: number[];
}

export interface RunModel {
  /** The layers, shorthands expanded. */
  layers: LayerConfig[];
  /** Shape of one example as the first layer sees it. */
  inputShape: number[];
  description: ModelDescription;
  /** Set for the MLP form (its one-line description and checkpoint metadata); it runs on the layer executors like any list. */
  mlp: MlpSpec | null;
}

interface ModelField {
  model: { kind: 'mlp'; layers: number[]; activation: 'relu' | 'gelu' } | { kind: 'layers'; layers: LayerConfig[] };
}

/**
 * The model in one line: its kind, its layers, its parameters. 'mlp 784-128-10 relu, 101,770 parameters',
 * '10-class classifier of 5 layers (conv2d, relu, maxpool2d, flatten, dense), 4,594 parameters',
 * 'language model of 8 layers (embedding, positional, residual ×4, layernorm, dense), 215,105 parameters'.
 */
export function modelLine(net: Pick<RunModel, 'mlp' | 'layers' | 'description'>): string {
  const params = `${net.description.paramCount.toLocaleString('en-US')} parameters`;
  if (net.mlp) return `mlp ${net.mlp.layers.join('-')} ${net.mlp.activation}, ${params}`;
  const out = net.description.outShape;
  const kind = out.length === 2 ? 'language model' : out.length === 1 ? `${out[0]}-class classifier` : `model to ${out.join('×')}`;
  // Runs of one kind (a transformer's residual blocks) read as 'residual ×4'.
  const runs: { kind: string; n: number }[] = [];
  for (const l of net.layers) {
    const last = runs.at(-1);
    if (last?.kind === l.kind) last.n++;
    else runs.push({ kind: l.kind, n: 1 });
  }
  const kinds = runs.map((r) => (r.n > 1 ? `${r.kind} ×${r.n}` : r.kind)).join(', ');
  return `${kind} of ${net.layers.length} layers (${kinds}), ${params}`;
}

/** modelLine of a run's net as the pages get it (RunSummary.net). */
export function netLine(net: NetInfo): string {
  return modelLine({ mlp: net.model, layers: net.layers, description: describeModel(net.layers, net.inputShape) });
}

/** @example describeRunModel(spec, { features: 784, exampleShape: [1, 28, 28] }).description.paramCount */
export function describeRunModel(spec: ModelField, dataset: { features: number; exampleShape?: number[] }): RunModel {
  if (spec.model.kind === 'mlp') {
    const mlp = { layers: spec.model.layers, activation: spec.model.activation };
    const layers = mlpLayers(mlp.layers, mlp.activation);
    const inputShape = [mlp.layers[0]];
    return { layers, inputShape, description: describeModel(layers, inputShape), mlp };
  }
  const layers = expandLayers(spec.model.layers);
  const inputShape = dataset.exampleShape && dataset.exampleShape.reduce((a, b) => a * b, 1) === dataset.features ? [...dataset.exampleShape] : [dataset.features];
  return { layers, inputShape, description: describeModel(layers, inputShape), mlp: null };
}
