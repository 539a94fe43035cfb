// A Node module hook for the WGSL shaders: `import source from '.../x.wgsl?raw'` gives the file's
// text, as Vite does for the page, so a Node worker runs the very same kernels through Dawn.
// Registered by bin/crowdtrain.mjs before it loads `crowdtrain worker`.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export async function load(url, context, nextLoad) {
  if (url.startsWith('file:') && new URL(url).pathname.endsWith('.wgsl')) {
    const text = await readFile(fileURLToPath(url.split('?')[0]), 'utf8');
    return { format: 'module', source: `export default ${JSON.stringify(text)};`, shortCircuit: true };
  }
  return nextLoad(url, context);
}
