// WebGPU in Node through Dawn (the `webgpu` npm package, an optional dependency): the same WGSL
// kernels and executor as the page, once navigator.gpu and the WebGPU globals exist. Dawn needs
// a Vulkan loader and driver: the machine's own (a GPU vendor's driver), or on a machine without
// a GPU the SwiftShader driver that Debian's chromium package installs beside its own loader.
// A loader found only there must be on the library path before the process starts, so
// `dawnEnvironment` says what to set and the CLI starts itself again with it.
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { findChromium } from '../server/chromium.ts';

/** Set in the environment of a worker that was started again with Dawn's variables. */
export const DAWN_ENV_MARK = 'CROWDTRAIN_DAWN_ENV';

function systemHasVulkanLoader(): boolean {
  for (const dir of ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib']) {
    if (existsSync(join(dir, 'libvulkan.so.1'))) return true;
  }
  try {
    return execFileSync('ldconfig', ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('libvulkan.so.1');
  } catch {
    return false;
  }
}

function systemHasVulkanDriver(): boolean {
  return ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'].some((d) => existsSync(d));
}

/** Chromium's folder when it carries a Vulkan loader and SwiftShader's Vulkan driver. */
function chromiumVulkanDir(env: NodeJS.ProcessEnv): string | null {
  try {
    const dir = dirname(realpathSync(findChromium({ env }).path));
    for (const d of [dir, '/usr/lib/chromium']) if (existsSync(join(d, 'vk_swiftshader_icd.json'))) return d;
  } catch {
    if (existsSync('/usr/lib/chromium/vk_swiftshader_icd.json')) return '/usr/lib/chromium';
  }
  return null;
}

/**
 * Variables Dawn needs on this machine that `env` lacks (empty when none): LD_LIBRARY_PATH for
 * Chromium's loader when the system has none, VK_ICD_FILENAMES for SwiftShader when the system has
 * no Vulkan driver. Linux only; elsewhere the system's own Metal/D3D/Vulkan is used.
 */
export function dawnEnvironment(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  if (process.platform !== 'linux' || env[DAWN_ENV_MARK]) return {};
  const out: Record<string, string> = {};
  const chromium = chromiumVulkanDir(env);
  if (!chromium) return out;
  if (!systemHasVulkanLoader()) out.LD_LIBRARY_PATH = [chromium, env.LD_LIBRARY_PATH].filter(Boolean).join(':');
  if (!env.VK_ICD_FILENAMES && !systemHasVulkanDriver()) out.VK_ICD_FILENAMES = join(chromium, 'vk_swiftshader_icd.json');
  return out;
}

/**
 * Makes navigator.gpu and the WebGPU globals (GPUBufferUsage, ...) from Dawn; resolves with why
 * not when it cannot (the package is missing, or its native module does not load here).
 */
export async function installDawn(): Promise<{ ok: true } | { ok: false; reason: string }> {
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (g.navigator?.gpu) return { ok: true };
  let mod: { create(flags: string[]): unknown; globals: Record<string, unknown> };
  try {
    mod = (await import('webgpu')) as unknown as typeof mod;
  } catch (err) {
    const missing = (err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND';
    return { ok: false, reason: missing ? 'the webgpu package (Dawn) is not installed; `npm install webgpu` adds it' : `Dawn did not load: ${(err as Error).message}` };
  }
  Object.assign(globalThis, mod.globals);
  const gpu = mod.create([]);
  if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  return { ok: true };
}
