// `npm start`: builds the pages if needed and starts the coordinator.
// Environment: PORT (3000), HOST (127.0.0.1 unless set), CROWDTRAIN_DATA_DIR (./data),
// CROWDTRAIN_DEFAULT_SPEC (a YAML or JSON run spec file for the run created when the store holds
// none; unset: the built-in MNIST run), and HTTPS (see HELP below and server/tls.ts).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { RunSpecError, type RunSpec } from '../shared/run-spec.ts';
import { parseRunSpecText } from '../shared/run-spec-text.ts';
import { buildApp } from './app.ts';
import { buildPagesIfStale } from './build-pages.ts';
import { fingerprintLines, loadTlsFiles, machineNames, selfSignedTls, TlsError, type TlsIdentity } from './tls.ts';

const HELP = `Usage: npm start [-- OPTIONS]   (or: tsx server/cli.ts [OPTIONS])

Starts the crowdtrain coordinator.

Options:
  --https          serve HTTPS with a self-signed certificate, made at first start and kept in
                   <data dir>/tls/ (its fingerprints are printed at every start)
  --cert FILE      serve HTTPS with this certificate (PEM, the chain after the certificate)
  --key FILE       ... and this private key (PEM, unencrypted); --cert and --key go together
  -h, --help       show this help

Environment:
  PORT                     port to listen on (3000)
  HOST                     address to listen on (127.0.0.1; 0.0.0.0 lets other machines in)
  CROWDTRAIN_DATA_DIR      state, checkpoints, datasets, caches (./data)
  CROWDTRAIN_HTTPS=1       as --https
  CROWDTRAIN_TLS_CERT      as --cert
  CROWDTRAIN_TLS_KEY       as --key
  CROWDTRAIN_ADMIN_TOKEN   the admin token (else one is made at first start and printed once)
  CROWDTRAIN_DEFAULT_SPEC  a run spec file for the run made when the data dir holds none
  CROWDTRAIN_PUBLIC_URL    the contributor URL the board shows (else the board's own origin)
  CROWDTRAIN_MAX_WORKERS_PER_ADDRESS, CROWDTRAIN_WORKER_ORIGINS, LOG_LEVEL: see the README

WebGPU needs a secure context: laptops opening http://<this machine>:3000 get no WebGPU and
compute on the CPU. Serve HTTPS for a classroom; the README says how to get a certificate the
laptops trust.`;

function usageError(message: string): never {
  console.error(`crowdtrain: ${message}\nRun with --help for the options.`);
  process.exit(2);
}

let args: { https?: boolean; cert?: string; key?: string; help?: boolean };
try {
  ({ values: args } = parseArgs({
    options: { https: { type: 'boolean' }, cert: { type: 'string' }, key: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
    allowPositionals: false,
  }));
} catch (err) {
  usageError((err as Error).message);
}
if (args.help) {
  console.log(HELP);
  process.exit(0);
}
// A flag wins over its environment variable.
const certFile = args.cert ?? (process.env.CROWDTRAIN_TLS_CERT || undefined);
const keyFile = args.key ?? (process.env.CROWDTRAIN_TLS_KEY || undefined);
const selfSigned = args.https === true || ['1', 'true', 'yes'].includes((process.env.CROWDTRAIN_HTTPS ?? '').toLowerCase());
if ((certFile === undefined) !== (keyFile === undefined)) {
  usageError(certFile === undefined ? `a key (${keyFile}) but no certificate: give --cert FILE (or CROWDTRAIN_TLS_CERT) too` : `a certificate (${certFile}) but no key: give --key FILE (or CROWDTRAIN_TLS_KEY) too`);
}

const root = resolve(import.meta.dirname, '..');
const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';
const dataDir = resolve(process.env.CROWDTRAIN_DATA_DIR ?? 'data');
const pagesDir = resolve(root, 'dist/pages');
const specFile = process.env.CROWDTRAIN_DEFAULT_SPEC || undefined;

if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be an integer in [0, 65535], got ${process.env.PORT}`);
  process.exit(2);
}

/** The spec file's run, or exits with one line naming the file and what is wrong with it. */
function readDefaultSpec(file: string): RunSpec {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    console.error(`crowdtrain: CROWDTRAIN_DEFAULT_SPEC=${file}: cannot read it: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
    process.exit(2);
  }
  try {
    return parseRunSpecText(text);
  } catch (err) {
    if (!(err instanceof RunSpecError)) throw err;
    console.error(`crowdtrain: CROWDTRAIN_DEFAULT_SPEC=${file} is not a valid run spec: ${err.message}`);
    process.exit(2);
  }
}
const defaultRun = specFile ? readDefaultSpec(resolve(specFile)) : undefined;

// Worker sockets: at most this many from one address (a classroom behind one NAT shares one),
// and the origins, besides the coordinator's own, whose pages may connect workers.
const capText = process.env.CROWDTRAIN_MAX_WORKERS_PER_ADDRESS;
const maxWorkersPerAddress = capText === undefined || capText === '' ? undefined : Number(capText);
if (maxWorkersPerAddress !== undefined && !(Number.isInteger(maxWorkersPerAddress) && maxWorkersPerAddress >= 1)) {
  console.error(`crowdtrain: CROWDTRAIN_MAX_WORKERS_PER_ADDRESS must be an integer >= 1, got ${capText}`);
  process.exit(2);
}
const workerOrigins = (process.env.CROWDTRAIN_WORKER_ORIGINS ?? '').split(',').map((o) => o.trim()).filter(Boolean);

// HTTPS: the operator's certificate when given (--https is then not needed), else the self-signed one.
let tls: TlsIdentity | undefined;
try {
  if (certFile !== undefined && keyFile !== undefined) tls = loadTlsFiles(resolve(certFile), resolve(keyFile));
  else if (selfSigned) {
    // HOST, when it names one address or name, is covered too (a DNS name the room uses, say).
    const names = host === '0.0.0.0' || host === '::' ? machineNames() : [...machineNames(), host];
    const { tls: made, made: how } = await selfSignedTls(dataDir, names);
    tls = made;
    if (how) console.log(`crowdtrain: ${how === 'new' ? 'made a self-signed certificate' : 'renewed the self-signed certificate (same key)'} for ${made.names.join(', ')}`);
  }
} catch (err) {
  if (!(err instanceof TlsError)) throw err;
  console.error(`crowdtrain: ${err.message}`);
  process.exit(2);
}

// CROWDTRAIN_SKIP_BUILD=1 serves the pages as they are (tests that need no pages use it).
if (process.env.CROWDTRAIN_SKIP_BUILD !== '1') await buildPagesIfStale(root, pagesDir, (m) => console.log(`crowdtrain: ${m}`));
let app: Awaited<ReturnType<typeof buildApp>>;
try {
  app = await buildApp({
    dataDir,
    pagesDir,
    ...(defaultRun ? { defaultRun } : {}),
    ...(maxWorkersPerAddress !== undefined ? { maxWorkersPerAddress } : {}),
    ...(workerOrigins.length ? { workerOrigins } : {}),
    ...(tls ? { https: { cert: tls.cert, key: tls.key } } : {}),
    logger: { level: process.env.LOG_LEVEL ?? 'warn' },
    adminToken: process.env.CROWDTRAIN_ADMIN_TOKEN || undefined,
    onAdminTokenCreated: (token) =>
      console.log(`crowdtrain: admin token (shown once, stored hashed; set CROWDTRAIN_ADMIN_TOKEN to choose your own):\n\n    ${token}\n`),
  });
} catch (err) {
  // A spec that parses can still not fit its dataset (an unknown name, the wrong input width).
  if (!(specFile && err instanceof RunSpecError)) throw err;
  console.error(`crowdtrain: CROWDTRAIN_DEFAULT_SPEC=${resolve(specFile)} does not fit its dataset: ${err.message}`);
  process.exit(2);
}
try {
  await app.listen({ port, host });
} catch (err) {
  console.error(`crowdtrain: could not listen on ${host}:${port}: ${(err as Error).message}`);
  process.exit(1);
}
// Before the banner: whoever reads it may stop the coordinator at once.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    void app.close().then(() => process.exit(0));
  });
}
const addr = app.server.address();
const scheme = tls ? 'https' : 'http';
const listening = typeof addr === 'object' && addr ? addr.port : port;
const wildcard = host === '0.0.0.0' || host === '::';
const urlOf = (name: string) => `${scheme}://${name.includes(':') ? `[${name}]` : name}:${listening}`;
const shown = urlOf(wildcard ? 'localhost' : host);
console.log(`crowdtrain is up: contribute at ${shown}/ , admin at ${shown}/admin (data in ${dataDir})`);
if (tls) {
  console.log(`crowdtrain: HTTPS with ${tls.certFile}, valid until ${tls.notAfter.toISOString().slice(0, 10)}\n    ${fingerprintLines(tls).join('\n    ')}`);
  // The addresses the room can reach (and the certificate covers): what to put on the projector.
  // A self-signed certificate keeps the addresses of networks left behind: show today's only.
  const here = new Set(machineNames().map((n) => n.toLowerCase()));
  const room = tls.names.filter((n) => !/^(localhost$|127\.|::1$)/i.test(n) && !n.startsWith('*') && (certFile !== undefined || here.has(n.toLowerCase())));
  if (wildcard && room.length) console.log(`crowdtrain: laptops in the room join at ${room.map((n) => `${urlOf(n.toLowerCase())}/`).join(' , ')}`);
  const publicUrl = process.env.CROWDTRAIN_PUBLIC_URL;
  if (publicUrl?.startsWith('http:')) console.log(`crowdtrain: CROWDTRAIN_PUBLIC_URL is ${publicUrl}, plain http: the board sends the room where there is no WebGPU; make it https`);
} else if (wildcard) {
  console.log('crowdtrain: other machines reach this one over plain HTTP, where browsers give no WebGPU (they fall back to the CPU) and the admin token crosses the network in clear: start with --https, or see "HTTPS" in the README');
}
