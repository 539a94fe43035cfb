// maxpool2d: the largest value of each window; its gradient goes to that value's position
// (the first one on ties, as PyTorch; the window's first element when it holds no number above −∞).
import { poolGeometry, registerPool } from './pool2d.ts';

registerPool('maxpool2d', {
  forward(cfg, inShape, _p, x, batch) {
    const g = poolGeometry(cfg, inShape);
    const inSize = g.c * g.h * g.w;
    const outSize = g.c * g.ho * g.wo;
    const y = new Float32Array(batch * outSize);
    const argmax = new Int32Array(batch * outSize);
    for (let n = 0; n < batch; n++) {
      for (let c = 0; c < g.c; c++) {
        for (let i = 0; i < g.ho; i++) {
          for (let j = 0; j < g.wo; j++) {
            let best = -Infinity;
            let at = -1;
            for (let a = 0; a < g.k; a++) {
              for (let b = 0; b < g.k; b++) {
                const xi = n * inSize + (c * g.h + i * g.s + a) * g.w + j * g.s + b;
                if (x[xi] > best || at < 0) {
                  best = x[xi];
                  at = xi;
                }
              }
            }
            const yi = n * outSize + (c * g.ho + i) * g.wo + j;
            y[yi] = best;
            argmax[yi] = at;
          }
        }
      }
    }
    return { y, cache: argmax };
  },
  backward(cfg, inShape, _p, cache, dy, batch) {
    const g = poolGeometry(cfg, inShape);
    const argmax = cache as Int32Array;
    const dx = new Float32Array(batch * g.c * g.h * g.w);
    for (let i = 0; i < argmax.length; i++) dx[argmax[i]] += dy[i];
    return { dx, dp: [] };
  },
});
