// A contiguous range [first, end) of a model's layers as an executor runs it: the whole model for
// a data-parallel task, a stage's range for a pipeline task. Both executors (the fast CPU one in
// shared/cpu, the WebGPU one in client/nn) are ranges: the bounds, the shapes of one example at
// the range's input and output, and the range's slice of the model's flat parameter vector.
import type { ModelDescription } from './sequence.ts';

export interface LayerRangeOptions {
  /** First layer of the range (default 0). */
  first?: number;
  /** One past its last layer (default: the model's end). */
  end?: number;
  /** Most examples one forward or backward takes. */
  maxBatch: number;
  /** Micro-batches that may be forwarded before their backward (pipeline rounds); default 1. */
  maxMicroBatches?: number;
}

export class LayerRange {
  readonly model: ModelDescription;
  readonly first: number;
  readonly end: number;
  readonly maxBatch: number;
  readonly maxMicroBatches: number;
  /** Shapes of one example at the range's input and output. */
  readonly inShape: number[];
  readonly outShape: number[];
  /** The range's slice of the model's flat parameter vector: [paramOffset, paramOffset + paramCount). */
  readonly paramOffset: number;
  readonly paramCount: number;
  /** True when the range ends with the model's logits (the loss can be taken). */
  readonly last: boolean;

  /** Throws RangeError, naming `who`, for a range that is not a non-empty range of the model or for bad sizes. */
  constructor(model: ModelDescription, opts: LayerRangeOptions, who: string) {
    const { first = 0, end = model.layers.length, maxBatch, maxMicroBatches = 1 } = opts;
    if (!Number.isInteger(first) || !Number.isInteger(end) || first < 0 || end > model.layers.length || first >= end) {
      throw new RangeError(`${who}: the range [${first}, ${end}) is not a non-empty range of the model's ${model.layers.length} layers`);
    }
    for (const [name, v] of Object.entries({ maxBatch, maxMicroBatches })) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`${who}: ${name} must be a positive integer, got ${v}`);
    }
    this.model = model;
    this.first = first;
    this.end = end;
    this.maxBatch = maxBatch;
    this.maxMicroBatches = maxMicroBatches;
    const layers = model.layers.slice(first, end);
    this.inShape = [...layers[0].inShape];
    this.outShape = [...layers[layers.length - 1].outShape];
    this.paramOffset = layers[0].paramOffset;
    this.paramCount = layers.reduce((a, l) => a + l.paramCount, 0);
    this.last = end === model.layers.length;
  }
}
