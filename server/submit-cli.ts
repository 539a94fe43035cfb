// The `crowdtrain` command for scripts: `crowdtrain submit spec.yaml --server URL --token T`
// checks a run spec file against the same schema the coordinator uses, then creates the run
// through the admin REST route and prints its URL; `crowdtrain sweep sweep.yaml ...` does the
// same for a sweep. Starting a coordinator is cli.ts's job.
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { RunSpecError } from '../shared/run-spec.ts';
import { parseRunSpecText } from '../shared/run-spec-text.ts';
import { parseSweepSpecText, SweepSpecError } from '../shared/sweep-spec.ts';

/** Exit statuses: 0 done, 1 the server refused or could not be reached, 2 a usage or spec error. */
export const EXIT = { ok: 0, server: 1, usage: 2 } as const;

export const DEFAULT_SERVER = 'http://127.0.0.1:3000';

export const USAGE = `Usage:
  crowdtrain submit <spec.yaml|spec.json> [--server URL] [--token TOKEN]
      Checks the run spec, then creates the run on the coordinator and prints its URL.
  crowdtrain sweep <sweep.yaml|sweep.json> [--server URL] [--token TOKEN]
      Checks the sweep spec, then starts the sweep (its trials are runs) and prints its URL.
  crowdtrain validate <spec.yaml|spec.json>
      Only checks the run spec (no server needed).
  crowdtrain worker [--server URL] [--backend auto|webgpu|cpu] [--threads N] ...
      Contributes this machine to a run (see crowdtrain worker --help).
  crowdtrain --help

Options:
  -s, --server URL    the coordinator (default: $CROWDTRAIN_SERVER, else ${DEFAULT_SERVER})
  -t, --token TOKEN   the admin token (default: $CROWDTRAIN_ADMIN_TOKEN)
  -h, --help          this text

Exit status: 0 done; 1 the server refused the request or could not be reached;
2 a usage error or an invalid spec (every bad field is listed).
Example specs are in examples/*.yaml.`;

export interface CliOutput {
  out(text: string): void;
  err(text: string): void;
}

const stdio: CliOutput = {
  out: (text) => void process.stdout.write(`${text}\n`),
  err: (text) => void process.stderr.write(`${text}\n`),
};

interface ServerError {
  error?: string;
  message?: string;
  issues?: { path: string; message: string }[];
}

function printIssues(io: CliOutput, issues: { path: string; message: string }[]): void {
  for (const i of issues) io.err(`  ${i.path || '(spec)'}: ${i.message}`);
}

/** What a command submits: a run or a sweep. */
interface SpecKind {
  /** 'run spec' or 'sweep spec', for messages. */
  what: string;
  /** The admin route, relative to the server's base. */
  endpoint: string;
  /** Throws RunSpecError or SweepSpecError naming every bad field. */
  check(text: string): void;
}

const RUN: SpecKind = { what: 'run spec', endpoint: 'api/runs', check: (text) => void parseRunSpecText(text) };
const SWEEP: SpecKind = { what: 'sweep spec', endpoint: 'api/sweeps', check: (text) => void parseSweepSpecText(text) };

/** Reads and checks a spec file; prints what is wrong and returns undefined when it is not valid. */
async function readSpec(file: string, io: CliOutput, kind: SpecKind = RUN): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    io.err(`crowdtrain: cannot read ${file}: ${(err as Error).message}`);
    return undefined;
  }
  try {
    kind.check(text);
  } catch (err) {
    if (!(err instanceof RunSpecError) && !(err instanceof SweepSpecError)) throw err;
    io.err(`crowdtrain: ${file} is not a valid ${kind.what}:`);
    printIssues(io, err.issues);
    return undefined;
  }
  return text;
}

function serverBase(raw: string, io: CliOutput): URL | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    io.err(`crowdtrain: --server must be a URL such as ${DEFAULT_SERVER}, got "${raw}"`);
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    io.err(`crowdtrain: --server must be an http:// or https:// URL, got "${raw}"`);
    return undefined;
  }
  // A trailing slash, so that a coordinator behind a path prefix keeps it: /prefix/ + api/runs.
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  url.search = '';
  url.hash = '';
  return url;
}

async function submit(file: string, server: URL, token: string, fetchImpl: typeof fetch, io: CliOutput, kind: SpecKind = RUN): Promise<number> {
  const text = await readSpec(file, io, kind);
  if (text === undefined) return EXIT.usage;
  const endpoint = new URL(kind.endpoint, server);
  let res: Response;
  try {
    res = await fetchImpl(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/yaml', authorization: `Bearer ${token}`, accept: 'application/json' },
      body: text,
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    io.err(`crowdtrain: could not reach the coordinator at ${server.origin}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    return EXIT.server;
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  if ((res.status === 201 || res.status === 200) && kind === SWEEP) {
    const { sweep, url } = (body ?? {}) as { sweep?: { id?: string; name?: string; trials?: unknown[] }; url?: string };
    if (!sweep?.id) {
      io.err(`crowdtrain: the server answered ${res.status} without a sweep; is ${server.origin} a crowdtrain coordinator?`);
      return EXIT.server;
    }
    io.err(`crowdtrain: started sweep "${sweep.name ?? sweep.id}" (${sweep.id}), ${sweep.trials?.length ?? 0} trial(s) running`);
    io.out(url ? new URL(url, server).href : new URL(`api/sweeps/${sweep.id}`, server).href);
    return EXIT.ok;
  }
  if (res.status === 201 || res.status === 200) {
    const { run, url } = (body ?? {}) as { run?: { id?: string; name?: string }; url?: string };
    if (!run?.id) {
      io.err(`crowdtrain: the server answered ${res.status} without a run; is ${server.origin} a crowdtrain coordinator?`);
      return EXIT.server;
    }
    io.err(`crowdtrain: created run "${run.name ?? run.id}" (${run.id})`);
    io.out(url ? new URL(url, server).href : new URL(`admin#run=${run.id}`, server).href);
    return EXIT.ok;
  }
  const e = (body ?? {}) as ServerError;
  if (res.status === 401 || res.status === 403) {
    io.err(`crowdtrain: the server refused the admin token (HTTP ${res.status}); check --token or CROWDTRAIN_ADMIN_TOKEN`);
  } else if (res.status === 404 && e.error !== 'unknown_dataset') {
    io.err(`crowdtrain: ${endpoint.href} was not found (HTTP 404); is ${server.origin} a crowdtrain coordinator?`);
  } else {
    io.err(`crowdtrain: the server refused the ${kind === SWEEP ? 'sweep' : 'run'} (HTTP ${res.status}${e.error ? ` ${e.error}` : ''})${e.issues?.length ? ':' : `: ${e.message ?? res.statusText}`}`);
    if (e.issues?.length) printIssues(io, e.issues);
  }
  return EXIT.server;
}

/**
 * Runs the command line `argv` (without node and the script) and returns the exit status.
 * @example process.exitCode = await main(['submit', 'examples/mnist-mlp.yaml', '--server', 'http://127.0.0.1:3000'], process.env);
 */
export async function main(argv: string[], env: Record<string, string | undefined> = process.env, fetchImpl: typeof fetch = fetch, io: CliOutput = stdio): Promise<number> {
  let parsed: ReturnType<typeof parseCli>;
  try {
    parsed = parseCli(argv);
  } catch (err) {
    io.err(`crowdtrain: ${(err as Error).message}\n\n${USAGE}`);
    return EXIT.usage;
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help || command === 'help' || command === undefined) {
    (command === undefined && !values.help ? io.err : io.out)(USAGE);
    return command === undefined && !values.help ? EXIT.usage : EXIT.ok;
  }
  if (command !== 'submit' && command !== 'validate' && command !== 'sweep') {
    io.err(`crowdtrain: unknown command "${command}"\n\n${USAGE}`);
    return EXIT.usage;
  }
  if (rest.length !== 1) {
    io.err(`crowdtrain: ${command} takes one spec file, got ${rest.length}\n\n${USAGE}`);
    return EXIT.usage;
  }
  const [file] = rest;
  if (command === 'validate') {
    if ((await readSpec(file, io)) === undefined) return EXIT.usage;
    io.out(`${file}: a valid run spec`);
    return EXIT.ok;
  }
  const server = serverBase(values.server ?? env.CROWDTRAIN_SERVER ?? DEFAULT_SERVER, io);
  if (!server) return EXIT.usage;
  const token = values.token ?? env.CROWDTRAIN_ADMIN_TOKEN;
  if (!token) {
    io.err('crowdtrain: no admin token: pass --token, or set CROWDTRAIN_ADMIN_TOKEN (the coordinator printed it at its first start)');
    return EXIT.usage;
  }
  return submit(file, server, token, fetchImpl, io, command === 'sweep' ? SWEEP : RUN);
}

function parseCli(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      server: { type: 'string', short: 's' },
      token: { type: 'string', short: 't' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

// Run directly (`tsx server/submit-cli.ts submit ...`) as well as through bin/crowdtrain.mjs.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
