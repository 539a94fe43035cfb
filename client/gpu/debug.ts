// The WGSL debug switch: when on, every kernel compiled prints its source and overrides.
// Turn on with `?debug=wgsl` in the page URL, localStorage 'crowdtrain.debug' = 'wgsl',
// or setDebugWgsl(true) (tinygrad's DEBUG=4, tfjs's WEBGPU_PRINT_SHADER).

let forced: boolean | undefined;

export function setDebugWgsl(on: boolean): void {
  forced = on;
}

export function debugWgsl(): boolean {
  if (forced !== undefined) return forced;
  try {
    const fromUrl = new URLSearchParams(globalThis.location?.search ?? '').get('debug');
    const fromStorage = globalThis.localStorage?.getItem('crowdtrain.debug');
    return [fromUrl, fromStorage].some((v) => v?.split(',').includes('wgsl'));
  } catch {
    return false;
  }
}
