// Run specs as an admin writes them: the examples validate, YAML and JSON both work, and every
// mistake comes back naming the field, what it allows and what it got.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { DEFAULT_RUN_SPEC, parseRunSpec, RunSpecError, type RunSpec } from '../shared/run-spec.ts';
import { parseRunSpecText, runSpecToYaml } from '../shared/run-spec-text.ts';
import { describeRunModel } from '../shared/run-model.ts';

const examplesDir = join(import.meta.dirname, '..', 'examples');
// Run specs only: sweep specs (*-sweep.yaml) are checked by test/sweeps.test.ts.
const examples = readdirSync(examplesDir).filter((f) => f.endsWith('.yaml') && !f.endsWith('-sweep.yaml'));

/** The issues parseRunSpecText throws for `text` (fails the test when the text is valid). */
function issuesOf(text: string): { path: string; message: string }[] {
  try {
    parseRunSpecText(text);
  } catch (err) {
    if (err instanceof RunSpecError) return err.issues;
    throw err;
  }
  throw new Error(`expected a RunSpecError for:\n${text}`);
}

describe('example specs', () => {
  test('the three examples are there', () => {
    expect(examples.sort()).toEqual(expect.arrayContaining(['classroom.yaml', 'mnist-gelu-adamw.yaml', 'mnist-mlp.yaml']));
  });

  test.each(examples)('%s validates, and every field in it is spelled out', (file) => {
    const text = readFileSync(join(examplesDir, file), 'utf8');
    const spec = parseRunSpecText(text);
    expect(spec.name).toBe(file.replace(/\.yaml$/, ''));
    if (spec.dataset === 'moby-dick') {
      // A character model: a window of `context` token ids to the next character's logits at each position.
      const net = describeRunModel(spec, { features: spec.context ?? 64, exampleShape: [spec.context ?? 64] });
      expect(net.description.outShape).toEqual([spec.context ?? 64, 83]);
    } else {
      // The model takes MNIST's 784 pixels to its 10 classes, in either model form.
      const net = describeRunModel(spec, { features: 784, exampleShape: [1, 28, 28] });
      expect(net.inputShape.reduce((a, b) => a * b, 1)).toBe(784);
      expect(net.description.outShape).toEqual([10]);
    }
    // Comments explain the fields: the examples are documentation.
    expect(text.split('\n').filter((l) => l.includes('#')).length).toBeGreaterThan(5);
  });

  test('mnist-mlp.yaml is the default recipe', () => {
    const spec = parseRunSpecText(readFileSync(join(examplesDir, 'mnist-mlp.yaml'), 'utf8'));
    expect(spec).toEqual(parseRunSpec(DEFAULT_RUN_SPEC));
    expect(spec).toMatchObject({ model: { layers: [784, 128, 10], activation: 'relu' }, optimizer: { kind: 'adam', lr: 1e-3 }, batchPerTask: 64, stop: { targetAccuracy: 0.93 }, checkpointEvery: 50 });
  });
});

describe('spec errors name the field and the allowed range', () => {
  test.each([
    ['optimizer:\n  lr: 50\n', 'optimizer.lr', 'must be a number greater than 0 and at most 10 (got 50)'],
    ['batchPerTask: 0\n', 'batchPerTask', 'must be an integer from 1 to 4096 (got 0)'],
    ['batchPerTask: 1.5\n', 'batchPerTask', 'must be an integer from 1 to 4096 (got 1.5)'],
    ['batchPerTask: lots\n', 'batchPerTask', 'must be an integer from 1 to 4096 (got "lots")'],
    ['optimizer: { momentum: 1 }\n', 'optimizer.momentum', 'must be a number of at least 0 and below 1 (got 1)'],
    ['stop: { maxSamples: 0 }\n', 'stop.maxSamples', 'must be an integer of at least 1 (got 0)'],
    ['model: { layers: [784, 0, 10] }\n', 'model.layers.1', 'must be an integer from 1 to 65536 (got 0)'],
    ['name: ""\n', 'name', 'must be text of 1 to 80 characters (got 0 characters)'],
    ['optimizer: { kind: rmsprop }\n', 'optimizer.kind', 'must be one of sgd, momentum, adam, adamw (got "rmsprop")'],
    ['dataset: MNIST\n', 'dataset', 'a dataset name: lowercase letters, digits, - and _, at most 64 (got "MNIST")'],
  ])('%j', (text, path, message) => {
    expect(issuesOf(text)).toEqual([{ path, message }]);
  });

  test('layers [784] is too short, and the message says what layers are', () => {
    const [issue] = issuesOf('model:\n  layers: [784]\n');
    expect(issue.path).toBe('model.layers');
    expect(issue.message).toBe('must be a list of 2 to 16 entries: the layer widths from inputs to classes, e.g. [784, 128, 10] (got 1 entry)');
  });

  test('an unknown field is named, with a guess and the fields allowed there', () => {
    expect(issuesOf('optimiser:\n  lr: 0.01\n')).toEqual([
      { path: 'optimiser', message: expect.stringMatching(/^unknown field; did you mean "optimizer"\? \(fields allowed in a run spec: name, dataset, model, optimizer, batchPerTask,/) },
    ]);
    expect(issuesOf('model:\n  activaton: relu\n  colour: red\n')).toEqual([
      { path: 'model.activaton', message: 'unknown field; did you mean "activation"? (fields allowed in model: kind, layers, activation)' },
      { path: 'model.colour', message: 'unknown field (fields allowed in model: kind, layers, activation)' },
    ]);
  });

  test('every bad field is reported at once, and the error message lists them', () => {
    let err: RunSpecError | undefined;
    try {
      parseRunSpecText('batchPerTask: 0\noptimizer: { lr: 50 }\nseed: -1\n');
    } catch (e) {
      err = e as RunSpecError;
    }
    expect(err?.issues.map((i) => i.path).sort()).toEqual(['batchPerTask', 'optimizer.lr', 'seed']);
    expect(err?.message).toMatch(/batchPerTask: must be an integer from 1 to 4096 \(got 0\)/);
  });

  test('a spec that is not a mapping, or is empty, says so', () => {
    expect(issuesOf('- 784\n- 10\n')).toEqual([{ path: '', message: 'a run spec is a mapping of fields (name, dataset, model, optimizer, ...); got [784,10]' }]);
    expect(issuesOf('# nothing here\n')).toEqual([{ path: '(yaml)', message: expect.stringMatching(/the spec is empty/) }]);
    expect(issuesOf('~\n')[0].path).toBe('(yaml)');
  });
});

describe('YAML and JSON text', () => {
  test('a YAML syntax error names the line and column', () => {
    expect(issuesOf('name: a\nmodel:\n  layers: [784, 10\noptimizer: {}\n')).toEqual([
      { path: '(yaml)', message: 'line 4, column 1: Flow sequence in block collection must be sufficiently indented and end with a ]' },
    ]);
    expect(issuesOf('name: a\nmodel:\n\tlayers: [784, 10]\n')).toEqual([{ path: '(yaml)', message: 'line 3, column 1: Tabs are not allowed as indentation' }]);
  });

  test('a field given twice is an error, not "the last one wins"', () => {
    expect(issuesOf('batchPerTask: 32\nbatchPerTask: 64\n')).toEqual([{ path: '(yaml)', message: 'line 2, column 1: Map keys must be unique' }]);
  });

  test('JSON text works, tabs and all', () => {
    const spec = parseRunSpecText('{\n\t"name": "json-run",\n\t"model": { "layers": [784, 64, 10], "activation": "gelu" },\n\t"optimizer": { "kind": "sgd", "lr": 0.1 }\n}\n');
    expect(spec).toMatchObject({ name: 'json-run', model: { layers: [784, 64, 10], activation: 'gelu' }, optimizer: { kind: 'sgd', lr: 0.1 }, batchPerTask: 64 });
    expect(issuesOf('{"batchPerTask": 0}')).toEqual([{ path: 'batchPerTask', message: 'must be an integer from 1 to 4096 (got 0)' }]);
  });

  test.each(examples)('runSpecToYaml round-trips %s', (file) => {
    const spec = parseRunSpecText(readFileSync(join(examplesDir, file), 'utf8'));
    const yaml = runSpecToYaml(spec);
    expect(parseRunSpecText(yaml)).toEqual(spec);
    // An MLP's widths stay one short line; a layer list is one line per layer.
    if (spec.model.kind === 'mlp') expect(yaml).toMatch(/^ {2}layers: \[784(, \d+)+\]$/m);
    else expect(yaml).toMatch(/^ {4}- \{ ?kind: (conv2d|embedding)/m);
  });

  test('runSpecToYaml round-trips awkward values exactly', () => {
    const spec: RunSpec = parseRunSpec({ name: 'x: "quoted" # not a comment', optimizer: { kind: 'adamw', lr: 3.0000000000000004e-4, eps: 1e-12, weightDecay: 0 }, stop: { maxSamples: 123456789 } });
    expect(parseRunSpecText(runSpecToYaml(spec))).toEqual(spec);
  });
});

describe('local mode and compression in a spec', () => {
  const messageOf = (input: unknown) => {
    try {
      parseRunSpec(input);
    } catch (err) {
      if (err instanceof RunSpecError) return err.message;
      throw err;
    }
    throw new Error('accepted');
  };

  test('local mode defaults: AdamW inside, SGD with Nesterov momentum 0.9 and lr 0.7 outside; sync specs are unchanged', () => {
    const local = parseRunSpec({ sync: { mode: 'local', innerSteps: 16 }, optimizer: { lr: 3e-3 } });
    expect(local.optimizer).toEqual({ kind: 'adamw', lr: 3e-3 });
    expect(local.sync).toMatchObject({ mode: 'local', innerSteps: 16, outer: { lr: 0.7, momentum: 0.9, nesterov: true } });
    expect(parseRunSpec({ sync: { mode: 'local' }, optimizer: { kind: 'sgd', lr: 0.1 } }).optimizer.kind).toBe('sgd');
    const sync = parseRunSpec({});
    expect(sync.sync.mode).toBe('sync');
    expect(sync.optimizer.kind).toBe('adam');
    expect(sync.compression).toEqual({ up: 'none', down: 'none', block: 256, fraction: 0.01 });
  });

  test('a compression name sets both directions (top-k sends its deltas int8); a bad value names the field', () => {
    expect(parseRunSpec({ compression: 'int8' }).compression).toMatchObject({ up: 'int8', down: 'int8' });
    expect(parseRunSpec({ compression: 'topk' }).compression).toMatchObject({ up: 'topk', down: 'int8' });
    expect(parseRunSpec({ compression: { up: 'fp16' } }).compression).toMatchObject({ up: 'fp16', down: 'none' });
    expect(messageOf({ compression: 'int9' })).toBe('compression.up: must be one of none, fp16, int8, topk (got "int9")');
    expect(messageOf({ compression: { up: 'topk', fraction: 0.9 } })).toBe('compression.fraction: must be a number greater than 0 and at most 0.5 (got 0.9)');
    expect(messageOf({ sync: { mode: 'lcal' } })).toBe('sync.mode: must be one of sync, local (got "lcal")');
    expect(messageOf({ sync: { mode: 'local', innerSteps: 0 } })).toBe('sync.innerSteps: must be an integer from 1 to 100000 (got 0)');
    expect(messageOf({ sync: { mode: 'local' }, parallelism: { stages: 2 } })).toMatch(/^sync\.mode: local mode trains the whole model on each worker/);
    expect(messageOf({ compression: 'int8', parallelism: { stages: 2 } })).toMatch(/^compression: a pipeline run relays activations/);
  });
});
