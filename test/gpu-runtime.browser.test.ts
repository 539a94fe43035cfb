// The GPU runtime's own behaviour, in real Chromium: the WGSL debug switch, per-dispatch
// timestamp profiling, the pipeline cache compiling each kernel once, and WGSL compile errors
// reported with their kernel and line. Op results belong in the per-op tests, not here.
import { afterEach, describe, expect, test, vi } from 'vitest';
import { setDebugWgsl } from '../client/gpu/debug.ts';
import type { Kernel } from '../client/gpu/kernel.ts';
import { biasAct } from '../client/gpu/ops/bias-act.ts';
import { gather, gatherKernel, gatherParams, packBytes } from '../client/gpu/ops/gather.ts';
import { KernelCompileError } from '../client/gpu/pipeline-cache.ts';
import { Gpu } from '../client/gpu/runtime.ts';
import { testGpu } from './helpers/gpu.ts';

/** The gather kernel with its workgroup size overridden: a pipeline no test compiled before. */
const gatherWith = (wg: number): Kernel => ({ ...gatherKernel, overrides: { WG: wg } });

const wgslPrints = (spy: { mock: { calls: unknown[][] } }) => spy.mock.calls.map((c) => String(c[0])).filter((s) => s.startsWith('[crowdtrain wgsl]'));

afterEach(() => {
  setDebugWgsl(false);
  vi.restoreAllMocks();
});

describe('WGSL debug switch', () => {
  test('on: compiling a new kernel prints its source and overrides; off: prints nothing', async () => {
    const gpu = await testGpu();
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});

    setDebugWgsl(true);
    await gpu.pipelines.warm(gatherWith(64));
    const printed = wgslPrints(log);
    expect(printed).toHaveLength(1);
    expect(printed[0]).toContain('gather_rows');
    expect(printed[0]).toContain('"WG":64');
    // The whole WGSL source, not just its name.
    expect(printed[0]).toContain(gatherKernel.source.trim());

    log.mockClear();
    setDebugWgsl(false);
    await gpu.pipelines.warm(gatherWith(128));
    gpu.pipelines.get(gatherWith(32));
    expect(wgslPrints(log)).toEqual([]);
  });
});

describe('timestamp profiling', () => {
  test('one timing per dispatch, labelled with its kernel, in finite non-negative ms', async () => {
    const gpu = await Gpu.create({ profile: true });
    try {
      expect(gpu.profiler, `no profiler: the adapter (${gpu.info.architecture || gpu.info.description}) did not give timestamp-query`).toBeDefined();
      const [b, f, n] = [5, 33, 9];
      const x = gpu.buffer(b * f * 4);
      const args = {
        data: gpu.upload(packBytes(new Uint8Array(n * f).map((_, i) => i % 251))),
        labels: gpu.upload(packBytes(new Uint8Array(n))),
        order: gpu.upload(Uint32Array.from({ length: n }, (_, i) => i)),
        orderLength: n,
        x,
        y: gpu.buffer(b * 4),
        batch: b,
        features: f,
        count: n,
      };
      const g = gather(gpu, args);
      gpu.setUniforms(g, gatherParams(args, 2));
      const act = biasAct(gpu, { x, bias: gpu.upload(new Float32Array(f).fill(-0.5)), y: gpu.buffer(b * f * 4), rows: b, cols: f, act: 'relu' });
      gpu.submit([g, act]);
      const timings = await gpu.collectTimings();
      expect(timings.map((t) => t.label)).toEqual(['gather_rows', 'bias_act_relu']);
      for (const t of timings) {
        expect(Number.isFinite(t.ms), `${t.label}: ${t.ms} ms`).toBe(true);
        expect(t.ms, t.label).toBeGreaterThanOrEqual(0);
      }
      expect(gpu.timings).toEqual(timings);
      // A new window: nothing submitted since, nothing to report.
      expect(await gpu.collectTimings()).toEqual([]);
    } finally {
      gpu.destroy();
    }
  });
});

describe('pipeline cache', () => {
  test('preparing the same kernel twice compiles it once; other overrides compile one more', async () => {
    const gpu = await testGpu();
    const n = 4;
    const args = {
      data: gpu.upload(packBytes(new Uint8Array(n * n))),
      labels: gpu.upload(packBytes(new Uint8Array(n))),
      order: gpu.upload(Uint32Array.from({ length: n }, (_, i) => i)),
      orderLength: n,
      x: gpu.buffer(n * n * 4),
      y: gpu.buffer(n * 4),
      batch: n,
      features: n,
      count: n,
    };
    const spec = (kernel: Kernel) => ({ kernel, buffers: [args.data, args.labels, args.order, args.x, args.y], uniforms: gatherParams(args, 0), workgroups: [1] as const });

    const first = gpu.prepare(spec(gatherWith(16)));
    const size = gpu.pipelines.size;
    const second = gpu.prepare(spec(gatherWith(16)));
    expect(gpu.pipelines.size).toBe(size);
    expect(second.pipeline).toBe(first.pipeline);
    // Warming an already compiled kernel does not compile it again either.
    await gpu.pipelines.warm(gatherWith(16));
    expect(gpu.pipelines.size).toBe(size);

    const other = gpu.prepare(spec(gatherWith(8)));
    expect(gpu.pipelines.size).toBe(size + 1);
    expect(other.pipeline).not.toBe(first.pipeline);
  });
});

describe('WGSL compile errors', () => {
  test('warm() rejects with KernelCompileError naming the kernel and the line', async () => {
    const gpu = await Gpu.create();
    try {
      // Line 4 uses a name that is declared nowhere.
      const source = ['@group(0) @binding(0) var<storage, read_write> out: array<f32>;', '', '@compute @workgroup_size(1)', 'fn broken() { out[0] = undeclared_name; }', ''].join('\n');
      const kernel: Kernel = { name: 'broken_on_purpose', source, entryPoint: 'broken', bindings: ['storage'] };
      const err = await gpu.pipelines.warm(kernel).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(KernelCompileError);
      const message = (err as Error).message;
      expect(message).toContain('broken_on_purpose');
      expect(message).toMatch(/error at 4:\d+/);
      expect(message).toContain('undeclared_name');
      // A failed compile is not cached as a pipeline.
      expect(gpu.pipelines.size).toBe(0);
    } finally {
      gpu.destroy();
    }
  });
});
