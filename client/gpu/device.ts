// WebGPU device acquisition: finds an adapter, checks the limits crowdtrain needs, and says
// clearly why WebGPU is unusable when it is (the caller then falls back to the CPU backend).

export type WebGpuFailure = 'no-webgpu' | 'no-adapter' | 'limits' | 'device';

export class WebGpuUnavailableError extends Error {
  override name = 'WebGpuUnavailableError';
  constructor(
    readonly reason: WebGpuFailure,
    message: string,
  ) {
    super(message);
  }
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for a CPU implementation (SwiftShader, WARP, llvmpipe). */
  software: boolean;
}

/** What crowdtrain's kernels need at least; every WebGPU adapter's defaults meet these. */
export const REQUIRED_LIMITS = {
  maxStorageBufferBindingSize: 128 * 1024 * 1024,
  maxBufferSize: 256 * 1024 * 1024,
  maxComputeWorkgroupStorageSize: 16 * 1024,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxStorageBuffersPerShaderStage: 8,
} as const;

export interface AcquiredDevice {
  device: GPUDevice;
  adapter: GPUAdapter;
  info: AdapterSummary;
  /** Timestamp queries are available (the device was created with them). */
  timestamps: boolean;
}

export function summarizeAdapter(adapter: GPUAdapter): AdapterSummary {
  const i = adapter.info;
  const arch = i.architecture ?? '';
  const software =
    (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter === true ||
    /swiftshader|llvmpipe|warp|lavapipe/i.test(`${arch} ${i.description} ${i.device}`);
  return { vendor: i.vendor ?? '', architecture: arch, device: i.device ?? '', description: i.description ?? '', software };
}

export interface AcquireOptions {
  powerPreference?: GPUPowerPreference;
  /** Ask for timestamp-query when the adapter has it (profiling). */
  timestamps?: boolean;
}

/**
 * @example const { device, info } = await acquireDevice(); // info.architecture === 'swiftshader'
 */
export async function acquireDevice(opts: AcquireOptions = {}): Promise<AcquiredDevice> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) {
    const secure = (globalThis as { isSecureContext?: boolean }).isSecureContext;
    throw new WebGpuUnavailableError(
      'no-webgpu',
      secure === false
        ? 'WebGPU needs a secure context: open the page over https or from http://localhost.'
        : 'This browser has no WebGPU (navigator.gpu is missing). Use a recent Chrome, Edge or Chromium, or Firefox/Safari with WebGPU enabled.',
    );
  }
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new WebGpuUnavailableError('no-adapter', 'WebGPU is present but offers no adapter (GPU blocklisted or drivers missing).');
  }
  const short: string[] = [];
  const requiredLimits: Record<string, number> = {};
  for (const [name, need] of Object.entries(REQUIRED_LIMITS)) {
    const have = (adapter.limits as unknown as Record<string, number>)[name];
    if (have < need) short.push(`${name}: adapter has ${have}, crowdtrain needs ${need}`);
    // Ask for all the adapter offers: larger buffers let bigger models and batches fit.
    requiredLimits[name] = have;
  }
  if (short.length) throw new WebGpuUnavailableError('limits', `This GPU's WebGPU limits are too small: ${short.join('; ')}.`);
  const timestamps = !!opts.timestamps && adapter.features.has('timestamp-query');
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({
      label: 'crowdtrain',
      requiredLimits,
      requiredFeatures: timestamps ? ['timestamp-query'] : [],
    });
  } catch (err) {
    throw new WebGpuUnavailableError('device', `Could not create a WebGPU device: ${(err as Error).message}`);
  }
  return { device, adapter, info: summarizeAdapter(adapter), timestamps };
}
