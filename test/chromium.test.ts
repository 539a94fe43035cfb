import { describe, expect, test } from 'vitest';
import { ChromiumNotFoundError, findChromium } from '../server/chromium.ts';

const has = (...paths: string[]) => (p: string) => paths.includes(p);

describe('Chromium discovery', () => {
  test('CHROMIUM_PATH comes first', () => {
    expect(findChromium({ env: { CHROMIUM_PATH: '/opt/c/chrome' }, exists: has('/opt/c/chrome', '/usr/bin/chromium') })).toEqual({ path: '/opt/c/chrome', source: 'CHROMIUM_PATH' });
  });
  test('then Debian\'s /usr/bin/chromium', () => {
    expect(findChromium({ env: {}, exists: has('/usr/bin/chromium', '/pw/chrome'), playwrightPath: () => '/pw/chrome' }).source).toBe('debian');
  });
  test('then Playwright\'s own browser', () => {
    expect(findChromium({ env: {}, exists: has('/pw/chrome'), playwrightPath: () => '/pw/chrome' })).toEqual({ path: '/pw/chrome', source: 'playwright' });
  });
  test('none found: the error says how to get one', () => {
    const find = () => findChromium({ env: {}, exists: has(), playwrightPath: () => '/pw/chrome' });
    expect(find).toThrow(ChromiumNotFoundError);
    expect(find).toThrow(/apt-get install -y chromium/);
    expect(find).toThrow(/npx playwright install chromium/);
  });
  test('a CHROMIUM_PATH that points nowhere is named in the error', () => {
    expect(() => findChromium({ env: { CHROMIUM_PATH: '/nope' }, exists: has('/usr/bin/chromium') })).toThrow(/CHROMIUM_PATH is set to \/nope, but no file is there/);
  });
});
