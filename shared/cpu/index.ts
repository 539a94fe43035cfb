// The fast CPU kernels, registered: import this once, then pass `cpuKernels` to the executor.
import '../layers/index.ts';
import './dense.ts';
import './conv2d.ts';
import './attention.ts';
import './residual.ts';

export { cpuKernels } from './kernels.ts';
