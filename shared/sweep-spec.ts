// The sweep spec: a base run spec plus `sweep:` (how trials' values are chosen, which metric
// judges them, when a trial is given up early), and the trial spec each choice of values makes.
// Sampling and stopping live in server/sweeps/; what each method and policy does: docs/sweeps.md.
import { parseRunSpec, RunSpecError, type RunSpec, type RunSpecInput } from './run-spec.ts';
import { readSpecText } from './run-spec-text.ts';

export type ParamValue = number | string | boolean;

export type ParamDist =
  | { choice: ParamValue[] }
  /** Uniform in [lo, hi). */
  | { uniform: [number, number] }
  /** Log-uniform between the two bounds (both > 0). */
  | { loguniform: [number, number] }
  /** Uniform in [lo, hi] rounded to a multiple of q (kept inside the bounds). */
  | { quniform: [number, number, number] }
  /** Integer in [lo, hi). */
  | { randint: [number, number] };

export const SWEEP_METHODS = ['grid', 'random', 'bayesian'] as const;
export const SWEEP_METRICS = ['accuracy', 'loss'] as const;
export const STOP_POLICIES = ['median', 'bandit', 'truncation', 'asha'] as const;

export interface EarlyTermination {
  policy: (typeof STOP_POLICIES)[number];
  /** Judge a trial at every evaluationInterval-th of its points (its evaluations), ... */
  evaluationInterval: number;
  /** ... never on its first delayEvaluation points. */
  delayEvaluation: number;
  /** bandit: stop when worse than best / (1 + slackFactor) (maximize) or best · (1 + slackFactor) (minimize). */
  slackFactor?: number;
  /** bandit: stop when worse than best ∓ slackAmount. */
  slackAmount?: number;
  /** truncation: the worst this % of the trials at the same step are stopped (1..99). */
  truncationPercentage?: number;
  /** asha: η, the rung spacing and the 1/η promoted at each rung. */
  reductionFactor?: number;
  /** asha: the first rung, in steps (rounds committed). */
  minResource?: number;
  /** asha: no rung at or past this step. */
  maxResource?: number;
}

export interface SweepSettings {
  method: (typeof SWEEP_METHODS)[number];
  metric: (typeof SWEEP_METRICS)[number];
  goal: 'maximize' | 'minimize';
  parameters: Record<string, ParamDist>;
  maxTrials: number;
  maxConcurrent: number;
  earlyTermination?: EarlyTermination;
  seed: number;
  /** The sweep ends when a trial's metric reaches it. */
  target?: number;
}

export interface SweepSpec {
  name: string;
  /** The run spec every trial starts from (as given: defaults are filled per trial by parseRunSpec). */
  base: RunSpecInput;
  sweep: SweepSettings;
}

export class SweepSpecError extends Error {
  override name = 'SweepSpecError';
  constructor(readonly issues: { path: string; message: string }[]) {
    super(issues.map((i) => `${i.path || '(sweep spec)'}: ${i.message}`).join('; '));
  }
}

/** Trials a sweep runs when maxTrials is not given (grid: every combination). */
export const DEFAULT_MAX_TRIALS = 10;
/** Trials running at once when maxConcurrent is not given. */
export const DEFAULT_MAX_CONCURRENT = 2;
/** Most trials one sweep may have. */
export const MAX_TRIALS = 10_000;

/** True when metric a is better than b for this goal (ties are not better). */
export function isBetter(goal: SweepSettings['goal'], a: number, b: number): boolean {
  return goal === 'maximize' ? a > b : a < b;
}

/** True when a trial's metric meets the sweep's target (never when there is no target). */
export function reachesTarget(settings: Pick<SweepSettings, 'goal' | 'target'>, metric: number): boolean {
  if (settings.target === undefined) return false;
  return settings.goal === 'maximize' ? metric >= settings.target : metric <= settings.target;
}

/** Number of trials a grid sweep has: the product of its choices' lengths (0 for another method). */
export function gridSize(parameters: Record<string, ParamDist>): number {
  let n = 1;
  for (const d of Object.values(parameters)) {
    if (!('choice' in d)) return 0;
    n *= d.choice.length;
  }
  return n;
}

/** The multiples of q inside [lo, hi], smallest and largest (null when there is none). */
export function quniformRange(lo: number, hi: number, q: number): [number, number] | null {
  const first = Math.ceil(lo / q - 1e-9);
  const last = Math.floor(hi / q + 1e-9);
  if (first > last) return null;
  return [roundDecimal(first * q), roundDecimal(last * q)];
}

/** k·q without the binary tail (0.1 · 3 is 0.3, not 0.30000000000000004). */
export function roundDecimal(x: number): number {
  return Number(x.toPrecision(12));
}

type Issues = { path: string; message: string }[];

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isInt = (v: unknown): v is number => Number.isInteger(v);
const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v) ?? String(v));

function parseDist(path: string, raw: unknown, issues: Issues): ParamDist | null {
  const kinds = ['choice', 'uniform', 'loguniform', 'quniform', 'randint'];
  if (!isObject(raw) || Object.keys(raw).length !== 1 || !kinds.includes(Object.keys(raw)[0])) {
    issues.push({ path, message: `must be one of { choice: [...] }, { uniform: [lo, hi] }, { loguniform: [lo, hi] }, { quniform: [lo, hi, q] }, { randint: [lo, hi] } (got ${show(raw)})` });
    return null;
  }
  const kind = Object.keys(raw)[0];
  const args = raw[kind];
  const at = `${path}.${kind}`;
  if (kind === 'choice') {
    if (!Array.isArray(args) || args.length === 0 || !args.every((a) => isNum(a) || typeof a === 'string' || typeof a === 'boolean')) {
      issues.push({ path: at, message: `must be a non-empty list of numbers, strings or booleans (got ${show(args)})` });
      return null;
    }
    if (new Set(args).size !== args.length) {
      issues.push({ path: at, message: `lists a value twice (got ${show(args)})` });
      return null;
    }
    return { choice: [...args] as ParamValue[] };
  }
  const arity = kind === 'quniform' ? 3 : 2;
  if (!Array.isArray(args) || args.length !== arity || !args.every(isNum)) {
    issues.push({ path: at, message: `must be ${kind === 'quniform' ? '[lo, hi, q]' : '[lo, hi]'}, finite numbers (got ${show(args)})` });
    return null;
  }
  const [lo, hi] = args as number[];
  if (!(lo < hi)) {
    issues.push({ path: at, message: `lo must be below hi (got [${lo}, ${hi}])` });
    return null;
  }
  if (kind === 'loguniform' && !(lo > 0)) {
    issues.push({ path: at, message: `both bounds must be above 0 (got [${lo}, ${hi}])` });
    return null;
  }
  if (kind === 'randint' && !(isInt(lo) && isInt(hi))) {
    issues.push({ path: at, message: `bounds must be integers (got [${lo}, ${hi}])` });
    return null;
  }
  if (kind === 'quniform') {
    const q = (args as number[])[2];
    if (!(q > 0)) {
      issues.push({ path: at, message: `q must be above 0 (got ${q})` });
      return null;
    }
    if (!quniformRange(lo, hi, q)) {
      issues.push({ path: at, message: `no multiple of ${q} lies in [${lo}, ${hi}]` });
      return null;
    }
    return { quniform: [lo, hi, q] };
  }
  return { [kind]: [lo, hi] } as ParamDist;
}

function parseEarlyTermination(raw: unknown, issues: Issues): EarlyTermination | undefined {
  const path = 'sweep.earlyTermination';
  if (raw === undefined || raw === null) return undefined;
  if (!isObject(raw)) {
    issues.push({ path, message: `must be an object with a policy: ${STOP_POLICIES.join(', ')}` });
    return undefined;
  }
  const known = ['policy', 'evaluationInterval', 'delayEvaluation', 'slackFactor', 'slackAmount', 'truncationPercentage', 'reductionFactor', 'minResource', 'maxResource'];
  for (const key of Object.keys(raw)) if (!known.includes(key)) issues.push({ path: `${path}.${key}`, message: `unknown field; known: ${known.join(', ')}` });
  const policy = raw.policy;
  if (!(STOP_POLICIES as readonly unknown[]).includes(policy)) {
    issues.push({ path: `${path}.policy`, message: `must be one of ${STOP_POLICIES.join(', ')} (got ${show(policy)})` });
    return undefined;
  }
  const p = policy as EarlyTermination['policy'];
  const int = (key: string, min: number, dflt: number | undefined): number | undefined => {
    const v = raw[key];
    if (v === undefined) return dflt;
    if (!isInt(v) || (v as number) < min) {
      issues.push({ path: `${path}.${key}`, message: `must be an integer of at least ${min} (got ${show(v)})` });
      return dflt;
    }
    return v as number;
  };
  const positive = (key: string): number | undefined => {
    const v = raw[key];
    if (v === undefined) return undefined;
    if (!isNum(v) || v < 0) {
      issues.push({ path: `${path}.${key}`, message: `must be a number of at least 0 (got ${show(v)})` });
      return undefined;
    }
    return v;
  };
  const out: EarlyTermination = {
    policy: p,
    evaluationInterval: int('evaluationInterval', 1, 1)!,
    // HyperDrive's defaults: median stopping waits 5 evaluations, the others none.
    delayEvaluation: int('delayEvaluation', 0, p === 'median' ? 5 : 0)!,
  };
  const onlyFor = (key: string, policies: EarlyTermination['policy'][]) => {
    if (raw[key] !== undefined && !policies.includes(p)) issues.push({ path: `${path}.${key}`, message: `applies to the ${policies.join(', ')} policy only, not ${p}` });
  };
  onlyFor('slackFactor', ['bandit']);
  onlyFor('slackAmount', ['bandit']);
  onlyFor('truncationPercentage', ['truncation']);
  onlyFor('reductionFactor', ['asha']);
  onlyFor('minResource', ['asha']);
  onlyFor('maxResource', ['asha']);
  if (p === 'bandit') {
    const f = positive('slackFactor');
    const a = positive('slackAmount');
    if ((raw.slackFactor === undefined) === (raw.slackAmount === undefined)) {
      issues.push({ path, message: 'the bandit policy takes exactly one of slackFactor and slackAmount' });
    }
    if (f !== undefined) out.slackFactor = f;
    if (a !== undefined) out.slackAmount = a;
  }
  if (p === 'truncation') {
    const t = raw.truncationPercentage;
    if (t === undefined) out.truncationPercentage = 5;
    else if (!isInt(t) || (t as number) < 1 || (t as number) > 99) issues.push({ path: `${path}.truncationPercentage`, message: `must be an integer from 1 to 99 (got ${show(t)})` });
    else out.truncationPercentage = t as number;
  }
  if (p === 'asha') {
    out.reductionFactor = int('reductionFactor', 2, 3);
    out.minResource = int('minResource', 1, 1);
    const max = int('maxResource', 1, undefined);
    if (max !== undefined) {
      if (max <= out.minResource!) issues.push({ path: `${path}.maxResource`, message: `must be above minResource ${out.minResource} (got ${max})` });
      out.maxResource = max;
    }
  }
  return out;
}

function parseSettings(raw: unknown, issues: Issues): SweepSettings | null {
  if (!isObject(raw)) {
    issues.push({ path: 'sweep', message: 'missing: a sweep spec needs `sweep: { method, metric, parameters, ... }`' });
    return null;
  }
  const known = ['method', 'metric', 'goal', 'parameters', 'maxTrials', 'maxConcurrent', 'earlyTermination', 'seed', 'target'];
  for (const key of Object.keys(raw)) if (!known.includes(key)) issues.push({ path: `sweep.${key}`, message: `unknown field; known: ${known.join(', ')}` });
  const method = raw.method ?? 'random';
  if (!(SWEEP_METHODS as readonly unknown[]).includes(method)) issues.push({ path: 'sweep.method', message: `must be one of ${SWEEP_METHODS.join(', ')} (got ${show(method)})` });
  const metric = raw.metric ?? 'accuracy';
  if (!(SWEEP_METRICS as readonly unknown[]).includes(metric)) issues.push({ path: 'sweep.metric', message: `must be one of ${SWEEP_METRICS.join(', ')} (got ${show(metric)})` });
  const goal = raw.goal ?? (metric === 'loss' ? 'minimize' : 'maximize');
  if (goal !== 'maximize' && goal !== 'minimize') issues.push({ path: 'sweep.goal', message: `must be maximize or minimize (got ${show(goal)})` });

  const parameters: Record<string, ParamDist> = {};
  if (!isObject(raw.parameters) || Object.keys(raw.parameters).length === 0) {
    issues.push({ path: 'sweep.parameters', message: 'must name at least one field path, e.g. `optimizer.lr: { loguniform: [0.0001, 0.1] }`' });
  } else {
    for (const [key, d] of Object.entries(raw.parameters)) {
      const dist = parseDist(`sweep.parameters.${key}`, d, issues);
      if (dist) parameters[key] = dist;
    }
  }
  if (method === 'grid') {
    for (const [key, d] of Object.entries(parameters)) {
      if (!('choice' in d)) issues.push({ path: `sweep.parameters.${key}`, message: `the grid method takes choice lists only (got ${Object.keys(d)[0]}): use random or bayesian for ranges` });
    }
  }
  const count = (key: string, dflt: number): number => {
    const v = raw[key];
    if (v === undefined) return dflt;
    if (!isInt(v) || (v as number) < 1 || (v as number) > MAX_TRIALS) {
      issues.push({ path: `sweep.${key}`, message: `must be an integer from 1 to ${MAX_TRIALS} (got ${show(v)})` });
      return dflt;
    }
    return v as number;
  };
  const combos = method === 'grid' ? gridSize(parameters) : 0;
  const maxTrials = count('maxTrials', method === 'grid' && combos > 0 ? Math.min(combos, MAX_TRIALS) : DEFAULT_MAX_TRIALS);
  const maxConcurrent = count('maxConcurrent', DEFAULT_MAX_CONCURRENT);
  const seed = raw.seed ?? 1;
  if (!isInt(seed) || (seed as number) < 0 || (seed as number) > 2 ** 32 - 1) issues.push({ path: 'sweep.seed', message: `must be an integer from 0 to ${2 ** 32 - 1} (got ${show(seed)})` });
  if (raw.target !== undefined && !isNum(raw.target)) issues.push({ path: 'sweep.target', message: `must be a number (got ${show(raw.target)})` });
  const earlyTermination = parseEarlyTermination(raw.earlyTermination, issues);
  const out: SweepSettings = {
    method: method as SweepSettings['method'],
    metric: metric as SweepSettings['metric'],
    goal: goal as SweepSettings['goal'],
    parameters,
    maxTrials,
    maxConcurrent,
    seed: seed as number,
  };
  if (earlyTermination) out.earlyTermination = earlyTermination;
  if (isNum(raw.target)) out.target = raw.target;
  return out;
}

/** A few values a distribution can give, to check that each is valid in the field it sets. */
function probeValues(d: ParamDist): ParamValue[] {
  if ('choice' in d) return d.choice;
  if ('uniform' in d) {
    const [lo, hi] = d.uniform;
    // An interior point that is no integer, so that a range on an integer field is refused.
    return [lo, lo + (hi - lo) * 0.381966, hi];
  }
  if ('loguniform' in d) {
    const [lo, hi] = d.loguniform;
    return [lo, Math.exp(Math.log(lo) + (Math.log(hi) - Math.log(lo)) * 0.381966), hi];
  }
  if ('quniform' in d) {
    const [lo, hi, q] = d.quniform;
    const r = quniformRange(lo, hi, q)!;
    return r[0] === r[1] ? [r[0]] : r;
  }
  const [lo, hi] = d.randint;
  return hi - 1 === lo ? [lo] : [lo, hi - 1];
}

/**
 * Validates a sweep spec (a YAML/JSON object: the base run spec's fields, the sweep's `name`, and
 * `sweep: {...}`); throws SweepSpecError naming every bad field. Each swept path is checked by
 * building trial specs at its bounds (and an interior point) or each of its choices.
 * @example parseSweepSpec({ name: 'lr', optimizer: { kind: 'adam' }, sweep: { method: 'random', metric: 'accuracy', parameters: { 'optimizer.lr': { loguniform: [1e-4, 1e-1] } }, maxTrials: 8 } })
 */
export function parseSweepSpec(input: unknown): SweepSpec {
  if (!isObject(input)) throw new SweepSpecError([{ path: '', message: 'a sweep spec must be an object: { name, ...run spec fields..., sweep: {...} }' }]);
  const issues: Issues = [];
  const { sweep: rawSweep, ...base } = input;
  const name = typeof base.name === 'string' && base.name.trim() !== '' ? base.name.trim() : 'sweep';
  try {
    parseRunSpec(base);
  } catch (err) {
    if (!(err instanceof RunSpecError)) throw err;
    issues.push(...err.issues);
  }
  const settings = parseSettings(rawSweep, issues);
  if (issues.length > 0 || !settings) throw new SweepSpecError(issues);
  const spec: SweepSpec = { name, base: base as RunSpecInput, sweep: settings };
  for (const [path, dist] of Object.entries(settings.parameters)) {
    for (const value of probeValues(dist)) {
      try {
        trialSpec(spec, { [path]: value });
      } catch (err) {
        if (err instanceof SweepSpecError) {
          issues.push(...err.issues.map((i) => ({ path: `sweep.parameters.${path}`, message: i.message })));
          break;
        }
        throw err;
      }
    }
  }
  if (issues.length > 0) throw new SweepSpecError(issues);
  return spec;
}

/**
 * Sets `value` at a dotted path of a copy of `root` (digits index lists); a container the base
 * leaves out is taken from `filled` (the base with its defaults), so that 'model.layers.1' and
 * 'sync.outer.lr' reach the default model and outer optimizer. Returns why not, or null.
 */
function setPath(root: Record<string, unknown>, filled: () => Record<string, unknown>, path: string, value: ParamValue): string | null {
  const keys = path.split('.');
  if (keys.some((k) => k === '' || k === '__proto__' || k === 'constructor' || k === 'prototype')) return `"${path}" is not a field path`;
  let node: Record<string, unknown> | unknown[] = root;
  let defaults: unknown = filled;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    const here = keys.slice(0, i + 1).join('.');
    defaults = i === 0 ? filled()[key] : isObject(defaults) ? defaults[key] : Array.isArray(defaults) ? defaults[Number(key)] : undefined;
    if (Array.isArray(node)) {
      if (!/^\d+$/.test(key) || Number(key) >= node.length) return `${keys.slice(0, i).join('.')} is a list of ${node.length}: it has no element ${key}`;
      const idx = Number(key);
      if (i === keys.length - 1) {
        node[idx] = value;
        return null;
      }
      const child: unknown = node[idx];
      if (!isObject(child) && !Array.isArray(child)) return `${here} is ${show(child)}, not an object or a list`;
      node[idx] = Array.isArray(child) ? [...child] : { ...child };
      node = node[idx] as Record<string, unknown> | unknown[];
      continue;
    }
    if (i === keys.length - 1) {
      node[key] = value;
      return null;
    }
    const child = node[key] ?? defaults;
    if (child === undefined) node[key] = {};
    else if (isObject(child)) node[key] = { ...child };
    else if (Array.isArray(child)) node[key] = [...child];
    else return `${here} is ${show(child)}, not an object or a list`;
    node = node[key] as Record<string, unknown> | unknown[];
  }
  return null;
}

/**
 * The run spec of one trial: the base with each value set at its dotted field path
 * ('optimizer.lr', 'sync.innerSteps', 'model.layers.1'; 'model.hidden' sets every hidden width
 * of an MLP shorthand), validated by parseRunSpec. Throws SweepSpecError naming the path.
 * @example trialSpec(spec, { 'optimizer.lr': 0.003 }, 'lr-sweep-2').optimizer.lr === 0.003
 */
export function trialSpec(sweep: SweepSpec, values: Record<string, ParamValue>, trialName?: string): RunSpec {
  const input: Record<string, unknown> = { ...(sweep.base as Record<string, unknown>) };
  let defaults: Record<string, unknown> | null = null;
  const filled = (): Record<string, unknown> => {
    if (defaults) return defaults;
    try {
      defaults = parseRunSpec(sweep.base) as unknown as Record<string, unknown>;
    } catch (err) {
      if (!(err instanceof RunSpecError)) throw err;
      defaults = {}; // the base's own mistakes are reported by the parseRunSpec below
    }
    return defaults;
  };
  const issues: Issues = [];
  for (const [path, value] of Object.entries(values)) {
    if (path === 'model.hidden') {
      const model = isObject(input.model) ? input.model : (filled().model as Record<string, unknown>);
      const kind = model.kind ?? 'mlp';
      const layers = model.layers;
      if (kind !== 'mlp' || !Array.isArray(layers) || !layers.every(isNum) || layers.length < 3) {
        issues.push({ path, message: 'model.hidden sets the hidden widths of an MLP shorthand (model.layers: [in, hidden..., out]); this model has none: name the layer field instead, e.g. model.layers.0.out' });
        continue;
      }
      input.model = { ...model, layers: layers.map((w, i) => (i === 0 || i === layers.length - 1 ? w : value)) };
      continue;
    }
    const why = setPath(input, filled, path, value);
    if (why) issues.push({ path, message: `no field ${path}: ${why}` });
  }
  if (trialName !== undefined) input.name = trialName;
  if (issues.length > 0) throw new SweepSpecError(issues);
  try {
    return parseRunSpec(input);
  } catch (err) {
    if (!(err instanceof RunSpecError)) throw err;
    const shown = Object.entries(values).map(([k, v]) => `${k} = ${show(v)}`).join(', ');
    throw new SweepSpecError(err.issues.map((i) => ({ path: i.path, message: `with ${shown}: ${i.message}` })));
  }
}

/** A sweep spec file (YAML or JSON) to a SweepSpec; YAML syntax errors come back as path '(yaml)'. */
export function parseSweepSpecText(text: string): SweepSpec {
  let value: unknown;
  try {
    value = readSpecText(text);
  } catch (err) {
    if (err instanceof RunSpecError) throw new SweepSpecError(err.issues);
    throw err;
  }
  return parseSweepSpec(value);
}
