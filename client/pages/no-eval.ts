// Imported first by every page: the pages' Content-Security-Policy allows no eval, and zod probes
// for it (new Function) on its first parse, which the browser reports as a CSP violation. jitless
// skips the probe; parsing then takes zod's interpreted path, which is fast enough for a page.
import { z } from 'zod';

z.config({ jitless: true });
