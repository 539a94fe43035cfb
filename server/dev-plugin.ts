// Vite plugin that lets the dev server, the browser tests and the benchmarks answer the
// coordinator's dataset URLs, so pages fetch data the same way everywhere.
import type { Plugin } from 'vite';
import { answerDatasetRequest } from './data/dataset-files.ts';

export function crowdtrainDevData(dataDir: string): Plugin {
  return {
    name: 'crowdtrain-dev-data',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const answer = req.method === 'GET' && req.url ? answerDatasetRequest(dataDir, req.url) : undefined;
        if (!answer) return next();
        res.statusCode = answer.status;
        for (const [k, v] of Object.entries(answer.headers)) res.setHeader(k, v);
        res.end(answer.body);
      });
    },
  };
}
