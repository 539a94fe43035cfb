// One shared WebGPU runtime for all browser tests in a file (device creation is slow on SwiftShader).
import { Gpu } from '../../client/gpu/runtime.ts';

let gpu: Promise<Gpu> | undefined;

export function testGpu(): Promise<Gpu> {
  gpu ??= Gpu.create();
  return gpu;
}
