// flatten on the GPU: nothing to do, the values do not move (shared/layers/flatten.ts).
// Keeps nothing: its output is its input, its dx is its dy.
import { registerGpuLayer } from './layer.ts';

registerGpuLayer('flatten', ({ inputGrad }) => ({
  stash: () => null,
  forward: (_s, x) => ({ y: x, dispatches: [] }),
  backward: (_s, _x, dy) => ({ dx: inputGrad ? dy : null, dispatches: [] }),
}));
