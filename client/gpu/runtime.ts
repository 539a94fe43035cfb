// The GPU runtime: one device, its pipeline cache and buffer pool, and the two verbs the rest
// of crowdtrain uses: prepare a dispatch once (pipeline + bind group + workgroups), then
// submit lists of prepared dispatches each step with no allocation.
import { acquireDevice, type AcquireOptions, type AdapterSummary } from './device.ts';
import { BufferPool } from './buffer-pool.ts';
import type { Kernel } from './kernel.ts';
import { PipelineCache } from './pipeline-cache.ts';
import { Profiler, type KernelTiming } from './profiler.ts';

/** A whole buffer, or a range of one (offsets must be multiples of 256 bytes). */
export type Binding = GPUBuffer | GPUBufferBinding;

export interface Dispatch {
  label: string;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups: [number, number, number];
  /** The dispatch's own uniform buffer, when the kernel has one (rewrite with gpu.setUniforms). */
  uniforms?: GPUBuffer;
}

export interface DispatchSpec {
  kernel: Kernel;
  /** Storage bindings in @binding order; a uniform binding, if declared, comes from `uniforms`. */
  buffers: Binding[];
  uniforms?: ArrayBufferView;
  workgroups: readonly [number, number?, number?];
}

export class Gpu {
  readonly pipelines: PipelineCache;
  readonly pool: BufferPool;
  readonly profiler?: Profiler;
  /** Timings of the last profiled submits (when profiling is on). */
  timings: KernelTiming[] = [];

  private constructor(
    readonly device: GPUDevice,
    readonly info: AdapterSummary,
    profile: boolean,
  ) {
    this.pipelines = new PipelineCache(device);
    this.pool = new BufferPool(device);
    if (profile) this.profiler = new Profiler(device);
  }

  /**
   * @example const gpu = await Gpu.create(); const buf = gpu.upload(new Float32Array([1, 2]));
   */
  static async create(opts: AcquireOptions & { profile?: boolean } = {}): Promise<Gpu> {
    const { device, info, timestamps } = await acquireDevice({ ...opts, timestamps: opts.profile });
    device.lost.then((l) => {
      if (l.reason !== 'destroyed') console.error(`[crowdtrain] WebGPU device lost: ${l.message}`);
    });
    return new Gpu(device, info, !!opts.profile && timestamps);
  }

  /** A storage buffer of `bytes` (rounded up to 4), zero-filled. */
  buffer(bytes: number, label = 'buffer'): GPUBuffer {
    // GPUBufferUsage is read here, not at module load: a tab without WebGPU has no such global, and
    // must still load this module to fall back to the CPU backend.
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    return this.device.createBuffer({ label, size: Math.max(4, Math.ceil(bytes / 4) * 4), usage });
  }

  /** A storage buffer holding `data`. */
  upload(data: ArrayBufferView, label = 'upload'): GPUBuffer {
    const buf = this.buffer(data.byteLength, label);
    this.write(buf, data);
    return buf;
  }

  write(buf: GPUBuffer, data: ArrayBufferView, byteOffset = 0): void {
    // writeBuffer needs a multiple of 4 bytes: pad a ragged tail (u8 data) with zeros.
    if (data.byteLength % 4 === 0) {
      this.device.queue.writeBuffer(buf, byteOffset, data.buffer, data.byteOffset, data.byteLength);
    } else {
      const padded = new Uint8Array(Math.ceil(data.byteLength / 4) * 4);
      padded.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      this.device.queue.writeBuffer(buf, byteOffset, padded);
    }
  }

  setUniforms(d: Dispatch, data: ArrayBufferView): void {
    if (!d.uniforms) throw new Error(`dispatch ${d.label} has no uniforms`);
    this.device.queue.writeBuffer(d.uniforms, 0, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Builds the bind group once; the returned dispatch can be submitted any number of times. */
  prepare(spec: DispatchSpec): Dispatch {
    const { kernel } = spec;
    const compiled = this.pipelines.get(kernel);
    const storageCount = kernel.bindings.filter((b) => b !== 'uniform').length;
    if (spec.buffers.length !== storageCount) {
      throw new Error(`kernel ${kernel.name} binds ${storageCount} storage buffers, got ${spec.buffers.length}`);
    }
    let uniforms: GPUBuffer | undefined;
    let next = 0;
    const entries: GPUBindGroupEntry[] = kernel.bindings.map((kind, binding) => {
      if (kind === 'uniform') {
        if (!spec.uniforms) throw new Error(`kernel ${kernel.name} needs uniforms`);
        const size = Math.max(16, Math.ceil(spec.uniforms.byteLength / 16) * 16);
        uniforms = this.device.createBuffer({ label: `${kernel.name}-uniforms`, size, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
        this.device.queue.writeBuffer(uniforms, 0, spec.uniforms.buffer, spec.uniforms.byteOffset, spec.uniforms.byteLength);
        return { binding, resource: { buffer: uniforms } };
      }
      const b = spec.buffers[next++];
      return { binding, resource: b instanceof GPUBuffer ? { buffer: b } : b };
    });
    const bindGroup = this.device.createBindGroup({ label: kernel.name, layout: compiled.layout, entries });
    const [x, y = 1, z = 1] = spec.workgroups;
    return { label: kernel.name, pipeline: compiled.pipeline, bindGroup, workgroups: [x, y, z], uniforms };
  }

  /** Records dispatches in order into one compute pass (one per dispatch when profiling). */
  encode(encoder: GPUCommandEncoder, dispatches: readonly Dispatch[]): void {
    if (this.profiler) {
      for (const d of dispatches) {
        const pass = encoder.beginComputePass({ label: d.label, timestampWrites: this.profiler.passTimestamps(d.label) });
        pass.setPipeline(d.pipeline);
        pass.setBindGroup(0, d.bindGroup);
        pass.dispatchWorkgroups(...d.workgroups);
        pass.end();
      }
      return;
    }
    const pass = encoder.beginComputePass();
    for (const d of dispatches) {
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(...d.workgroups);
    }
    pass.end();
  }

  /** Encodes and submits dispatches as one command buffer. */
  submit(dispatches: readonly Dispatch[]): void {
    const encoder = this.device.createCommandEncoder();
    this.encode(encoder, dispatches);
    this.profiler?.resolveInto(encoder);
    this.device.queue.submit([encoder.finish()]);
  }

  /** Collected timings of the profiled submits so far (empty when profiling is off). */
  async collectTimings(): Promise<KernelTiming[]> {
    if (!this.profiler) return [];
    this.timings = await this.profiler.collect();
    return this.timings;
  }

  /** Copies `byteLength` bytes from `src` back to the CPU. */
  async readBytes(src: GPUBuffer, byteOffset = 0, byteLength = src.size - byteOffset): Promise<ArrayBuffer> {
    const size = Math.ceil(byteLength / 4) * 4;
    const staging = this.pool.acquire(size, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'readback');
    const encoder = this.device.createCommandEncoder({ label: 'readback' });
    encoder.copyBufferToBuffer(src, byteOffset, staging, 0, size);
    this.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ, 0, size);
    const out = staging.getMappedRange(0, size).slice(0, byteLength);
    staging.unmap();
    this.pool.release(staging);
    return out;
  }

  /** Reads `count` float32 values starting at element `offset`. */
  async read(src: GPUBuffer, count = src.size / 4, offset = 0): Promise<Float32Array> {
    return new Float32Array(await this.readBytes(src, offset * 4, count * 4));
  }

  async readU32(src: GPUBuffer, count = src.size / 4, offset = 0): Promise<Uint32Array> {
    return new Uint32Array(await this.readBytes(src, offset * 4, count * 4));
  }

  /** Waits for submitted work to finish. */
  async sync(): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
  }

  destroy(): void {
    this.pool.trim();
    this.device.destroy();
  }
}
