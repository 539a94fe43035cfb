// Builds the browser pages with Vite when dist/pages is missing or older than its sources,
// so that `npm start` works on a fresh clone right after `npm ci`.
//
// Several processes may ask at once (a coordinator starting while tests run, test files in
// parallel) and some may be serving the pages meanwhile. So a build goes to a folder of its own
// and its files replace the served ones one rename at a time (a page never finds half a file or
// an emptied folder), and one builder at a time holds a lock; the others wait for it and then
// find the pages fresh.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const SOURCES = ['client', 'shaders', 'shared', 'vite.config.ts', 'package-lock.json'];
const STAMP = '.built';
/** A lock older than this was left by a builder that died: taken over. */
const STALE_LOCK_MS = 5 * 60_000;

function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  // Files only: a folder's own time changes when a tool adds its cache folder beside the sources.
  let newest = 0;
  // Tool caches (Vite's deps cache under a root's node_modules) are not sources.
  for (const entry of readdirSync(path)) if (entry !== 'node_modules') newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

export function pagesAreStale(root: string, outDir: string): boolean {
  const stamp = join(outDir, STAMP);
  if (!existsSync(stamp)) return true;
  const built = statSync(stamp).mtimeMs;
  return SOURCES.some((s) => newestMtime(join(root, s)) > built);
}

function filesUnder(dir: string, base = dir): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name), base) : [relative(base, join(dir, e.name))]));
}

/** Moves a finished build over the served folder file by file; drops files the new build lacks. */
function swapIn(built: string, outDir: string): void {
  const fresh = new Set(filesUnder(built));
  for (const f of fresh) {
    if (f === STAMP) continue;
    mkdirSync(dirname(join(outDir, f)), { recursive: true });
    renameSync(join(built, f), join(outDir, f));
  }
  for (const f of filesUnder(outDir)) if (!fresh.has(f) && f !== STAMP) rmSync(join(outDir, f), { force: true });
  // The stamp last: until it is written, others still see the pages as stale and wait on the lock.
  renameSync(join(built, STAMP), join(outDir, STAMP));
}

async function withLock<T>(lock: string, fn: () => Promise<T>): Promise<T> {
  mkdirSync(dirname(lock), { recursive: true });
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let age = 0;
      try {
        age = Date.now() - statSync(lock).mtimeMs;
      } catch {
        continue; // released meanwhile
      }
      if (age > STALE_LOCK_MS) rmSync(lock, { recursive: true, force: true });
      else await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Writes a build of the pages into `outDir`: Vite with the project's config unless a test passes another. */
export type PagesBuilder = (root: string, outDir: string) => Promise<void>;

const viteBuild: PagesBuilder = async (root, outDir) => {
  const { build } = await import('vite');
  await build({ configFile: join(root, 'vite.config.ts'), logLevel: 'warn', build: { outDir, emptyOutDir: true } });
};

/** Returns true when it built. */
export async function buildPagesIfStale(root: string, outDir: string, log: (msg: string) => void, builder: PagesBuilder = viteBuild): Promise<boolean> {
  if (!pagesAreStale(root, outDir)) return false;
  return withLock(`${outDir}.lock`, async () => {
    // Another process may have built them while this one waited.
    if (!pagesAreStale(root, outDir)) return false;
    log('building the pages (first start or sources changed)…');
    const building = `${outDir}.building-${process.pid}`;
    rmSync(building, { recursive: true, force: true });
    try {
      await builder(root, building);
      writeFileSync(join(building, STAMP), new Date().toISOString());
      mkdirSync(outDir, { recursive: true });
      swapIn(building, outDir);
    } finally {
      rmSync(building, { recursive: true, force: true });
    }
    return true;
  });
}
