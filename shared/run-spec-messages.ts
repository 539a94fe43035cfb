// Plain-words messages for run spec validation: each names the field, the allowed range or
// choices read from the schema itself (so they cannot drift from it), and the value given.
// Only wording lives here; the schema and its defaults live in run-spec.ts.
import type { z } from 'zod';

export interface SpecIssue {
  /** Dotted path of the field, e.g. `optimizer.lr` or `model.layers.0`; '' for the whole spec. */
  path: string;
  message: string;
}

type Issue = z.core.$ZodIssue;
type Key = PropertyKey;

/** The slice of a zod 4 schema's definition this file reads. */
interface SchemaNode {
  _zod: {
    def: {
      type: string;
      shape?: Record<string, SchemaNode>;
      innerType?: SchemaNode;
      element?: SchemaNode;
      in?: SchemaNode;
      out?: SchemaNode;
      options?: SchemaNode[];
      values?: unknown[];
      checks?: { _zod: { def: CheckDef } }[];
    };
  };
}

interface CheckDef {
  check: string;
  value?: number;
  inclusive?: boolean;
  minimum?: number;
  maximum?: number;
  format?: string;
}

/** Extra words for fields whose range alone does not say what they are. */
const FIELD_HINTS: Record<string, string> = {
  'model.layers': 'the layer widths from inputs to classes, e.g. [784, 128, 10]',
};

/**
 * The schema of the field at `path`, looking through defaults, optionals and pipes; in a union
 * of objects told apart by `kind` (the model's two forms), the one the input's value takes.
 */
function schemaAt(root: SchemaNode, path: readonly Key[], input: unknown): SchemaNode | undefined {
  let node: SchemaNode | undefined = unwrap(root, input);
  let value = input;
  for (const key of path) {
    if (!node) return undefined;
    value = value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[key] : undefined;
    const def: SchemaNode['_zod']['def'] = node._zod.def;
    if (def.type === 'object') node = def.shape?.[String(key)];
    else if (def.type === 'array') node = def.element;
    else return undefined;
    node = node && unwrap(node, value);
  }
  return node;
}

/** The `kind` a model-like value takes: its own, else 'layers' for a list of layer objects, else 'mlp'. */
function kindOf(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const v = value as { kind?: unknown; layers?: unknown };
  if (typeof v.kind === 'string') return v.kind;
  return Array.isArray(v.layers) && v.layers.some((l) => l !== null && typeof l === 'object') ? 'layers' : 'mlp';
}

function unwrap(node: SchemaNode, value?: unknown): SchemaNode {
  let n = node;
  for (;;) {
    const def = n._zod.def;
    if (def.innerType && ['default', 'optional', 'nullable', 'prefault', 'readonly', 'catch', 'nonoptional'].includes(def.type)) n = def.innerType;
    else if (def.type === 'pipe' && def.in) n = def.in._zod.def.type === 'transform' && def.out ? def.out : def.in;
    else if (def.type === 'union' && def.options?.length) {
      const kind = kindOf(value);
      n = def.options.find((o) => (unwrap(o)._zod.def.shape?.kind as SchemaNode | undefined)?._zod.def.values?.includes(kind)) ?? def.options[0];
    } else return n;
  }
}

function checksOf(node: SchemaNode): CheckDef[] {
  return (node._zod.def.checks ?? []).map((c) => c._zod.def);
}

/** "an integer from 1 to 4096", "a number greater than 0 and at most 10", … */
function describeNumber(node: SchemaNode): string {
  const checks = checksOf(node);
  const int = checks.some((c) => c.check === 'number_format' && /int/.test(c.format ?? ''));
  const lo = checks.find((c) => c.check === 'greater_than');
  const hi = checks.find((c) => c.check === 'less_than');
  const noun = int ? 'an integer' : 'a number';
  if (lo && hi && lo.inclusive && hi.inclusive) return `${noun} from ${lo.value} to ${hi.value}`;
  const parts: string[] = [];
  if (lo) parts.push(lo.inclusive ? `at least ${lo.value}` : `greater than ${lo.value}`);
  if (hi) parts.push(hi.inclusive ? `at most ${hi.value}` : `below ${hi.value}`);
  if (!parts.length) return noun;
  return `${noun} ${parts[0].startsWith('at ') ? 'of ' : ''}${parts.join(' and ')}`;
}

/** "2 to 16 entries", "1 to 80 characters". */
function describeLength(node: SchemaNode, unit: string): string {
  const checks = checksOf(node);
  const lo = checks.find((c) => c.check === 'min_length')?.minimum;
  const hi = checks.find((c) => c.check === 'max_length')?.maximum;
  if (lo !== undefined && hi !== undefined) return `${lo} to ${hi} ${unit}`;
  if (lo !== undefined) return `at least ${lo} ${unit}`;
  if (hi !== undefined) return `at most ${hi} ${unit}`;
  return unit;
}

/** What the field must be, in words, or undefined when the schema says nothing useful. */
function describeField(node: SchemaNode | undefined): string | undefined {
  if (!node) return undefined;
  switch (node._zod.def.type) {
    case 'number':
      return describeNumber(node);
    case 'array':
      return `a list of ${describeLength(node, 'entries')}`;
    case 'string':
      return `text of ${describeLength(node, 'characters')}`;
    case 'object':
      return `a mapping with the fields ${Object.keys(node._zod.def.shape ?? {}).join(', ')}`;
    default:
      return undefined;
  }
}

function valueAt(input: unknown, path: readonly Key[]): unknown {
  let v = input;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<Key, unknown>)[key];
  }
  return v;
}

/** `v` as JSON when that is short; undefined for a long one or one nested too deep to write (a spec may be anything). */
function shortJson(v: unknown): string | undefined {
  try {
    const s = JSON.stringify(v);
    return s.length <= 200 ? s : undefined;
  } catch {
    return undefined;
  }
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return (v.length <= 8 && shortJson(v)) || `a list of ${v.length} entries`;
  if (typeof v === 'object') return 'a mapping';
  const s = typeof v === 'string' ? JSON.stringify(v) : String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Levenshtein distance, for "did you mean" on misspelt field names. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const next = Math.min(row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = row[j];
      row[j] = next;
    }
  }
  return row[b.length];
}

function closest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  return bestD <= Math.max(1, Math.floor(key.length / 4)) ? best : undefined;
}

/**
 * Rewrites one zod issue into messages that name the field, what it allows, and what it got.
 * @example describeIssue(issue, RunSpecSchema, input) // [{ path: 'optimizer.lr', message: 'must be a number greater than 0 and at most 10 (got 50)' }]
 */
export function describeIssue(issue: Issue, schema: z.ZodType, input: unknown): SpecIssue[] {
  const root = schema as unknown as SchemaNode;
  const path = issue.path as Key[];
  const dotted = path.map(String).join('.');
  const field = schemaAt(root, path, input);
  const got = valueAt(input, path);
  const hint = FIELD_HINTS[dotted] ? `: ${FIELD_HINTS[dotted]}` : '';

  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = Object.keys(field?._zod.def.shape ?? {});
      return issue.keys.map((key) => {
        const guess = closest(key, known);
        const where = dotted ? `in ${dotted}` : 'in a run spec';
        return {
          path: [...path, key].map(String).join('.'),
          message: `unknown field${guess ? `; did you mean "${guess}"?` : ''} (fields allowed ${where}: ${known.join(', ')})`,
        };
      });
    }
    case 'too_big':
    case 'too_small':
    case 'invalid_type': {
      if (issue.code === 'invalid_type' && issue.expected === 'object' && !dotted) {
        return [{ path: '', message: `a run spec is a mapping of fields (name, dataset, model, optimizer, ...); got ${show(got)}` }];
      }
      const what = describeField(field);
      if (!what) break;
      const type = field?._zod.def.type;
      const gotText = type === 'array' && Array.isArray(got) ? plural(got.length, 'entry', 'entries') : type === 'string' && typeof got === 'string' ? plural(got.length, 'character', 'characters') : show(got);
      return [{ path: dotted, message: `must be ${what}${hint} (got ${gotText})` }];
    }
    case 'invalid_format':
      return [{ path: dotted, message: `${issue.message} (got ${show(got)})` }];
    case 'invalid_value': {
      const choices = issue.values.map((v) => (typeof v === 'string' ? v : String(v))).join(', ');
      return [{ path: dotted, message: `must be one of ${choices} (got ${show(got)})` }];
    }
    default:
      break;
  }
  return [{ path: dotted, message: issue.message }];
}
