// The matmul benchmark page: checks every numbered experiment in bench/experiments/matmul against
// the CPU reference, times it, then times the shipped kernels (client/gpu/ops/matmul.ts) against
// tfjs-backend-webgpu's tf.matMul on the comparison rows. bench/run.ts opens it and saves what
// window.__benchResult resolves to; nothing here writes files.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgpu';
import type { Kernel } from '../../client/gpu/kernel.ts';
import { chosenMatmulVariant, clearMatmulTuning, DEFAULT_TUNING_SHAPES, tuneMatmul } from '../../client/gpu/matmul-tuner.ts';
import { MATMUL_VARIANTS, matmul, type MatmulVariant } from '../../client/gpu/ops/matmul.ts';
import { Gpu } from '../../client/gpu/runtime.ts';
import { matmulRef } from '../../shared/reference/matmul.ts';
import { createRng, randomUniform } from '../../shared/rng.ts';
import { compare } from '../../test/helpers/check-op.ts';
import { timeInterleaved, type Timer } from './timing.ts';

const sources = import.meta.glob('../experiments/matmul/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;
const query = new URLSearchParams(location.search);
const list = (name: string, fallback: string): string[] => (query.get(name) ?? fallback).split(',').filter(Boolean);

const logEl = document.getElementById('log')!;
function log(line: string): void {
  console.log(line);
  logEl.textContent += `${line}\n`;
}

interface Experiment {
  id: string;
  name: string;
  source: string;
  wg: [number, number];
  block: [number, number];
  vec4: boolean;
}

/** Each experiment states how it is dispatched on a `// @bench wg=8x8 block=4x4 [vec4]` line. */
function experiments(): Experiment[] {
  return Object.entries(sources)
    .map(([path, source]) => {
      const file = path.split('/').pop()!.replace(/\.wgsl$/, '');
      const m = /@bench wg=(\d+)x(\d+) block=(\d+)x(\d+)( vec4)?/.exec(source);
      if (!m) throw new Error(`${file}: no @bench line`);
      return { id: file.slice(0, 2), name: file, source, wg: [+m[1], +m[2]], block: [+m[3], +m[4]], vec4: !!m[5] } as Experiment;
    })
    .sort((x, y) => x.name.localeCompare(y.name));
}

/** Median of `samples` per-op times in seconds, `inner` ops back to back per sample, one sync. */
interface Operands {
  a: Float32Array;
  b: Float32Array;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
}

function operands(m: number, n: number, k: number, transA = false, transB = false): Operands {
  const rng = createRng(m * 7919 + n * 104729 + k);
  return { a: randomUniform(rng, m * k), b: randomUniform(rng, k * n), m, n, k, transA, transB };
}

function tfjsTimer(o: Operands): Timer & { dispose: () => void } {
  const a = tf.tensor2d(o.a, o.transA ? [o.k, o.m] : [o.m, o.k]);
  const b = tf.tensor2d(o.b, o.transB ? [o.n, o.k] : [o.k, o.n]);
  return {
    run: async (inner) => {
      let c: tf.Tensor | undefined;
      for (let i = 0; i < inner; i++) {
        c?.dispose();
        c = tf.matMul(a, b, o.transA, o.transB);
      }
      const corner = tf.slice(c!, [0, 0], [1, 1]);
      await corner.data();
      corner.dispose();
      c!.dispose();
    },
    dispose: () => {
      a.dispose();
      b.dispose();
    },
  };
}

const gflops = (o: { m: number; n: number; k: number }, s: number): number => (2 * o.m * o.n * o.k) / s / 1e9;
const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;

/** `?wg=16x4` re-sizes the workgroup of experiments that declare WG_X and WG_Y overrides. */
function experimentKernel(e: Experiment): Kernel {
  const wg = /^(\d+)x(\d+)$/.exec(query.get('wg') ?? '');
  const overrides = wg && /override WG_X/.test(e.source) ? { WG_X: +wg[1], WG_Y: +wg[2] } : undefined;
  return { name: `matmul-exp-${e.name}`, source: e.source, entryPoint: 'main', bindings: ['read', 'read', 'storage', 'uniform'], overrides };
}

function workgroupSize(e: Experiment): [number, number] {
  const wg = /^(\d+)x(\d+)$/.exec(query.get('wg') ?? '');
  return wg && /override WG_X/.test(e.source) ? [+wg[1], +wg[2]] : e.wg;
}

async function runExperiment(gpu: Gpu, e: Experiment, o: Operands): Promise<{ run: Timer['run']; check: () => Promise<string | undefined>; dispose: () => void }> {
  const a = gpu.upload(o.a, 'a');
  const b = gpu.upload(o.b, 'b');
  const c = gpu.buffer(o.m * o.n * 4, 'c');
  const d = gpu.prepare({
    kernel: experimentKernel(e),
    buffers: [a, b, c],
    uniforms: new Uint32Array([o.m, o.n, o.k, 0]),
    workgroups: [Math.ceil(o.n / (workgroupSize(e)[0] * e.block[1])), Math.ceil(o.m / (workgroupSize(e)[1] * e.block[0]))],
  });
  return {
    run: async (inner) => {
      gpu.submit(Array<typeof d>(inner).fill(d));
      await gpu.sync();
    },
    check: async () => {
      gpu.submit([d]);
      const got = await gpu.read(c, o.m * o.n);
      const cmp = compare(got, matmulRef(o.a, o.b, o.m, o.n, o.k), { atol: 1e-4 * Math.sqrt(o.k), rtol: 1e-4 });
      return cmp.ok ? undefined : cmp.message;
    },
    dispose: () => [a, b, c].forEach((x) => x.destroy()),
  };
}

/** A shipped variant (client/gpu/ops/matmul.ts) on one shape, checked before it is timed. */
function shippedTimer(gpu: Gpu, o: Operands, variant?: MatmulVariant): Timer & { check: () => Promise<string | undefined>; variant: MatmulVariant; dispose: () => void } {
  const a = gpu.upload(o.a, 'a');
  const b = gpu.upload(o.b, 'b');
  const c = gpu.buffer(o.m * o.n * 4, 'c');
  const chosen = variant ?? chosenMatmulVariant(gpu, o.transA, o.transB);
  const d = matmul(gpu, { a, b, c, m: o.m, n: o.n, k: o.k, transA: o.transA, transB: o.transB, variant: chosen });
  return {
    variant: chosen,
    run: async (inner) => {
      gpu.submit(Array<typeof d>(inner).fill(d));
      await gpu.sync();
    },
    check: async () => {
      gpu.submit([d]);
      const got = await gpu.read(c, o.m * o.n);
      const cmp = compare(got, matmulRef(o.a, o.b, o.m, o.n, o.k, o.transA, o.transB), { atol: 2e-5 * Math.sqrt(o.k) + 1e-6, rtol: 1e-4 });
      return cmp.ok ? undefined : cmp.message;
    },
    dispose: () => [a, b, c].forEach((x) => x.destroy()),
  };
}

const layoutName = (o: { transA?: boolean; transB?: boolean }): string => `${o.transA ? 'T' : 'N'}${o.transB ? 'T' : 'N'}`;

/** ours vs tfjs on one shape, interleaved; `variant` defaults to the tuner's choice. */
async function compareWithTfjs(gpu: Gpu, o: Operands, samples: number, variant?: MatmulVariant): Promise<{ ours: number; tfjs: number; variant: MatmulVariant } | { error: string; variant: MatmulVariant }> {
  const ours = shippedTimer(gpu, o, variant);
  const err = await ours.check();
  if (err) {
    ours.dispose();
    return { error: err, variant: ours.variant };
  }
  const peer = tfjsTimer(o);
  const [t, tt] = await timeInterleaved([ours, peer], samples, 0.2, 64);
  ours.dispose();
  peer.dispose();
  return { ours: round(gflops(o, t)), tfjs: round(gflops(o, tt)), variant: ours.variant };
}

// The comparison rows: square sizes, then the MLP 784-128-10's training products at batch 64.
const ROWS: [number, number, number, boolean, boolean, string][] = [
  [256, 256, 256, false, false, 'square'],
  [512, 512, 512, false, false, 'square'],
  [1024, 1024, 1024, false, false, 'square'],
  [64, 128, 784, false, true, 'fc1 forward x·W1ᵀ'],
  [128, 784, 64, true, false, 'fc1 dW1 = dYᵀ·x'],
  [64, 784, 128, false, false, 'fc1 dx = dY·W1'],
  [64, 10, 128, false, true, 'fc2 forward h·W2ᵀ'],
  [10, 128, 64, true, false, 'fc2 dW2 = dYᵀ·h'],
  [64, 128, 10, false, false, 'fc2 dh = dY·W2'],
];

async function run(): Promise<unknown> {
  const gpu = await Gpu.create();
  const info = gpu.info;
  const adapter = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ');
  log(`adapter: ${adapter}`);
  await tf.setBackend('webgpu');
  await tf.ready();
  const samples = Number(query.get('reps') ?? 5);
  const results: Record<string, unknown>[] = [];

  // 1. Numbered experiments: each checked against the reference, then timed next to tfjs.
  const only = list('exp', '');
  const sizes = list('sizes', '512').map(Number);
  for (const e of experiments().filter((x) => only.length === 0 || only.includes(x.id))) {
    // Checked on an awkward shape first (vec4 experiments need K and N multiples of 4).
    const shape = e.vec4 ? operands(37, 44, 52) : operands(37, 43, 51);
    const probe = await runExperiment(gpu, e, shape);
    const err = await probe.check();
    probe.dispose();
    if (err) {
      log(`${e.name}: WRONG on ${shape.m}x${shape.n}x${shape.k}: ${err}`);
      results.push({ name: e.name, ok: false, error: err });
      continue;
    }
    for (const size of sizes) {
      const o = operands(size, size, size);
      const ours = await runExperiment(gpu, e, o);
      const err2 = await ours.check();
      if (err2) {
        log(`${e.name}: WRONG at ${size}: ${err2}`);
        results.push({ name: e.name, m: size, n: size, k: size, ok: false, error: err2 });
        ours.dispose();
        continue;
      }
      const peer = tfjsTimer(o);
      const [t, tt] = await timeInterleaved([ours, peer], samples, 0.2, 64);
      ours.dispose();
      peer.dispose();
      const row = { name: e.name, m: size, n: size, k: size, ok: true, gflops: round(gflops(o, t)), tfjs_gflops: round(gflops(o, tt)) };
      log(`${e.name} ${size}^3: ${row.gflops} GFLOP/s (tfjs ${row.tfjs_gflops}, ratio ${(row.gflops / row.tfjs_gflops).toFixed(2)})`);
      results.push(row);
    }
  }

  // 2. Every shipped variant in each training layout at one size.
  const variantSize = Number(query.get('variant-size') ?? 512);
  if (query.get('variants') !== '0') {
    for (const [transA, transB] of [[false, false], [true, false], [false, true]]) {
      for (const variant of MATMUL_VARIANTS) {
        const o = operands(variantSize, variantSize, variantSize, transA, transB);
        const r = await compareWithTfjs(gpu, o, samples, variant);
        const name = `shaders ${variant} ${layoutName(o)}`;
        if ('error' in r) {
          log(`${name}: WRONG: ${r.error}`);
          results.push({ name, ok: false, error: r.error });
        } else {
          log(`${name} ${variantSize}^3: ${r.ours} GFLOP/s (tfjs ${r.tfjs}, ratio ${(r.ours / r.tfjs).toFixed(2)})`);
          results.push({ name, m: variantSize, n: variantSize, k: variantSize, layout: layoutName(o), ok: true, gflops: r.ours, tfjs_gflops: r.tfjs });
        }
      }
    }
  }

  // 3. The rows: what matmul() runs by default once the tuner has chosen, against tf.matMul.
  const rows: Record<string, unknown>[] = [];
  if (query.get('rows') !== '0') {
    clearMatmulTuning();
    const t0 = performance.now();
    const choices = await tuneMatmul(gpu, [...DEFAULT_TUNING_SHAPES, { m: 256, n: 256, k: 256 }]);
    log(`tuner (${Math.round(performance.now() - t0)} ms): ${JSON.stringify(choices)}`);
    for (const [m, n, k, transA, transB, what] of ROWS) {
      const o = operands(m, n, k, transA, transB);
      const r = await compareWithTfjs(gpu, o, samples);
      if ('error' in r) throw new Error(`${what} ${m}x${n}x${k}: ${r.variant} is wrong: ${r.error}`);
      log(`${what} ${m}x${n}x${k} ${layoutName(o)}: ours ${r.ours} GFLOP/s (${r.variant}), tfjs ${r.tfjs}, ratio ${(r.ours / r.tfjs).toFixed(2)}`);
      rows.push({ m, n, k, layout: layoutName(o), what, ours_gflops: r.ours, tfjs_gflops: r.tfjs, variant: r.variant });
    }
  }
  gpu.destroy();
  return { adapter, rows, experiments: results };
}

(window as unknown as { __benchResult: Promise<unknown> }).__benchResult = run();
