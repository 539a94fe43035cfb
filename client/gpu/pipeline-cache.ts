// Compiles each kernel once: shader modules keyed by source, pipelines keyed by kernelKey
// (source + entry point + overrides), bind group layouts built from the descriptor.
import { debugWgsl } from './debug.ts';
import { hashString, kernelKey, type BindingKind, type Kernel } from './kernel.ts';

export class KernelCompileError extends Error {
  override name = 'KernelCompileError';
}

export interface CompiledKernel {
  kernel: Kernel;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

const BUFFER_TYPE: Record<BindingKind, GPUBufferBindingType> = {
  read: 'read-only-storage',
  storage: 'storage',
  uniform: 'uniform',
};

export class PipelineCache {
  private modules = new Map<string, GPUShaderModule>();
  private pipelines = new Map<string, CompiledKernel>();
  private pending = new Map<string, Promise<CompiledKernel>>();
  private layouts = new Map<string, GPUBindGroupLayout>();

  constructor(private readonly device: GPUDevice) {}

  get size(): number {
    return this.pipelines.size;
  }

  /** Synchronous compile (first use inside a step). Prefer warm() ahead of time. */
  get(kernel: Kernel): CompiledKernel {
    const key = kernelKey(kernel);
    let hit = this.pipelines.get(key);
    if (!hit) {
      const layout = this.layoutFor(kernel.bindings);
      const pipeline = this.device.createComputePipeline(this.pipelineDescriptor(kernel, layout));
      hit = { kernel, pipeline, layout };
      this.pipelines.set(key, hit);
    }
    return hit;
  }

  /** Compiles ahead of use (shader warm-up) and reports WGSL errors with their line. */
  async warm(kernel: Kernel): Promise<CompiledKernel> {
    const key = kernelKey(kernel);
    const hit = this.pipelines.get(key);
    if (hit) return hit;
    let p = this.pending.get(key);
    if (!p) {
      p = (async () => {
        const layout = this.layoutFor(kernel.bindings);
        const desc = this.pipelineDescriptor(kernel, layout);
        try {
          const pipeline = await this.device.createComputePipelineAsync(desc);
          const compiled = { kernel, pipeline, layout };
          this.pipelines.set(key, compiled);
          return compiled;
        } catch (err) {
          const info = await desc.compute.module.getCompilationInfo();
          const msgs = info.messages.map((m) => `${m.type} at ${m.lineNum}:${m.linePos}: ${m.message}`).join('\n');
          throw new KernelCompileError(`kernel ${kernel.name} (${kernel.entryPoint}) failed to compile: ${(err as Error).message}\n${msgs}`);
        } finally {
          this.pending.delete(key);
        }
      })();
      this.pending.set(key, p);
    }
    return p;
  }

  private module(kernel: Kernel): GPUShaderModule {
    const key = `${kernel.name}:${hashString(kernel.source)}:${kernel.source.length}`;
    let mod = this.modules.get(key);
    if (!mod) {
      mod = this.device.createShaderModule({ label: kernel.name, code: kernel.source });
      this.modules.set(key, mod);
    }
    return mod;
  }

  private pipelineDescriptor(kernel: Kernel, layout: GPUBindGroupLayout): GPUComputePipelineDescriptor {
    if (debugWgsl()) {
      console.log(`[crowdtrain wgsl] ${kernel.name} entry=${kernel.entryPoint} overrides=${JSON.stringify(kernel.overrides ?? {})}\n${kernel.source}`);
    }
    return {
      label: `${kernel.name}:${kernel.entryPoint}`,
      layout: this.device.createPipelineLayout({ label: kernel.name, bindGroupLayouts: [layout] }),
      compute: { module: this.module(kernel), entryPoint: kernel.entryPoint, constants: { ...kernel.overrides } },
    };
  }

  private layoutFor(bindings: readonly BindingKind[]): GPUBindGroupLayout {
    const key = bindings.join(',');
    let layout = this.layouts.get(key);
    if (!layout) {
      layout = this.device.createBindGroupLayout({
        label: `layout(${key})`,
        entries: bindings.map((kind, binding) => ({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: BUFFER_TYPE[kind] } })),
      });
      this.layouts.set(key, layout);
    }
    return layout;
  }
}
