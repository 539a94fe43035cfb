// Every layer kind's WebGPU implementation, registered: import this once before creating an executor.
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

export { createGpuLayer, registerGpuLayer, type GpuLayer, type GpuLayerSetup } from './layer.ts';
export { createChain } from './chain.ts';
