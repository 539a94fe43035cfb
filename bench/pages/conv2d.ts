// The conv2d benchmark page: the shipped kernels (shaders/conv2d.wgsl, im2col + the shared matmul,
// through client/gpu/ops/conv2d.ts) against experiment 01 (direct kernels,
// bench/experiments/conv2d/) and tfjs-backend-webgpu's conv2d, on the MNIST CNN's two convolutions
// at batch 64. Every approach is checked against shared/layers' reference before it is timed.
// bench/run.ts opens it and saves what window.__benchResult resolves to; nothing here writes files.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import directSource from '../experiments/conv2d/01-direct.wgsl?raw';
import { linearWorkgroups, type Kernel } from '../../client/gpu/kernel.ts';
import { conv2d, conv2dBackward, conv2dDims, type Conv2dShape } from '../../client/gpu/ops/conv2d.ts';
import { Gpu, type Dispatch } from '../../client/gpu/runtime.ts';
import { layerKind } from '../../shared/layers/index.ts';
import { createRng, randomUniform } from '../../shared/rng.ts';
import { compare } from '../../test/helpers/check-op.ts';
import { timeInterleaved, type Timer } from './timing.ts';

const query = new URLSearchParams(location.search);
const logEl = document.getElementById('log')!;
function log(line: string): void {
  console.log(line);
  logEl.textContent += `${line}\n`;
}

interface Layer {
  name: string;
  shape: Conv2dShape;
  /** The first layer's input gradient is never needed. */
  needsDx: boolean;
}

const LAYERS: Layer[] = [
  { name: 'conv1 [1,28,28] -> 8 k5', shape: { batch: 64, channels: 1, height: 28, width: 28, out: 8, kernel: 5 }, needsDx: false },
  { name: 'conv2 [8,12,12] -> 16 k5', shape: { batch: 64, channels: 8, height: 12, width: 12, out: 16, kernel: 5 }, needsDx: true },
];
/** Checked first: odd sizes, stride and padding. */
const AWKWARD: Conv2dShape = { batch: 2, channels: 3, height: 7, width: 9, out: 5, kernel: 3, stride: 2, padding: 1 };

interface Data {
  x: Float32Array;
  w: Float32Array;
  b: Float32Array;
  dy: Float32Array;
}

function data(s: Conv2dShape): Data {
  const { ho, wo } = conv2dDims(s);
  const rng = createRng(s.channels * 100 + s.height);
  const bound = 1 / Math.sqrt(s.channels * s.kernel * s.kernel);
  return {
    x: randomUniform(rng, s.batch * s.channels * s.height * s.width),
    w: randomUniform(rng, s.out * s.channels * s.kernel * s.kernel, -bound, bound),
    b: randomUniform(rng, s.out, -bound, bound),
    dy: randomUniform(rng, s.batch * s.out * ho * wo),
  };
}

/** One approach's dispatches for the three passes, and where it leaves y, dx, dw, db. */
interface Built {
  forward: Dispatch[];
  input: Dispatch[];
  params: Dispatch[];
  out: { y: GPUBuffer; dx: GPUBuffer; dw: GPUBuffer; db: GPUBuffer };
}

function upload(gpu: Gpu, s: Conv2dShape, d: Data) {
  const { ho, wo } = conv2dDims(s);
  return {
    x: gpu.upload(d.x, 'x'),
    w: gpu.upload(d.w, 'w'),
    b: gpu.upload(d.b, 'b'),
    dy: gpu.upload(d.dy, 'dy'),
    y: gpu.buffer(s.batch * s.out * ho * wo * 4, 'y'),
    dx: gpu.buffer(d.x.byteLength, 'dx'),
    dw: gpu.buffer(d.w.byteLength, 'dw'),
    db: gpu.buffer(s.out * 4, 'db'),
  };
}

/** The shipped wrapper; the input-gradient pass repeats the layout change the weight gradient also makes. */
function buildShipped(gpu: Gpu, s: Conv2dShape, d: Data): Built {
  const u = upload(gpu, s, d);
  const { positions, taps } = conv2dDims(s);
  const cols = gpu.buffer(positions * taps * 4, 'cols');
  const rows = gpu.buffer(positions * s.out * 4, 'rows');
  const dcols = gpu.buffer(positions * taps * 4, 'dcols');
  const both = conv2dBackward(gpu, { ...s, dy: u.dy, cols, weight: u.w, dyRows: rows, dweight: u.dw, dbias: u.db, dx: u.dx, dcols });
  const params = both.slice(0, 3);
  return {
    forward: conv2d(gpu, { ...s, x: u.x, weight: u.w, bias: u.b, cols, rows, y: u.y }),
    input: [params[0], ...both.slice(3)],
    params,
    out: { y: u.y, dx: u.dx, dw: u.dw, db: u.db },
  };
}

function directKernel(entryPoint: string, bindings: Kernel['bindings'], overrides: Record<string, number>): Kernel {
  return { name: `conv-exp-01-${entryPoint}`, source: directSource, entryPoint, bindings, overrides };
}

/** Experiment 01, dispatched as its header says: 4 channels x PX columns per invocation. */
function buildDirect(gpu: Gpu, s: Conv2dShape, d: Data): Built {
  const u = upload(gpu, s, d);
  const { ho, wo, stride, padding, taps } = conv2dDims(s);
  const uniforms = new Uint32Array([s.batch, s.channels, s.height, s.width, s.out, s.kernel, stride, padding, ho, wo]);
  const PX = 4;
  const cells = (n: number, blocks: number): [number, number, number] => {
    const [x, y] = linearWorkgroups(n, 64);
    return [x, y, blocks];
  };
  return {
    forward: [
      gpu.prepare({
        kernel: directKernel('conv2d', ['uniform', 'read', 'read', 'read', 'storage'], { WG: 64, PX }),
        buffers: [u.x, u.w, u.b, u.y],
        uniforms,
        workgroups: cells(s.batch * ho * Math.ceil(wo / PX), Math.ceil(s.out / 4)),
      }),
    ],
    input: [
      gpu.prepare({
        kernel: directKernel('conv2d_backward_input', ['uniform', 'read', 'read', 'storage'], { WG: 64, PX }),
        buffers: [u.dy, u.w, u.dx],
        uniforms,
        workgroups: cells(s.batch * s.height * Math.ceil(s.width / PX), Math.ceil(s.channels / 4)),
      }),
    ],
    params: [
      gpu.prepare({
        kernel: directKernel('conv2d_backward_weight', ['uniform', 'read', 'read', 'storage'], { WG: 64, ACCUMULATE: 0 }),
        buffers: [u.dy, u.x, u.dw],
        uniforms,
        workgroups: linearWorkgroups(Math.ceil(s.out / 4) * taps, 1),
      }),
      gpu.prepare({
        kernel: directKernel('conv2d_backward_bias', ['uniform', 'read', 'storage'], { WG: 64, ACCUMULATE: 0 }),
        buffers: [u.dy, u.db],
        uniforms,
        workgroups: linearWorkgroups(s.out, 1),
      }),
    ],
    out: { y: u.y, dx: u.dx, dw: u.dw, db: u.db },
  };
}

/** Runs forward, input and params once and compares with the reference; undefined when all match. */
async function check(gpu: Gpu, s: Conv2dShape, d: Data, b: Built): Promise<string | undefined> {
  gpu.submit([...b.forward, ...b.input, ...b.params]);
  const kind = layerKind('conv2d');
  const cfg = { kind: 'conv2d', out: s.out, kernel: s.kernel, stride: s.stride ?? 1, padding: s.padding ?? 0 };
  const inShape = [s.channels, s.height, s.width];
  const f = kind.forward(cfg, inShape, [d.w, d.b], d.x, s.batch);
  const g = kind.backward(cfg, inShape, [d.w, d.b], f.cache, d.dy, s.batch);
  const { ho, wo } = conv2dDims(s);
  const tol = { atol: 2e-6 * Math.sqrt(s.batch * ho * wo) + 1e-5, rtol: 1e-4 };
  const pairs: [string, GPUBuffer, Float32Array][] = [['y', b.out.y, f.y], ['dx', b.out.dx, g.dx], ['dw', b.out.dw, g.dp[0]], ['db', b.out.db, g.dp[1]]];
  for (const [name, buf, want] of pairs) {
    const c = compare(await gpu.read(buf, want.length), want, tol);
    if (!c.ok) return `${name}: ${c.message}`;
  }
  return undefined;
}

function timer(gpu: Gpu, dispatches: Dispatch[]): Timer {
  return {
    run: async (inner) => {
      for (let i = 0; i < inner; i++) gpu.submit(dispatches);
      await gpu.sync();
    },
  };
}

/** tfjs's conv2d (NHWC, the layout it is built for) forward, and one training step's gradients. */
function tfjsTimers(s: Conv2dShape, d: Data): { forward: Timer; step: Timer; dispose: () => void } {
  const { ho, wo } = conv2dDims(s);
  const x = tf.tensor4d(d.x, [s.batch, s.height, s.width, s.channels]);
  const w = tf.tensor4d(d.w, [s.kernel, s.kernel, s.channels, s.out]);
  const dy = tf.tensor4d(d.dy, [s.batch, ho, wo, s.out]);
  const grads = tf.grads((xi: tf.Tensor, wi: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(xi as tf.Tensor4D, wi as tf.Tensor4D, s.stride ?? 1, 'valid'), dy)));
  const settle = async (t: tf.Tensor) => {
    const flat = tf.reshape(t, [-1]);
    const one = tf.slice(flat, [0], [1]);
    await one.data();
    tf.dispose([flat, one]);
  };
  return {
    forward: {
      run: async (inner) => {
        let y: tf.Tensor | undefined;
        for (let i = 0; i < inner; i++) {
          y?.dispose();
          y = tf.conv2d(x, w, s.stride ?? 1, 'valid');
        }
        await settle(y!);
        y!.dispose();
      },
    },
    step: {
      run: async (inner) => {
        let out: tf.Tensor[] = [];
        for (let i = 0; i < inner; i++) {
          tf.dispose(out);
          out = tf.tidy(() => grads([x, w]));
        }
        await settle(out[1]);
        tf.dispose(out);
      },
    },
    dispose: () => tf.dispose([x, w, dy]),
  };
}

const round = (v: number, d = 3): number => Math.round(v * 10 ** d) / 10 ** d;

async function run(): Promise<unknown> {
  const gpu = await Gpu.create();
  const info = gpu.info;
  const adapter = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ');
  log(`adapter: ${adapter}`);
  const samples = Number(query.get('reps') ?? 5);
  const withTfjs = query.get('tfjs') !== '0';
  if (withTfjs) {
    await tf.setBackend('webgpu');
    await tf.ready();
  }
  const approaches: { name: string; build: (s: Conv2dShape, d: Data) => Built }[] = [
    { name: 'shipped: im2col + matmul', build: (s, d) => buildShipped(gpu, s, d) },
    { name: '01-direct', build: (s, d) => buildDirect(gpu, s, d) },
  ];

  for (const a of approaches) {
    const err = await check(gpu, AWKWARD, data(AWKWARD), a.build(AWKWARD, data(AWKWARD)));
    if (err) throw new Error(`${a.name} is wrong on the awkward shape: ${err}`);
  }

  const rows: Record<string, unknown>[] = [];
  for (const layer of LAYERS) {
    const s = layer.shape;
    const d = data(s);
    const { ho, wo } = conv2dDims(s);
    const flops = 2 * s.batch * s.out * ho * wo * s.channels * s.kernel * s.kernel;
    const built = approaches.map((a) => ({ name: a.name, b: a.build(s, d) }));
    for (const { name, b } of built) {
      const err = await check(gpu, s, d, b);
      if (err) throw new Error(`${name} is wrong on ${layer.name}: ${err}`);
    }
    // Per pass, and one training step: forward, the weight gradient, and the input gradient where a layer needs it.
    const passes: [string, (b: Built) => Dispatch[], number][] = [
      ['forward', (b) => b.forward, flops],
      ['input gradient', (b) => b.input, flops],
      ['weight gradient', (b) => b.params, flops],
      ['step', (b) => [...b.forward, ...(layer.needsDx ? b.input : []), ...b.params], flops * (layer.needsDx ? 3 : 2)],
    ];
    const tfjs = withTfjs ? tfjsTimers(s, d) : undefined;
    for (const [pass, pick, f] of passes) {
      const timers = built.map(({ b }) => timer(gpu, pick(b)));
      const peer = pass === 'forward' ? tfjs?.forward : pass === 'step' ? tfjs?.step : undefined;
      const secs = await timeInterleaved(peer ? [...timers, peer] : timers, samples, 0.3, 32);
      const row: Record<string, unknown> = { layer: layer.name, pass };
      built.forEach(({ name }, i) => {
        row[name] = { ms: round(secs[i] * 1e3, 2), gflops: round(f / secs[i] / 1e9) };
      });
      // tfjs's step always computes dx too, and its forward again: its GFLOP/s counts 3 passes.
      if (peer) row['tfjs-webgpu conv2d'] = { ms: round(secs[secs.length - 1] * 1e3, 2), gflops: round((pass === 'step' ? 3 * flops : flops) / secs[secs.length - 1] / 1e9) };
      log(`${layer.name} ${pass}: ${JSON.stringify(row)}`);
      rows.push(row);
    }
    tfjs?.dispose();
  }
  gpu.destroy();
  return { adapter, rows };
}

(window as unknown as { __benchResult: Promise<unknown> }).__benchResult = run();
