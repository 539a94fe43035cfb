// A checkpoint of every spec in examples/ read with an independent safetensors reader: its
// parameter names and shapes are the ones docs/pytorch.md lists for that file (so the page a
// PyTorch user follows cannot drift from what the coordinator writes), and a text model's
// checkpoint carries the characters its token ids stand for.
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { encodeCheckpoint } from '../server/checkpoint.ts';
import { DatasetRegistry } from '../server/data/registry.ts';
import { Run } from '../server/run.ts';
import { checkSpecAgainstDataset } from '../shared/run-spec.ts';
import { parseRunSpecText } from '../shared/run-spec-text.ts';
import { sharedDataDir } from './helpers/coordinator.ts';
import { readSafetensors } from './helpers/safetensors-reader.ts';

const root = resolve(import.meta.dirname, '..');
// Run specs only: sweep specs (*-sweep.yaml) are checked by test/sweeps.test.ts.
const examples = readdirSync(resolve(root, 'examples')).filter((f) => f.endsWith('.yaml') && !f.endsWith('-sweep.yaml')).sort();
const doc = readFileSync(resolve(root, 'docs/pytorch.md'), 'utf8');

/** The `| name | shape |` rows of the doc's section headed by examples/<file>. */
function documentedTensors(file: string): Record<string, number[]> {
  const heading = new RegExp(`^#+ .*examples/${file.replace('.', '\\.')}\\s*$`, 'm').exec(doc);
  if (!heading) throw new Error(`docs/pytorch.md has no section for examples/${file}`);
  const after = doc.slice(heading.index + heading[0].length);
  const section = after.slice(0, after.search(/^#+ /m) === -1 ? after.length : after.search(/^#+ /m));
  const rows = [...section.matchAll(/^\| `([^`]+)` \| `\[([\d, ]+)\]` \|$/gm)];
  return Object.fromEntries(rows.map((r) => [r[1], r[2].split(',').map(Number)]));
}

let datasets: DatasetRegistry;
beforeAll(() => {
  datasets = new DatasetRegistry(sharedDataDir);
});
afterAll(() => {});

describe.each(examples)('examples/%s', (file) => {
  test('its checkpoint holds the tensors docs/pytorch.md lists, in float32', () => {
    const spec = parseRunSpecText(readFileSync(resolve(root, 'examples', file), 'utf8'));
    const ds = datasets.forSpec(spec);
    expect(ds, `dataset ${spec.dataset}`).toBeDefined();
    checkSpecAgainstDataset(spec, ds!.info);
    const run = new Run(spec, ds!.info);
    const read = readSafetensors(encodeCheckpoint(run));
    const shapes = Object.fromEntries(Object.entries(read.tensors).filter(([n]) => !n.startsWith('optimizer.')).map(([n, t]) => [n, t.shape]));
    const documented = documentedTensors(file);
    expect(Object.keys(documented).length).toBeGreaterThan(0);
    expect(shapes).toEqual(documented);
    // The values are the run's parameters, in the order the layers hold them.
    const first = run.net.description.layers.find((l) => l.params.length)!.params[0];
    expect([...read.tensors[first.name].values.subarray(0, 4)]).toEqual([...run.params.subarray(first.offset, first.offset + 4)]);
    if (ds!.info.vocab) {
      expect(JSON.parse(read.metadata.vocab)).toEqual(ds!.info.vocab);
      expect(ds!.info.vocab).toHaveLength(83);
    }
    if (ds!.info.classNames) expect(JSON.parse(read.metadata.class_names)).toEqual(ds!.info.classNames);
  });
});
