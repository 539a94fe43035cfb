// Benchmark harness: `npm run bench -- <name>` serves the repo with Vite on 127.0.0.1, opens
// bench/pages/<name>.html in Chromium with the browser's default WebGPU flags (what volunteers
// run), forwards the page's console as progress, and writes what the page resolves
// `window.__benchResult` to into bench/results/<name>.json, then refreshes docs/benchmarks.md.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { arch, cpus, platform, totalmem } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeBenchmarksDoc } from './report.ts';

const root = resolve(import.meta.dirname, '..');
const pagesDir = join(root, 'bench', 'pages');
const pageBenches = readdirSync(pagesDir).filter((f) => f.endsWith('.html')).map((f) => basename(f, '.html'));
/** Benchmarks of the coordinator run in Node (bench/<name>.node.ts exporting run(log)). */
const nodeBenches = readdirSync(join(root, 'bench')).filter((f) => f.endsWith('.node.ts')).map((f) => basename(f, '.node.ts'));
const available = [...pageBenches, ...nodeBenches];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    timeout: { type: 'string', default: '1200' },
    query: { type: 'string', default: '' },
    // Options of the scale benchmark (bench/scale.node.ts): a subset of rows and links, shorter windows.
    rows: { type: 'string' },
    seconds: { type: 'string' },
    warmup: { type: 'string' },
    links: { type: 'string' },
    children: { type: 'string' },
    'target-round-ms': { type: 'string' },
    // Worker processes of the accuracy benchmark (bench/accuracy.node.ts); default one per core.
    workers: { type: 'string' },
    // The comm benchmark (bench/comm.node.ts): one model (cnn, transformer) and a subset of rows.
    model: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});

if (values.help || positionals.length === 0) {
  console.log(`usage: npm run bench -- <${available.join('|')}> [more names] [--timeout seconds] [--query 'k=v&...']\n` +
    `  abuse: [--rows hello,ready,result,status,relay,chunk,unknown-event,admin,board,main-namespace,sockets] [--seconds 8] (ABUSE_FRAMES, ABUSE_BODIES: fuzz counts)\n` +
    `  accuracy: [--rows cnn-mnist,cnn-fashion,transformer] [--workers N]\n` +
    `  attacks: [--model cnn|mlp] [--rows none,sign-flip,noise,label-flip,alie,ipm,replay] (ATTACK_ROUNDS: rounds of a quick run)\n` +
    `  comm: [--model cnn|transformer] [--rows sync-none,sync-fp16,sync-int8,h8-none,h8-int8,h8-topk,h32-...,h128-...]\n` +
    `  scale: [--rows 1,4,16,64,256,4mixed,64mixed,64churn,256@2000] [--links loopback,lan] [--seconds 12] [--warmup 3] [--children 1] [--target-round-ms 500]`);
  process.exit(values.help ? 0 : 2);
}
for (const name of positionals) {
  if (!available.includes(name)) {
    console.error(`unknown benchmark "${name}"; available: ${available.join(', ')}`);
    process.exit(2);
  }
}

function writeResult(name: string, result: Record<string, unknown>, started: number, browserVersion?: string): void {
  // time-to-target writes its own key of scale.json (read-modify-write), not a file of its own.
  if (name === 'time-to-target') return;
  const out = {
    ...result,
    machine: { platform: platform(), arch: arch(), cpus: cpus().length, cpu: cpus()[0]?.model ?? '', memory_gb: Math.round(totalmem() / 2 ** 30) },
    ...(browserVersion ? { browser: browserVersion } : {}),
    date: new Date().toISOString(),
    seconds: Math.round((Date.now() - started) / 1000),
  };
  // A benchmark with variants (attacks --model mlp) names its own file.
  const file = typeof result.results_file === 'string' ? result.results_file : `${name}.json`;
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(join(root, 'bench', 'results', file), `${JSON.stringify(out, null, 2)}\n`);
  console.log(`[${name}] wrote bench/results/${file}`);
}

let failed = false;
for (const name of positionals.filter((n) => nodeBenches.includes(n))) {
  const started = Date.now();
  try {
    const mod = (await import(join(root, 'bench', `${name}.node.ts`))) as { run: (log: (m: string) => void, opts: typeof values) => Promise<Record<string, unknown>> };
    writeResult(name, await mod.run((m) => console.log(`[${name}] ${m}`), values), started);
  } catch (err) {
    failed = true;
    console.error(`[${name}] failed: ${(err as Error).message}`);
  }
}
const pages = positionals.filter((n) => pageBenches.includes(n));
if (pages.length === 0) {
  if (existsSync(join(root, 'bench', 'results'))) writeBenchmarksDoc(root);
  process.exit(failed ? 1 : 0);
}

// Loaded only for page benchmarks: Vite and Playwright would add some 200 MB to the resident
// memory that the Node benchmarks (scale) report for the coordinator they run in this process.
const { chromium } = await import('playwright-core');
const { createServer } = await import('vite');
const { chromiumLaunchOptions } = await import('../server/chromium.ts');
const { crowdtrainDevData } = await import('../server/dev-plugin.ts');
const server = await createServer({
  configFile: false,
  root,
  logLevel: 'warn',
  publicDir: false,
  plugins: [crowdtrainDevData(resolve(process.env.CROWDTRAIN_DATA_DIR ?? join(root, 'data')))],
  // No HMR and no file watching: an edit elsewhere in the repo must not reload a page mid-benchmark.
  server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false, watch: null },
  optimizeDeps: { include: ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-webgpu', '@tensorflow/tfjs'] },
});
await server.listen();
const address = server.httpServer?.address();
const port = typeof address === 'object' && address ? address.port : 0;
const browser = await chromium.launch(chromiumLaunchOptions());
try {
  for (const name of pages) {
    const page = await browser.newPage();
    page.on('console', (m) => console.log(`[${name}] ${m.text()}`));
    page.on('pageerror', (e) => console.error(`[${name}] page error: ${e.message}`));
    const started = Date.now();
    const url = `http://127.0.0.1:${port}/bench/pages/${name}.html${values.query ? `?${values.query}` : ''}`;
    console.log(`[${name}] ${url}`);
    await page.goto(url);
    try {
      await page.waitForFunction(() => (window as unknown as { __benchResult?: unknown }).__benchResult !== undefined, null, { timeout: 60_000 });
      const limitMs = Number(values.timeout) * 1000;
      const result = (await Promise.race([
        page.evaluate(() => (window as unknown as { __benchResult: Promise<unknown> }).__benchResult),
        new Promise((_, reject) => setTimeout(() => reject(new Error(`no result within ${values.timeout} s`)), limitMs).unref()),
      ])) as Record<string, unknown>;
      writeResult(name, result, started, browser.version());
    } catch (err) {
      failed = true;
      console.error(`[${name}] failed: ${(err as Error).message}`);
    }
    await page.close();
  }
} finally {
  await browser.close();
  await server.close();
}
if (existsSync(join(root, 'bench', 'results'))) writeBenchmarksDoc(root);
process.exit(failed ? 1 : 0);
