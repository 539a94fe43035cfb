// `npx tsx scripts/torch-parity.ts`: a manual check (PyTorch is too heavy for CI) that the
// PyTorch modules docs/pytorch.md gives load crowdtrain checkpoints of the example CNN and
// transformer with strict names and compute the same logits. It writes each checkpoint (the
// example's initial parameters plus noise) with a batch of inputs and crowdtrain's logits (the
// fast CPU kernels) to a temporary folder, then runs scripts/torch-parity.py on them with the
// python3 that has torch (Debian: apt-get install python3-torch; PYTHON to choose another).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { encodeCheckpoint } from '../server/checkpoint.ts';
import { Run } from '../server/run.ts';
import { cpuKernels } from '../shared/cpu/index.ts';
import { forwardRange } from '../shared/layers/sequence.ts';
import { createRng } from '../shared/rng.ts';
import { parseRunSpecText } from '../shared/run-spec-text.ts';

const root = resolve(import.meta.dirname, '..');
const out = mkdtempSync(join(tmpdir(), 'crowdtrain-torch-parity-'));
const image = { features: 784, classes: 10, trainCount: 1, shards: [], exampleShape: [1, 28, 28] };
const cases = [
  { name: 'mnist-cnn', dataset: { ...image, name: 'mnist' }, tokens: 0 },
  { name: 'moby-dick-transformer', dataset: { name: 'moby-dick@64', features: 64, classes: 83, trainCount: 1, shards: [], exampleShape: [64] }, tokens: 83 },
];
const batch = 3;
for (const c of cases) {
  const spec = parseRunSpecText(readFileSync(join(root, 'examples', `${c.name}.yaml`), 'utf8'));
  const run = new Run(spec, c.dataset);
  const rng = createRng(7);
  for (let i = 0; i < run.params.length; i++) run.params[i] += 0.05 * rng.normal(); // not only the initialisation
  writeFileSync(join(out, `${c.name}.safetensors`), encodeCheckpoint(run));
  const x = Float32Array.from({ length: batch * c.dataset.features }, () => (c.tokens ? rng.int(c.tokens) : rng.uniform(0, 1)));
  const { y } = forwardRange(run.net.description, run.params, x, batch, { kernels: cpuKernels });
  writeFileSync(join(out, `${c.name}.json`), JSON.stringify({ x: [...x], y: [...y], batch }));
}
const python = process.env.PYTHON ?? '/usr/bin/python3';
const r = spawnSync(python, [join(root, 'scripts', 'torch-parity.py'), out, join(root, 'docs', 'pytorch.md')], { stdio: 'inherit' });
process.exit(r.status ?? 1);
