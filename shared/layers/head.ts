// The loss at the end of a model, chosen by its output shape: [K] logits → classification (one
// label per example); [T, V] logits → language modelling (one label per position). Softmax
// cross-entropy, mean over every labelled row; the gradient is of that mean.
import { softmaxCrossEntropyRef } from '../reference/softmax-ce.ts';
import { LayerError, shapeText, type Shape } from './layer.ts';

export interface HeadLoss {
  loss: number;
  /** Gradient of the mean loss with respect to the logits, [B, ...outShape]. */
  dlogits: Float32Array;
}

/** Rows of labels one example has for this output shape. */
export function labelsPerExample(outShape: Shape): number {
  if (outShape.length === 1) return 1;
  if (outShape.length === 2) return outShape[0];
  throw new LayerError(`a model must end in logits [classes] or [positions, vocabulary], not ${shapeText(outShape)}`);
}

export function lossAndGradient(outShape: Shape, logits: Float32Array, labels: ArrayLike<number>, batch: number): HeadLoss {
  const rows = batch * labelsPerExample(outShape);
  const classes = outShape[outShape.length - 1];
  const r = softmaxCrossEntropyRef(logits, labels, rows, classes);
  return { loss: r.meanLoss, dlogits: r.dlogits };
}
