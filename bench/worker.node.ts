// `npm run bench -- worker`: the headless worker beside the Chromium tab on the same machine and
// adapter. The Node half runs in a child process with Dawn's environment (bench/worker-probe-node.ts),
// the page half through the page harness (bench/pages/worker-page.ts); both run the same probe
// (bench/worker-probe.ts): matmul GFLOP/s, WebGPU training examples/s, CPU examples/s by threads.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { dawnEnvironment } from '../node/dawn.ts';

const root = resolve(import.meta.dirname, '..');

function child(args: string[], env: NodeJS.ProcessEnv, log: (m: string) => void): Promise<string> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [join(root, 'node_modules/tsx/dist/cli.mjs'), ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => d.toString().split('\n').filter(Boolean).forEach((l) => log(l)));
    p.on('exit', (code) => (code === 0 ? res(out) : rej(new Error(`${args.join(' ')} exited with ${code}`))));
  });
}

export async function run(log: (m: string) => void): Promise<Record<string, unknown>> {
  const load = loadavg()[0].toFixed(1);
  log('Node: Dawn and worker threads');
  const nodeOut = await child([join(root, 'bench/worker-probe-node.ts')], { ...process.env, ...dawnEnvironment() }, log);
  const node = JSON.parse(nodeOut.trim().split('\n').pop()!);
  log('page: Chromium WebGPU and Web Workers');
  await child([join(root, 'bench/run.ts'), 'worker-page'], process.env, log);
  const file = join(root, 'bench/results/worker-page.json');
  if (!existsSync(file)) throw new Error('the page half wrote no result');
  const page = JSON.parse(readFileSync(file, 'utf8'));
  rmSync(file);
  return { node, page, browser: page.browser, load_average: load };
}
