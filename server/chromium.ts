// Finds and launches the Chromium that runs WebGPU for tests, benchmarks and the demo.
// Knows nothing about pages or tests: it answers "which browser binary, with which flags".
import { existsSync } from 'node:fs';
import type { LaunchOptions } from 'playwright-core';

/** Flags DESIGN.md fixes: WebGPU on (SwiftShader when there is no GPU), quiet on a closed network. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--enable-unsafe-webgpu',
  // SwiftShader runs WebGPU on the CPU: on a busy machine one dispatch can outlast the GPU
  // watchdog, which then kills the GPU process and leaves the tab's device lost mid-task.
  '--disable-gpu-watchdog',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

export const DEBIAN_CHROMIUM = '/usr/bin/chromium';

export const CHROMIUM_HELP = [
  'crowdtrain needs Chromium to run WebGPU workers, tests and benchmarks, and found none.',
  'Get one of:',
  '  - Debian/Ubuntu:  apt-get install -y chromium      (gives /usr/bin/chromium)',
  '  - any system:     npx playwright install chromium  (Playwright\'s own build)',
  '  - or point CHROMIUM_PATH at a Chromium or Chrome binary you already have.',
].join('\n');

export class ChromiumNotFoundError extends Error {
  override name = 'ChromiumNotFoundError';
}

export interface ChromiumFound {
  path: string;
  source: 'CHROMIUM_PATH' | 'debian' | 'playwright';
}

interface FindOptions {
  env?: Record<string, string | undefined>;
  exists?: (path: string) => boolean;
  playwrightPath?: () => string | undefined;
}

/**
 * Order: CHROMIUM_PATH, /usr/bin/chromium, then Playwright's downloaded browser.
 * @example const { path } = findChromium(); // '/usr/bin/chromium'
 */
export function findChromium(opts: FindOptions = {}): ChromiumFound {
  const env = opts.env ?? process.env;
  const exists = opts.exists ?? existsSync;
  const fromEnv = env.CHROMIUM_PATH?.trim();
  if (fromEnv) {
    if (!exists(fromEnv)) {
      throw new ChromiumNotFoundError(`CHROMIUM_PATH is set to ${fromEnv}, but no file is there.\n${CHROMIUM_HELP}`);
    }
    return { path: fromEnv, source: 'CHROMIUM_PATH' };
  }
  if (exists(DEBIAN_CHROMIUM)) return { path: DEBIAN_CHROMIUM, source: 'debian' };
  const pw = (opts.playwrightPath ?? playwrightChromiumPath)();
  if (pw && exists(pw)) return { path: pw, source: 'playwright' };
  throw new ChromiumNotFoundError(CHROMIUM_HELP);
}

// playwright-core knows where `npx playwright install chromium` puts its build. Looked up lazily
// and guarded, so that a missing browser is reported by us with a way to get one.
let playwrightExecutable: (() => string) | undefined;
try {
  const { chromium } = await import('playwright-core');
  playwrightExecutable = () => chromium.executablePath();
} catch {
  playwrightExecutable = undefined;
}

function playwrightChromiumPath(): string | undefined {
  try {
    return playwrightExecutable?.();
  } catch {
    return undefined;
  }
}

/** Launch options for playwright-core's `chromium.launch`. Root needs --no-sandbox. */
export function chromiumLaunchOptions(extraArgs: string[] = []): LaunchOptions {
  const { path } = findChromium();
  const args = [...CHROMIUM_ARGS, ...extraArgs];
  if (process.getuid?.() === 0) args.push('--no-sandbox');
  return { executablePath: path, headless: true, args };
}
