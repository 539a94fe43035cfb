// Vite plugin that lets the dev server, the browser tests and the benchmarks answer the
// coordinator's dataset URLs, so pages fetch data the same way everywhere, and gives the pages
// the coordinator's Content-Security-Policy with the dev server's allowances (its inline styles,
// its client script, its HMR socket); those allowances are never sent by the coordinator.
import type { Plugin } from 'vite';
import { answerDatasetRequest } from './data/dataset-files.ts';
import { contentSecurityPolicyHeader } from './web-security.ts';

/** The pages Vite serves from client/pages; the browser tests' own pages get no policy. */
const PAGES = /^\/(?:(?:index|train|admin|board)\.html)?(?:[?#]|$)/;

export function crowdtrainDevData(dataDir: string): Plugin {
  const csp = contentSecurityPolicyHeader(true);
  return {
    name: 'crowdtrain-dev-data',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        if (req.method === 'GET' && req.url && PAGES.test(req.url)) {
          res.setHeader('content-security-policy', csp);
          res.setHeader('x-content-type-options', 'nosniff');
          res.setHeader('x-frame-options', 'DENY');
        }
        const answer = req.method === 'GET' && req.url ? answerDatasetRequest(dataDir, req.url) : undefined;
        if (!answer) return next();
        res.statusCode = answer.status;
        for (const [k, v] of Object.entries(answer.headers)) res.setHeader(k, v);
        res.end(answer.body);
      });
    },
  };
}
