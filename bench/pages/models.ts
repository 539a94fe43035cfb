// The models benchmark page: one training step of the MNIST CNN and of a small character
// transformer on crowdtrain's WebGPU layer executor and its CPU layer backend, against the same
// architecture on tfjs (tf.layers for the CNN, tf ops for the transformer) with its webgpu and cpu
// backends; and our convolution passes against tfjs's conv2d kernels on the CNN's shapes. All in
// this page, timed interleaved, medians. bench/run.ts saves what window.__benchResult resolves to.
//
// A timed step is what a worker does for a task: the batch goes in, forward, loss, backward, and
// the loss and every parameter gradient come back to JavaScript as numbers. No optimizer update:
// workers never apply one (the coordinator steps the optimizer), so no trainer here does either.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import attentionExp01 from '../experiments/attention/01-channel-per-invocation.wgsl?raw';
import embeddingExp01 from '../experiments/embedding/01-channel-per-invocation.wgsl?raw';
import { linearWorkgroups } from '../../client/gpu/kernel.ts';
import { attentionCore, attentionCoreBackward } from '../../client/gpu/ops/attention.ts';
import { conv2d, conv2dBackward, conv2dDims, type Conv2dShape } from '../../client/gpu/ops/conv2d.ts';
import { embeddingBackward } from '../../client/gpu/ops/embedding.ts';
import { softmaxCrossEntropy, type SoftmaxCeLayout } from '../../client/gpu/ops/softmax-ce.ts';
import { Gpu, type Dispatch } from '../../client/gpu/runtime.ts';
import { LayerCpuBackend, type GradientBackend } from '../../client/worker/backend.ts';
import { LayerGpuBackend } from '../../client/worker/webgpu-backend.ts';
import { describeModel, expandLayers, initModelParams, type LayerConfig, type ModelDescription } from '../../shared/layers/index.ts';
import { attentionCore as attentionCoreRef } from '../../shared/layers/attention.ts';
import { softmaxCrossEntropyRef } from '../../shared/reference/softmax-ce.ts';
import { createRng, randomUniform } from '../../shared/rng.ts';
import { compare } from '../../test/helpers/check-op.ts';
import { median, timeInterleaved, type Timer } from './timing.ts';

const query = new URLSearchParams(location.search);
const REPS = Number(query.get('reps') ?? 5);
const SECONDS = Number(query.get('seconds') ?? 1);
const ONLY = (query.get('only') ?? 'cnn,transformer,conv').split(',');
const PROFILE = query.get('profile') === '1';
const EXPERIMENTS = query.get('experiments') === '1';

const logEl = document.getElementById('log')!;
function log(line: string): void {
  console.log(line);
  logEl.textContent += `${line}\n`;
}

const CNN_BATCH = 64;
const CNN_LAYERS: LayerConfig[] = [
  { kind: 'conv2d', out: 8, kernel: 5 },
  { kind: 'relu' },
  { kind: 'maxpool2d', size: 2 },
  { kind: 'conv2d', out: 16, kernel: 5 },
  { kind: 'relu' },
  { kind: 'maxpool2d', size: 2 },
  { kind: 'flatten' },
  { kind: 'dense', out: 10 },
];

const VOCAB = 83;
const CTX = 64;
const WIDTH = 64;
const HEADS = 4;
const BLOCKS = 2;
const TF_BATCH = 32;
const TF_LAYERS: LayerConfig[] = expandLayers([
  { kind: 'embedding', vocab: VOCAB, dim: WIDTH },
  { kind: 'positional' },
  ...Array.from({ length: BLOCKS }, () => ({ kind: 'transformer-block', heads: HEADS, width: WIDTH })),
  { kind: 'layernorm' },
  { kind: 'dense', out: VOCAB },
]);

/** One step's input and labels, and the model's initial parameters (the same for every trainer). */
interface Workload {
  name: string;
  model: ModelDescription;
  params: Float32Array;
  x: Float32Array;
  labels: Int32Array;
  batch: number;
  /** Examples (CNN) or tokens (transformer) one step trains on. */
  perStep: number;
}

/** A trainer of one workload: `step()` resolves to the loss after the gradients are in JavaScript. */
interface Trainer {
  name: string;
  step: () => Promise<{ loss: number; grads: Float32Array }>;
  dispose: () => void;
}

function cnnWorkload(): Workload {
  const model = describeModel(CNN_LAYERS, [1, 28, 28]);
  const rng = createRng(7);
  const labels = Int32Array.from({ length: CNN_BATCH }, () => Math.floor(rng.uniform(0, 10)));
  return { name: 'cnn', model, params: initModelParams(model, 1), x: randomUniform(rng, CNN_BATCH * 784, 0, 1), labels, batch: CNN_BATCH, perStep: CNN_BATCH };
}

function transformerWorkload(): Workload {
  const model = describeModel(TF_LAYERS, [CTX]);
  const rng = createRng(8);
  const text = Int32Array.from({ length: TF_BATCH * CTX + 1 }, () => Math.floor(rng.uniform(0, VOCAB)));
  const x = Float32Array.from(text.subarray(0, TF_BATCH * CTX));
  return { name: 'transformer', model, params: initModelParams(model, 1), x, labels: text.slice(1), batch: TF_BATCH, perStep: TF_BATCH * CTX };
}

/** Our GradientBackend (what a worker computes a task with) as a trainer. */
function oursTrainer(name: string, backend: GradientBackend, w: Workload): Trainer {
  backend.setParams(w.params);
  return { name, step: () => backend.gradients(w.x, w.labels, w.batch), dispose: () => backend.dispose() };
}

/** The loss and the gradients of `vars`, all brought to JavaScript as one flat array (one readback). */
async function tfjsStep(backend: string, vars: tf.Variable[], loss: () => tf.Scalar): Promise<{ loss: number; grads: Float32Array }> {
  await tf.setBackend(backend);
  const [value, flat] = tf.tidy(() => {
    const g = tf.variableGrads(loss, vars);
    return [g.value, tf.concat(vars.map((v) => tf.reshape(g.grads[v.name], [-1])))];
  });
  const grads = (await flat.data()) as Float32Array;
  const l = (await value.data())[0];
  tf.dispose([value, flat]);
  return { loss: l, grads };
}

/**
 * tf.layers' CNN on `backend`, channels last (its native layout; the input has one channel, so
 * the same numbers), with our initial weights transposed into tfjs's layouts. Its gradient comes
 * back in tfjs's weight order and layouts (the sizes match ours).
 */
async function tfjsCnn(backend: string, w: Workload): Promise<Trainer> {
  await tf.setBackend(backend);
  await tf.ready();
  const p = w.params;
  const at = (name: string) => w.model.layers.flatMap((l) => l.params).find((q) => q.name === name)!;
  const slice = (name: string) => p.subarray(at(name).offset, at(name).offset + at(name).size);
  const convKernel = (name: string, o: number, c: number, k: number) => tf.tidy(() => tf.transpose(tf.tensor4d(slice(name), [o, c, k, k]), [2, 3, 1, 0]));
  // Our dense reads the flattened [16, 4, 4] (c, h, w); tfjs flattens [4, 4, 16] (h, w, c).
  const dense = new Float32Array(256 * 10);
  const dw = slice('7.weight');
  for (let o = 0; o < 10; o++) for (let c = 0; c < 16; c++) for (let h = 0; h < 4; h++) for (let x = 0; x < 4; x++) dense[((h * 4 + x) * 16 + c) * 10 + o] = dw[o * 256 + c * 16 + h * 4 + x];
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 8, kernelSize: 5, activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 16, kernelSize: 5, activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 10 }),
    ],
  });
  const init = [convKernel('0.weight', 8, 1, 5), tf.tensor1d(slice('0.bias')), convKernel('3.weight', 16, 8, 5), tf.tensor1d(slice('3.bias')), tf.tensor2d(dense, [256, 10]), tf.tensor1d(slice('7.bias'))];
  model.setWeights(init);
  tf.dispose(init);
  const x = tf.tensor4d(w.x, [w.batch, 28, 28, 1]);
  const y = tf.oneHot(tf.tensor1d(w.labels, 'int32'), 10);
  const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
  const loss = () => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar;
  return { name: `tfjs ${backend}`, step: () => tfjsStep(backend, vars, loss), dispose: () => (tf.dispose([x, y]), model.dispose()) };
}

/**
 * The transformer in tf ops on `backend`, the layers as shared/layers/shorthand.ts expands them:
 * embedding, positional, per block x + attn(ln(x)) (causal, 4 heads, output projection) and
 * x + W2·gelu(W1·ln(x)) (tanh GELU, hidden 4C), final layernorm, dense to the vocabulary; the mean
 * softmax cross-entropy over every position. Weights are ours, in our (PyTorch) layouts.
 */
async function tfjsTransformer(backend: string, w: Workload): Promise<Trainer> {
  await tf.setBackend(backend);
  await tf.ready();
  const vars: tf.Variable[] = [];
  for (const l of w.model.layers) for (const q of l.params) vars.push(tf.variable(tf.tensor(w.params.subarray(q.offset, q.offset + q.size), q.shape), true, `${backend}/${q.name}`));
  let next = 0;
  const take = () => vars[next++];
  const [emb, pos] = [take(), take()];
  const blocks = Array.from({ length: BLOCKS }, () => ({ ln1: [take(), take()], inW: take(), inB: take(), outW: take(), outB: take(), ln2: [take(), take()], w1: take(), b1: take(), w2: take(), b2: take() }));
  const lnF = [take(), take()];
  const [headW, headB] = [take(), take()];
  const B = w.batch;
  const T = CTX;
  const C = WIDTH;
  const D = C / HEADS;
  const rows = B * T;
  const tokens = tf.tensor1d(Int32Array.from(w.x), 'int32');
  const y = tf.oneHot(tf.tensor1d(w.labels, 'int32'), VOCAB);
  // -1e9 above the diagonal: position i attends to 0..i.
  const mask = tf.tensor2d(Float32Array.from({ length: T * T }, (_, k) => (k % T > Math.floor(k / T) ? -1e9 : 0)), [T, T]);
  const linear = (x: tf.Tensor2D, wt: tf.Tensor, b: tf.Tensor) => tf.add(tf.matMul(x, wt as tf.Tensor2D, false, true), b) as tf.Tensor2D;
  const layerNorm = (x: tf.Tensor2D, [g, b]: tf.Tensor[]) => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), g), b) as tf.Tensor2D;
  };
  const gelu = (x: tf.Tensor) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3)))))));
  /** [B·T, C] → [B, H, T, D] */
  const heads = (x: tf.Tensor) => tf.transpose(tf.reshape(x, [B, T, HEADS, D]), [0, 2, 1, 3]);
  const loss = () => {
    let h = tf.reshape(tf.add(tf.reshape(tf.gather(emb, tokens), [B, T, C]), pos), [rows, C]) as tf.Tensor2D;
    for (const b of blocks) {
      const qkv = linear(layerNorm(h, b.ln1), b.inW, b.inB);
      const [q, k, v] = tf.split(qkv, 3, 1).map(heads);
      const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(D)), mask);
      const o = tf.reshape(tf.transpose(tf.matMul(tf.softmax(scores), v), [0, 2, 1, 3]), [rows, C]) as tf.Tensor2D;
      h = tf.add(h, linear(o, b.outW, b.outB));
      h = tf.add(h, linear(gelu(linear(layerNorm(h, b.ln2), b.w1, b.b1)) as tf.Tensor2D, b.w2, b.b2));
    }
    return tf.losses.softmaxCrossEntropy(y, linear(layerNorm(h, lnF), headW, headB)) as tf.Scalar;
  };
  return { name: `tfjs ${backend}`, step: () => tfjsStep(backend, vars, loss), dispose: () => tf.dispose([...vars, tokens, y, mask]) };
}

const round = (v: number, d = 3): number => Math.round(v * 10 ** d) / 10 ** d;

/** Every trainer's loss on the same weights and batch must agree: the architectures are the same. */
async function checkLosses(w: Workload, trainers: Trainer[]): Promise<void> {
  const losses: number[] = [];
  for (const t of trainers) losses.push((await t.step()).loss);
  log(`${w.name}: first-step loss ${trainers.map((t, i) => `${t.name} ${losses[i].toFixed(6)}`).join(', ')}`);
  for (let i = 1; i < losses.length; i++) {
    if (!(Math.abs(losses[i] - losses[0]) <= 1e-4 * Math.abs(losses[0]))) throw new Error(`${w.name}: ${trainers[i].name}'s loss ${losses[i]} differs from ${trainers[0].name}'s ${losses[0]}: not the same model`);
  }
}

/**
 * Per-kernel GPU time of a step of our executor, the median over 5 profiled steps (a separate
 * profiled device: one pass per dispatch).
 */
async function profileOurs(w: Workload): Promise<Record<string, number>> {
  const gpu = await Gpu.create({ profile: true });
  const backend = new LayerGpuBackend(gpu, w.model, w.batch);
  backend.setParams(w.params);
  await backend.gradients(w.x, w.labels, w.batch);
  await gpu.collectTimings();
  const steps: Record<string, number>[] = [];
  let dispatches = 0;
  for (let i = 0; i < 5; i++) {
    await backend.gradients(w.x, w.labels, w.batch);
    const timings = await gpu.collectTimings();
    dispatches = timings.length;
    const byLabel: Record<string, number> = {};
    for (const t of timings) byLabel[t.label] = (byLabel[t.label] ?? 0) + t.ms;
    steps.push(byLabel);
  }
  const byLabel = Object.fromEntries(Object.keys(steps[0]).map((k) => [k, round(median(steps.map((s) => s[k] ?? 0)), 3)]));
  const total = Object.values(byLabel).reduce((a, b) => a + b, 0);
  log(`${w.name} profile: ${dispatches} dispatches, ${total.toFixed(2)} ms of GPU time (medians of 5 steps); ${JSON.stringify(Object.entries(byLabel).sort((a, b) => b[1] - a[1]))}`);
  backend.dispose();
  gpu.destroy();
  return byLabel;
}

async function modelRows(gpu: Gpu, w: Workload, tfjs: (backend: string, w: Workload) => Promise<Trainer>, unit: string): Promise<Record<string, unknown>[]> {
  const trainers = [
    oursTrainer('ours webgpu', new LayerGpuBackend(gpu, w.model, w.batch), w),
    oursTrainer('ours cpu', new LayerCpuBackend(w.model, w.batch), w),
    await tfjs('webgpu', w),
    await tfjs('cpu', w),
  ];
  await checkLosses(w, trainers);
  const timers: Timer[] = trainers.map((t) => ({
    run: async (inner) => {
      for (let i = 0; i < inner; i++) await t.step();
    },
  }));
  const secs = await timeInterleaved(timers, REPS, SECONDS, 64);
  const rate = secs.map((s) => round(w.perStep / s, 1));
  const [oursGpu, oursCpu, tfGpu, tfCpu] = rate;
  const ours = Math.max(oursGpu, oursCpu);
  log(`${w.name} ${unit}: ours webgpu ${oursGpu}, ours cpu ${oursCpu}, tfjs webgpu ${tfGpu}, tfjs cpu ${tfCpu}; ours / faster tfjs ${(ours / Math.max(tfGpu, tfCpu)).toFixed(2)}x`);
  for (const t of trainers) t.dispose();
  return [
    {
      model: w.name === 'cnn' ? `CNN [1,28,28] conv8k5-pool-conv16k5-pool-dense10, batch ${w.batch}` : `transformer ${VOCAB}→${WIDTH}, ${BLOCKS} blocks × ${HEADS} heads, ${CTX} tokens × ${w.batch} windows`,
      unit,
      ours,
      ours_backend: oursGpu >= oursCpu ? 'webgpu' : 'cpu',
      ours_webgpu: oursGpu,
      ours_cpu: oursCpu,
      tfjs_webgpu: tfGpu,
      tfjs_cpu: tfCpu,
      step_ms: Object.fromEntries(trainers.map((t, i) => [t.name, round(secs[i] * 1e3, 2)])),
    },
  ];
}

interface ConvLayer {
  name: string;
  shape: Conv2dShape;
  needsDx: boolean;
}

const CONV_LAYERS: ConvLayer[] = [
  { name: 'conv1 [1,28,28]→8 k5', shape: { batch: CNN_BATCH, channels: 1, height: 28, width: 28, out: 8, kernel: 5 }, needsDx: false },
  { name: 'conv2 [8,12,12]→16 k5', shape: { batch: CNN_BATCH, channels: 8, height: 12, width: 12, out: 16, kernel: 5 }, needsDx: true },
];

/** Our three passes (the executor's dispatches for them) on one shape. */
function ourConv(gpu: Gpu, s: Conv2dShape, x: Float32Array, w: Float32Array, dy: Float32Array) {
  const { ho, wo, positions, taps } = conv2dDims(s);
  const buf = (n: number, label: string) => gpu.buffer(n * 4, label);
  const bx = gpu.upload(x, 'x');
  const bw = gpu.upload(w, 'w');
  const bdy = gpu.upload(dy, 'dy');
  const cols = buf(positions * taps, 'cols');
  const rows = buf(positions * s.out, 'rows');
  const both = conv2dBackward(gpu, { ...s, dy: bdy, cols, weight: bw, dyRows: rows, dweight: buf(w.length, 'dw'), dbias: buf(s.out, 'db'), dx: buf(x.length, 'dx'), dcols: buf(positions * taps, 'dcols') });
  const forward = conv2d(gpu, { ...s, x: bx, weight: bw, bias: buf(s.out, 'b'), cols, rows, y: buf(s.batch * s.out * ho * wo, 'y') });
  // conv2dBackward: the dy layout change, the weight and bias gradients, then the input gradient (which reuses the layout change).
  return { forward, weight: both.slice(0, 3), input: [both[0], ...both.slice(3)], destroy: () => [bx, bw, bdy, cols, rows].forEach((b) => b.destroy()) };
}

function gpuTimer(gpu: Gpu, dispatches: Dispatch[]): Timer {
  return {
    run: async (inner) => {
      for (let i = 0; i < inner; i++) gpu.submit(dispatches);
      await gpu.sync();
    },
  };
}

/** tfjs's kernels for the three passes (NHWC), through the engine as its gradients call them. */
async function tfjsConv(backend: string, s: Conv2dShape, x: Float32Array, w: Float32Array, dy: Float32Array) {
  await tf.setBackend(backend);
  await tf.ready();
  const { ho, wo } = conv2dDims(s);
  const tx = tf.tensor4d(x, [s.batch, s.channels, s.height, s.width]).transpose([0, 2, 3, 1]) as tf.Tensor4D;
  const tw = tf.tensor4d(w, [s.out, s.channels, s.kernel, s.kernel]).transpose([2, 3, 1, 0]) as tf.Tensor4D;
  const tdy = tf.tensor4d(dy, [s.batch, s.out, ho, wo]).transpose([0, 2, 3, 1]) as tf.Tensor4D;
  const attrs = { strides: 1, pad: 'valid', dataFormat: 'NHWC', dimRoundingMode: undefined };
  const timer = (op: () => tf.Tensor): Timer => ({
    run: async (inner) => {
      await tf.setBackend(backend);
      let out: tf.Tensor | undefined;
      for (let i = 0; i < inner; i++) {
        out?.dispose();
        out = op();
      }
      // One value back: waits for the work without timing a full readback.
      const one = tf.tidy(() => tf.slice(tf.reshape(out!, [-1]), [0], [1]));
      await one.data();
      tf.dispose([one, out!]);
    },
  });
  return {
    forward: timer(() => tf.conv2d(tx, tw, 1, 'valid')),
    weight: timer(() => tf.engine().runKernel('Conv2DBackpropFilter', { x: tx, dy: tdy }, { ...attrs, filterShape: tw.shape } as never) as tf.Tensor),
    input: timer(() => tf.engine().runKernel('Conv2DBackpropInput', { dy: tdy, filter: tw }, { ...attrs, inputShape: tx.shape } as never) as tf.Tensor),
    dispose: () => tf.dispose([tx, tw, tdy]),
  };
}

async function convRows(gpu: Gpu): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  for (const layer of CONV_LAYERS) {
    const s = layer.shape;
    const { ho, wo } = conv2dDims(s);
    const rng = createRng(s.channels * 100 + s.height);
    const x = randomUniform(rng, s.batch * s.channels * s.height * s.width);
    const w = randomUniform(rng, s.out * s.channels * s.kernel * s.kernel, -0.2, 0.2);
    const dy = randomUniform(rng, s.batch * s.out * ho * wo);
    const flops = 2 * s.batch * s.out * ho * wo * s.channels * s.kernel * s.kernel;
    const ours = ourConv(gpu, s, x, w, dy);
    const tGpu = await tfjsConv('webgpu', s, x, w, dy);
    const tCpu = await tfjsConv('cpu', s, x, w, dy);
    const passes: ['forward' | 'weight' | 'input', string][] = [
      ['forward', 'forward'],
      ['weight', 'weight gradient'],
      ...(layer.needsDx ? ([['input', 'input gradient']] as ['input', string][]) : []),
    ];
    for (const [pass, label] of passes) {
      const secs = await timeInterleaved([gpuTimer(gpu, ours[pass]), tGpu[pass], tCpu[pass]], REPS, SECONDS / 4, 64);
      const [o, g, c] = secs.map((t) => round(flops / t / 1e9));
      log(`${layer.name} ${label} GFLOP/s: ours ${o}, tfjs webgpu ${g}, tfjs cpu ${c}`);
      rows.push({ model: `${layer.name} ${label}, batch ${s.batch}`, unit: 'GFLOP/s', ours: o, tfjs_webgpu: g, tfjs_cpu: c });
    }
    ours.destroy();
    tGpu.dispose();
    tCpu.dispose();
  }
  return rows;
}

/**
 * Kernel experiments on the models' shapes (bench/experiments/softmax-ce, embedding): each
 * variant checked against the reference, then timed interleaved with the shipped kernel.
 */
async function experimentRows(gpu: Gpu): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  const time = async (name: string, variants: [string, Dispatch][]) => {
    const secs = await timeInterleaved(variants.map(([, d]) => gpuTimer(gpu, [d])), REPS, SECONDS / 4, 256);
    const row = { experiment: name, ms: Object.fromEntries(variants.map(([v], i) => [v, round(secs[i] * 1e3, 3)])), slower_than_shipped: round(secs[0] / secs[secs.length - 1], 2) };
    log(`experiment ${name}: ${JSON.stringify(row)}`);
    rows.push(row);
  };
  const tol = { atol: 1e-6, rtol: 1e-4 };
  for (const [r, v] of [[TF_BATCH * CTX, VOCAB], [CNN_BATCH, 10]]) {
    const rng = createRng(r + v);
    const host = randomUniform(rng, r * v, -4, 4);
    const logits = gpu.upload(host, 'logits');
    const labels = Uint32Array.from({ length: r }, () => Math.floor(rng.uniform(0, v)));
    const ref = softmaxCrossEntropyRef(host, labels, r, v);
    const variants: [string, Dispatch][] = [];
    for (const layout of ['workgroup-per-row', 'invocation-per-row'] as SoftmaxCeLayout[]) {
      const loss = gpu.buffer(r * 4, 'loss');
      const dlogits = gpu.buffer(r * v * 4, 'dlogits');
      const d = softmaxCrossEntropy(gpu, { logits, labels: gpu.upload(labels, 'labels'), loss, dlogits, rows: r, classes: v, layout });
      gpu.submit([d]);
      const c = compare(await gpu.read(dlogits), ref.dlogits, tol);
      if (!c.ok) throw new Error(`softmax-ce ${layout}: ${c.message}`);
      variants.push([layout === 'workgroup-per-row' ? '01-workgroup-per-row' : '02-invocation-per-row (shipped)', d]);
    }
    await time(`softmax-ce ${r} rows × ${v} classes`, variants);
  }
  {
    const n = TF_BATCH * CTX;
    const rng = createRng(3);
    const idsHost = Float32Array.from({ length: n }, () => Math.floor(rng.uniform(0, VOCAB)));
    const dyHost = randomUniform(rng, n * WIDTH);
    const want = new Float32Array(VOCAB * WIDTH);
    for (let i = 0; i < n; i++) for (let k = 0; k < WIDTH; k++) want[idsHost[i] * WIDTH + k] += dyHost[i * WIDTH + k];
    const ids = gpu.upload(idsHost, 'ids');
    const dy = gpu.upload(dyHost, 'dy');
    const shape = { positions: n, dim: WIDTH, vocab: VOCAB };
    const out = [gpu.buffer(want.byteLength, 'dw-01'), gpu.buffer(want.byteLength, 'dw-02')];
    const exp01 = gpu.prepare({
      kernel: { name: 'embedding-exp-01', source: embeddingExp01, entryPoint: 'embedding_backward', bindings: ['uniform', 'read', 'read', 'storage'], overrides: { WG: 64, ACCUMULATE: 0 } },
      buffers: [ids, dy, out[0]],
      uniforms: new Uint32Array([n, WIDTH, VOCAB]),
      workgroups: linearWorkgroups(VOCAB * WIDTH, 64),
    });
    const shipped = embeddingBackward(gpu, { ...shape, ids, dy, dweight: out[1] });
    gpu.submit([exp01, shipped]);
    for (const b of out) {
      const c = compare(await gpu.read(b), want, { atol: 1e-4, rtol: 1e-4 });
      if (!c.ok) throw new Error(`embedding backward: ${c.message}`);
    }
    await time(`embedding backward ${n} tokens, V ${VOCAB}, D ${WIDTH}`, [['01-channel-per-invocation', exp01], ['02-four-channels (shipped)', shipped]]);
  }
  {
    // attention_values against the reference; attention_backward_qkv against experiment 01 (the kernel it replaces, which test/attention checked).
    const shape = { batch: TF_BATCH, t: CTX, c: WIDTH, heads: HEADS };
    const rng = createRng(4);
    const qkvHost = randomUniform(rng, TF_BATCH * CTX * 3 * WIDTH);
    const ref = attentionCoreRef(qkvHost, TF_BATCH, CTX, WIDTH, HEADS);
    const buf = (floats: number, label: string) => gpu.buffer(floats * 4, label);
    const qkv = gpu.upload(qkvHost, 'qkv');
    const probs = buf(ref.probs.length, 'probs');
    const dO = gpu.upload(randomUniform(rng, TF_BATCH * CTX * WIDTH), 'dO');
    const dscores = buf(ref.probs.length, 'dscores');
    const o = buf(ref.o.length, 'o');
    const dqkv = buf(qkvHost.length, 'dqkv');
    const [scores, values] = attentionCore(gpu, { ...shape, qkv, probs, o });
    const [backScores, backQkv] = attentionCoreBackward(gpu, { ...shape, qkv, probs, dO, dscores, dqkv });
    // The Params struct of attention.wgsl: batch, t, c, heads, d (u32), scale (f32).
    const params = new ArrayBuffer(32);
    new Uint32Array(params, 0, 5).set([TF_BATCH, CTX, WIDTH, HEADS, WIDTH / HEADS]);
    new Float32Array(params, 20, 1)[0] = 1 / Math.sqrt(WIDTH / HEADS);
    const exp = (entryPoint: string, bindings: ('uniform' | 'read' | 'storage')[], buffers: GPUBuffer[], invocations: number) =>
      gpu.prepare({ kernel: { name: `attention-exp-01-${entryPoint}`, source: attentionExp01, entryPoint, bindings, overrides: { WG: 64 } }, buffers, uniforms: new Uint8Array(params), workgroups: linearWorkgroups(invocations, 64) });
    const o01 = buf(ref.o.length, 'o-01');
    const dqkv01 = buf(qkvHost.length, 'dqkv-01');
    const values01 = exp('attention_values', ['uniform', 'read', 'read', 'storage'], [qkv, probs, o01], TF_BATCH * CTX * WIDTH);
    const qkv01 = exp('attention_backward_qkv', ['uniform', 'read', 'read', 'read', 'read', 'storage'], [qkv, probs, dO, dscores, dqkv01], TF_BATCH * CTX * 3 * WIDTH);
    gpu.submit([scores, values, values01, backScores, backQkv, qkv01]);
    for (const [name, got, want] of [['values', await gpu.read(o), ref.o], ['values 01', await gpu.read(o01), ref.o], ['backward qkv', await gpu.read(dqkv), await gpu.read(dqkv01)]] as [string, Float32Array, Float32Array][]) {
      const c = compare(got, want, { atol: 1e-5, rtol: 1e-4 });
      if (!c.ok) throw new Error(`attention ${name}: ${c.message}`);
    }
    await time(`attention values B ${TF_BATCH} T ${CTX} C ${WIDTH} H ${HEADS}`, [['01-channel-per-invocation', values01], ['02-four-channels (shipped)', values]]);
    await time(`attention backward qkv B ${TF_BATCH} T ${CTX} C ${WIDTH} H ${HEADS}`, [['01-channel-per-invocation', qkv01], ['02-four-channels (shipped)', backQkv]]);
  }
  return rows;
}

async function run(): Promise<unknown> {
  const gpu = await Gpu.create();
  const adapter = [gpu.info.vendor, gpu.info.architecture, gpu.info.description].filter(Boolean).join(' ');
  log(`adapter: ${adapter}; ${REPS} interleaved samples of about ${SECONDS} s each`);
  const rows: Record<string, unknown>[] = [];
  const profile: Record<string, Record<string, number>> = {};
  if (ONLY.includes('cnn')) {
    const w = cnnWorkload();
    if (PROFILE) profile.cnn = await profileOurs(w);
    rows.push(...(await modelRows(gpu, w, tfjsCnn, 'examples/s')));
  }
  if (ONLY.includes('transformer')) {
    const w = transformerWorkload();
    if (PROFILE) profile.transformer = await profileOurs(w);
    rows.push(...(await modelRows(gpu, w, tfjsTransformer, 'tokens/s')));
  }
  if (ONLY.includes('conv')) rows.push(...(await convRows(gpu)));
  const experiments = EXPERIMENTS ? await experimentRows(gpu) : undefined;
  gpu.destroy();
  return { adapter, reps: REPS, sample_s: SECONDS, cores: navigator.hardwareConcurrency, rows, ...(PROFILE ? { profile } : {}), ...(experiments ? { experiments } : {}) };
}

(window as unknown as { __benchResult: Promise<unknown> }).__benchResult = run();
