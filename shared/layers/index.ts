// Every layer kind, registered: import this once before describing a model.
import './dense.ts';
import './activation.ts';
import './flatten.ts';
import './conv2d.ts';
import './maxpool2d.ts';
import './avgpool2d.ts';
import './layernorm.ts';
import './embedding.ts';
import './positional.ts';
import './attention.ts';
import './residual.ts';

export * from './layer.ts';
export * from './sequence.ts';
export { expandLayers } from './shorthand.ts';
export { lossAndGradient } from './head.ts';
