// A contiguous list of layers on the GPU as one GpuLayer: forward through them in order, backward
// in reverse with each layer's dx the dy of the layer before. The chain rule on the GPU, written
// once: the executor runs a model's range as a chain, residual runs its inner layers as one.
// Kinds do not belong here (./<kind>.ts), nor buffers of parameters or the loss (../layer-executor.ts).
import type { PlacedLayer } from '../../../shared/layers/sequence.ts';
import type { Binding, Dispatch } from '../../gpu/runtime.ts';
import { createGpuLayer, type GpuLayer, type GpuLayerSetup } from './layer.ts';

/** A GpuLayerSetup for a list of layers; params and grads hold one binding per tensor of every layer, in the layers' order. */
export interface ChainSetup extends Omit<GpuLayerSetup, 'config' | 'inShape' | 'outShape'> {
  /** At least one layer; each one's inShape is the outShape of the one before. */
  layers: readonly PlacedLayer[];
}

export interface ChainStash {
  /** Each layer's own stash. */
  stashes: unknown[];
  /** Each layer's input, recorded by forward (the same bindings for every batch of a stash). */
  inputs: Binding[];
}

/** Sets up every layer of the list (inputGrad reaches only the first: the others always need dx). */
export function createChain(setup: ChainSetup): GpuLayer<ChainStash> {
  const { layers } = setup;
  if (layers.length === 0) throw new Error('a chain needs at least one layer');
  let next = 0;
  const impls = layers.map((l, i) => {
    const count = l.params.length;
    const impl = createGpuLayer({
      gpu: setup.gpu,
      config: l.config,
      inShape: l.inShape,
      outShape: l.outShape,
      params: setup.params.slice(next, next + count),
      grads: setup.grads.slice(next, next + count),
      maxBatch: setup.maxBatch,
      inputGrad: i > 0 || setup.inputGrad,
      alloc: (floats, label) => setup.alloc(floats, `${l.index}.${label}`),
    });
    next += count;
    return impl;
  });
  if (next !== setup.params.length || next !== setup.grads.length) {
    throw new Error(`chain: the layers hold ${next} parameter tensors, given ${setup.params.length} bindings and ${setup.grads.length} gradients`);
  }

  return {
    stash: (label) => ({ stashes: impls.map((impl, i) => impl.stash(`${label}/${layers[i].index}`)), inputs: [] }),

    forward(s, x, batch) {
      const dispatches: Dispatch[] = [];
      let h = x;
      impls.forEach((impl, i) => {
        s.inputs[i] = h;
        const f = impl.forward(s.stashes[i], h, batch);
        dispatches.push(...f.dispatches);
        h = f.y;
      });
      return { y: h, dispatches };
    },

    backward(s, x, dy, batch) {
      if (s.inputs[0] !== x) throw new Error('chain: backward of a stash on another input than its forward');
      const dispatches: Dispatch[] = [];
      let d: Binding | null = dy;
      for (let i = impls.length - 1; i >= 0; i--) {
        const b = impls[i].backward(s.stashes[i], s.inputs[i], d!, batch);
        dispatches.push(...b.dispatches);
        d = b.dx;
        if (d === null && i > 0) throw new Error(`chain: layer ${layers[i].index} (${layers[i].config.kind}) gave no input gradient`);
      }
      return { dx: d, dispatches };
    },

    checkInput: impls[0].checkInput?.bind(impls[0]),
  };
}
