// avgpool2d: the mean of each window; its gradient is shared equally by the window.
import { poolGeometry, registerPool } from './pool2d.ts';

registerPool('avgpool2d', {
  forward(cfg, inShape, _p, x, batch) {
    const g = poolGeometry(cfg, inShape);
    const inSize = g.c * g.h * g.w;
    const outSize = g.c * g.ho * g.wo;
    const y = new Float32Array(batch * outSize);
    const inv = 1 / (g.k * g.k);
    for (let n = 0; n < batch; n++)
      for (let c = 0; c < g.c; c++)
        for (let i = 0; i < g.ho; i++)
          for (let j = 0; j < g.wo; j++) {
            let s = 0;
            for (let a = 0; a < g.k; a++) for (let b = 0; b < g.k; b++) s += x[n * inSize + (c * g.h + i * g.s + a) * g.w + j * g.s + b];
            y[n * outSize + (c * g.ho + i) * g.wo + j] = s * inv;
          }
    return { y, cache: null };
  },
  backward(cfg, inShape, _p, _cache, dy, batch) {
    const g = poolGeometry(cfg, inShape);
    const inSize = g.c * g.h * g.w;
    const outSize = g.c * g.ho * g.wo;
    const dx = new Float32Array(batch * inSize);
    const inv = 1 / (g.k * g.k);
    for (let n = 0; n < batch; n++)
      for (let c = 0; c < g.c; c++)
        for (let i = 0; i < g.ho; i++)
          for (let j = 0; j < g.wo; j++) {
            const d = dy[n * outSize + (c * g.ho + i) * g.wo + j] * inv;
            for (let a = 0; a < g.k; a++) for (let b = 0; b < g.k; b++) dx[n * inSize + (c * g.h + i * g.s + a) * g.w + j * g.s + b] += d;
          }
    return { dx, dp: [] };
  },
});
