// Building the pages while they are served: processes that ask at once build once, the served
// folder never loses a file mid-build, and tool caches under client/ do not count as sources.
import { mkdirSync, mkdtempSync, readFileSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { buildPagesIfStale, pagesAreStale, type PagesBuilder } from '../server/build-pages.ts';

function project(): { root: string; outDir: string } {
  const root = mkdtempSync(join(tmpdir(), 'crowdtrain-pages-'));
  mkdirSync(join(root, 'client/pages'), { recursive: true });
  writeFileSync(join(root, 'client/pages/index.html'), '<p>v1</p>');
  return { root, outDir: join(root, 'dist/pages') };
}

/** A build that takes a while and writes a page naming the source it read, plus one asset. */
function slowBuilder(calls: string[], ms = 300): PagesBuilder {
  return async (root, out) => {
    calls.push(out);
    mkdirSync(join(out, 'assets'), { recursive: true });
    await new Promise((r) => setTimeout(r, ms));
    writeFileSync(join(out, 'index.html'), readFileSync(join(root, 'client/pages/index.html')));
    writeFileSync(join(out, 'assets', `app-${calls.length}.js`), 'x');
  };
}

test('three builders at once: one builds, the others wait for it and find the pages fresh', async () => {
  const { root, outDir } = project();
  const calls: string[] = [];
  const built = await Promise.all([0, 1, 2].map(() => buildPagesIfStale(root, outDir, () => {}, slowBuilder(calls))));
  expect(built.filter(Boolean)).toHaveLength(1);
  expect(calls).toHaveLength(1);
  expect(readFileSync(join(outDir, 'index.html'), 'utf8')).toBe('<p>v1</p>');
  expect(pagesAreStale(root, outDir)).toBe(false);
  expect(existsSync(`${outDir}.lock`)).toBe(false);
});

test('a rebuild keeps the served files in place until the new ones replace them, and drops what the new build lacks', async () => {
  const { root, outDir } = project();
  const calls: string[] = [];
  await buildPagesIfStale(root, outDir, () => {}, slowBuilder(calls));
  writeFileSync(join(root, 'client/pages/index.html'), '<p>v2</p>');
  const later = new Date(Date.now() + 5000);
  utimesSync(join(root, 'client/pages/index.html'), later, later);
  expect(pagesAreStale(root, outDir)).toBe(true);
  const rebuilding = buildPagesIfStale(root, outDir, () => {}, slowBuilder(calls));
  // While the new build runs, the served page is still the whole old one.
  await new Promise((r) => setTimeout(r, 100));
  expect(readFileSync(join(outDir, 'index.html'), 'utf8')).toBe('<p>v1</p>');
  expect(existsSync(join(outDir, 'assets/app-1.js'))).toBe(true);
  expect(await rebuilding).toBe(true);
  expect(readFileSync(join(outDir, 'index.html'), 'utf8')).toBe('<p>v2</p>');
  expect([existsSync(join(outDir, 'assets/app-1.js')), existsSync(join(outDir, 'assets/app-2.js'))]).toEqual([false, true]);
});

test('a tool cache written under client/ (Vite deps in node_modules) does not make the pages stale', async () => {
  const { root, outDir } = project();
  await buildPagesIfStale(root, outDir, () => {}, slowBuilder([], 0));
  const later = new Date(Date.now() + 5000);
  mkdirSync(join(root, 'client/pages/node_modules/.vite'), { recursive: true });
  writeFileSync(join(root, 'client/pages/node_modules/.vite/deps.json'), '{}');
  utimesSync(join(root, 'client/pages/node_modules/.vite/deps.json'), later, later);
  expect(pagesAreStale(root, outDir)).toBe(false);
  utimesSync(join(root, 'client/pages/index.html'), later, later);
  expect(pagesAreStale(root, outDir)).toBe(true);
});
