#!/usr/bin/env node
// The `crowdtrain` command (package.json "bin"). The project ships TypeScript, so this loads
// server/submit-cli.ts through tsx's module API, in this process, and hands it the arguments.
let tsx;
try {
  tsx = await import('tsx/esm/api');
} catch {
  console.error('crowdtrain: the tsx package is missing; run `npm install` in the crowdtrain folder');
  process.exit(1);
}
const { main } = await tsx.tsImport('../server/submit-cli.ts', import.meta.url);
process.exitCode = await main(process.argv.slice(2), process.env);
