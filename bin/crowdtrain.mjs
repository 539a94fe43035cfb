#!/usr/bin/env node
// The `crowdtrain` command (package.json "bin"). The project ships TypeScript, so this loads
// server/submit-cli.ts (or node/worker-cli.ts for `crowdtrain worker`) through tsx's module API,
// in this process, and hands it the arguments.
let tsx;
try {
  tsx = await import('tsx/esm/api');
} catch {
  console.error('crowdtrain: the tsx package is missing; run `npm install` in the crowdtrain folder');
  process.exit(1);
}
if (process.argv[2] === 'worker') {
  // `crowdtrain worker`: a contributor in this process (node/worker-cli.ts), whose WebGPU kernels
  // import their WGSL as text.
  const { register } = await import('node:module');
  register('../node/wgsl-loader.mjs', import.meta.url);
  const { runWorker } = await tsx.tsImport('../node/worker-cli.ts', import.meta.url);
  process.exitCode = await runWorker(process.argv.slice(3), process.env);
} else {
  const { main } = await tsx.tsImport('../server/submit-cli.ts', import.meta.url);
  process.exitCode = await main(process.argv.slice(2), process.env);
}
