// Grid sampling: every combination of the choice lists once, in a fixed order (the last
// parameter, in key order, varies fastest), trial index i being combination i.
import type { ParamValue, SweepSettings } from '../../../shared/sweep-spec.ts';
import type { Sampler } from '../sampler.ts';

export function createGridSampler(settings: SweepSettings): Sampler {
  const keys = Object.keys(settings.parameters).sort();
  const lists = keys.map((k) => {
    const d = settings.parameters[k];
    if (!('choice' in d)) throw new Error(`grid sampling takes choice lists only; ${k} is ${Object.keys(d)[0]}`);
    return d.choice;
  });
  const total = lists.reduce((n, l) => n * l.length, 1);
  return {
    next(index) {
      if (!Number.isInteger(index) || index < 0 || index >= total) return null;
      const values: Record<string, ParamValue> = {};
      let rest = index;
      for (let i = keys.length - 1; i >= 0; i--) {
        values[keys[i]] = lists[i][rest % lists[i].length];
        rest = Math.floor(rest / lists[i].length);
      }
      // Key order as the spec lists them, not the order of decoding.
      return Object.fromEntries(Object.keys(settings.parameters).map((k) => [k, values[k]]));
    },
  };
}
