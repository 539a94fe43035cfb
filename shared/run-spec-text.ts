// Run specs as text: YAML or JSON (JSON is YAML) in, YAML out. The CLI, the REST route and the
// admin page all read spec files through here; validation itself is parseRunSpec's.
import { Document, isMap, isSeq, LineCounter, parseDocument, visit } from 'yaml';
import { parseRunSpec, RunSpecError, type RunSpec, type RunSpecInput } from './run-spec.ts';

/** Largest spec text accepted: a spec is a few hundred bytes, so anything near this is a mistake. */
export const MAX_SPEC_TEXT = 64 * 1024;

/**
 * Text to a plain value, without validating it as a spec. Syntax errors throw RunSpecError
 * with path '(yaml)' and the line and column of the first error.
 */
export function readSpecText(text: string): unknown {
  if (text.length > MAX_SPEC_TEXT) {
    throw new RunSpecError([{ path: '(yaml)', message: `the spec is ${text.length} characters; at most ${MAX_SPEC_TEXT} are allowed` }]);
  }
  const lineCounter = new LineCounter();
  // uniqueKeys: a field given twice is an error, not "the last one wins".
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    const { line, col } = lineCounter.linePos(err.pos[0]);
    const message = err.message.split('\n')[0].replace(/\s+at line \d+, column \d+:?$/, '');
    throw new RunSpecError([{ path: '(yaml)', message: `line ${line}, column ${col}: ${message}` }]);
  }
  // An empty file is more likely a mistake than a request for the default run.
  const value: unknown = doc.toJS({ maxAliasCount: 100 });
  if (value === null || value === undefined) throw new RunSpecError([{ path: '(yaml)', message: 'the spec is empty; it needs at least a name, e.g. "name: my-run"' }]);
  return value;
}

/**
 * Parses a YAML or JSON run spec, fills defaults and validates it.
 * Throws RunSpecError: path '(yaml)' for syntax, else one issue per bad field.
 * @example parseRunSpecText('name: demo\noptimizer: { kind: sgd, lr: 0.1 }').optimizer.lr // 0.1
 */
export function parseRunSpecText(text: string): RunSpec {
  return parseRunSpec(readSpecText(text));
}

/**
 * A spec as YAML, lists of numbers on one line (`layers: [784, 128, 10]`).
 * @example runSpecToYaml(parseRunSpec({})) // 'name: mnist-mlp\ndataset: mnist\n...'
 */
export function runSpecToYaml(spec: RunSpec | RunSpecInput): string {
  const doc = new Document(spec);
  visit(doc, {
    // Lists of numbers on one line ([784, 128, 10]); a list of layers one layer a line, each in braces.
    Seq(_key, node) {
      if (!isSeq(node)) return;
      const ofMaps = node.items.some((item) => isMap(item));
      node.flow = !ofMaps;
      if (ofMaps) for (const item of node.items) if (isMap(item)) item.flow = true;
    },
  });
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}
