// Shorthands a run spec may use, expanded into plain layers before anything else sees them:
// `transformer-block` (pre-LayerNorm attention and MLP, each residual) and the old
// `{ kind: mlp, layers: [784, 128, 10], activation }` model form (dense layers).
import { LayerError, type LayerConfig } from './layer.ts';

/** One transformer block on [T, C]: x + attn(ln(x)), then x + W2·gelu(W1·ln(x)) with W1: C → hidden (4C by default). */
function transformerBlock(cfg: LayerConfig, channels: number | undefined): LayerConfig[] {
  const heads = cfg.heads;
  if (typeof heads !== 'number' || !Number.isInteger(heads) || heads < 1) throw new LayerError('transformer-block: heads must be a positive integer');
  const width = cfg.width ?? channels;
  if (typeof width !== 'number' || !Number.isInteger(width) || width < 1) throw new LayerError('transformer-block: width must be given (the channels of its input) when no earlier layer fixes it');
  const hidden = cfg.hidden ?? 4 * width;
  for (const key of Object.keys(cfg)) if (!['kind', 'heads', 'width', 'hidden'].includes(key)) throw new LayerError(`transformer-block: unknown field "${key}" (allowed: heads, width, hidden)`);
  return [
    { kind: 'residual', layers: [{ kind: 'layernorm' }, { kind: 'attention', heads }] },
    { kind: 'residual', layers: [{ kind: 'layernorm' }, { kind: 'dense', out: hidden }, { kind: 'gelu' }, { kind: 'dense', out: width }] },
  ];
}

/** Expands shorthands; `channels` is the width a transformer block keeps when it does not say. */
export function expandLayers(configs: readonly LayerConfig[]): LayerConfig[] {
  const out: LayerConfig[] = [];
  let width: number | undefined;
  for (const cfg of configs) {
    if (cfg.kind === 'transformer-block') out.push(...transformerBlock(cfg, width));
    else {
      out.push(cfg);
      if (cfg.kind === 'embedding' && typeof cfg.dim === 'number') width = cfg.dim;
      if (cfg.kind === 'dense' && typeof cfg.out === 'number') width = cfg.out;
    }
  }
  return out;
}

/** The dense layers an `{ kind: mlp }` model means: dense, activation, ..., dense. */
export function mlpLayers(widths: readonly number[], activation: 'relu' | 'gelu'): LayerConfig[] {
  const out: LayerConfig[] = [];
  for (let i = 1; i < widths.length; i++) {
    out.push({ kind: 'dense', out: widths[i] });
    if (i + 1 < widths.length) out.push({ kind: activation });
  }
  return out;
}
