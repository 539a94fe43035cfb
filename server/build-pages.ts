// Builds the browser pages with Vite when dist/pages is missing or older than its sources,
// so that `npm start` works on a fresh clone right after `npm ci`.
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const SOURCES = ['client', 'shaders', 'shared', 'vite.config.ts', 'package-lock.json'];
const STAMP = '.built';

function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

export function pagesAreStale(root: string, outDir: string): boolean {
  const stamp = join(outDir, STAMP);
  if (!existsSync(stamp)) return true;
  const built = statSync(stamp).mtimeMs;
  return SOURCES.some((s) => newestMtime(join(root, s)) > built);
}

/** Returns true when it built. */
export async function buildPagesIfStale(root: string, outDir: string, log: (msg: string) => void): Promise<boolean> {
  if (!pagesAreStale(root, outDir)) return false;
  log('building the pages (first start or sources changed)…');
  const { build } = await import('vite');
  await build({ configFile: join(root, 'vite.config.ts'), logLevel: 'warn' });
  writeFileSync(join(outDir, STAMP), new Date().toISOString());
  return true;
}
