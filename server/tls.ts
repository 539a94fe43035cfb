// The coordinator's TLS identity: a certificate and key read from files the operator names, or a
// self-signed one made for a quick classroom and kept in the data directory, with the fingerprints
// people check. Serving HTTPS itself is Fastify's (app.ts passes the identity to it).
//
// Why HTTPS at all: WebGPU exists only in a secure context, and a page at http://<teacher's
// address>:3000 is not one (only localhost is), so every laptop in the room would fall back to the
// CPU; and the admin token would cross the room in clear text.
import { createHash, createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { generate } from 'selfsigned';

/** A certificate and its key, ready for `https.createServer`, with what people check by eye. */
export interface TlsIdentity {
  /** PEM: the server certificate first, then any intermediates. */
  cert: string;
  /** PEM, unencrypted. */
  key: string;
  /** SHA-256 of the certificate (DER), colon-separated hex as browsers show it. */
  certSha256: string;
  /** SHA-256 of the public key (SubjectPublicKeyInfo, DER), base64: what Chromium's --ignore-certificate-errors-spki-list takes. */
  spkiSha256: string;
  /** DNS names and IP addresses the certificate covers. */
  names: string[];
  notAfter: Date;
  /** Where it came from: the operator's files, or the self-signed pair in the data directory. */
  certFile: string;
  keyFile: string;
}

/** Bad TLS input; the message names the file and what is wrong with it. */
export class TlsError extends Error {
  override name = 'TlsError';
}

/**
 * Reads and checks an operator's certificate and key (PEM files).
 * @example const tls = loadTlsFiles('/etc/crowdtrain/cert.pem', '/etc/crowdtrain/key.pem');
 */
export function loadTlsFiles(certFile: string, keyFile: string): TlsIdentity {
  return identityOf(readPem(certFile, 'certificate'), readPem(keyFile, 'key'), certFile, keyFile);
}

/** Renewed this long before it expires (same key, so the SPKI fingerprint does not change). */
const RENEW_BEFORE_MS = 30 * 24 * 3600_000;
const VALID_DAYS = 365;

/**
 * The self-signed identity kept in `<dataDir>/tls/`: made at first use, then reused, so its
 * fingerprint stays the same across restarts. When the machine has a name or address that the
 * stored certificate does not cover (a new network), or it nears expiry, a new certificate is
 * made for the same key: the SPKI fingerprint stays, the certificate's changes.
 * @example const { tls, made } = await selfSignedTls('./data'); console.log(tls.spkiSha256);
 */
export async function selfSignedTls(dataDir: string, names: string[] = machineNames(), now = new Date()): Promise<{ tls: TlsIdentity; made: 'new' | 'renewed' | false }> {
  const dir = join(dataDir, 'tls');
  const certFile = join(dir, 'self-signed-cert.pem');
  const keyFile = join(dir, 'self-signed-key.pem');
  let key: KeyObject | undefined;
  if (existsSync(certFile) || existsSync(keyFile)) {
    const hint = `; delete ${dir} to make a new self-signed certificate (its fingerprint will change)`;
    let stored: TlsIdentity;
    try {
      stored = loadTlsFiles(certFile, keyFile);
    } catch (err) {
      throw new TlsError(`${(err as Error).message}${hint}`);
    }
    const covered = new Set(stored.names.map(canonicalName));
    if (names.every((n) => covered.has(canonicalName(n))) && stored.notAfter.getTime() - now.getTime() > RENEW_BEFORE_MS) return { tls: stored, made: false };
    key = createPrivateKey(stored.key);
    const merged = new Map([...stored.names, ...names].map((n) => [canonicalName(n), n]));
    names = [...merged.values()];
  }
  const made = key ? 'renewed' : 'new';
  const pems = await generate([{ name: 'commonName', value: 'crowdtrain (self-signed)' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 3600_000), // an hour back: laptops whose clocks run slow
    notAfterDate: new Date(now.getTime() + VALID_DAYS * 24 * 3600_000),
    ...(key ? { keyPair: { privateKey: key.export({ type: 'pkcs8', format: 'pem' }) as string, publicKey: createPublicKey(key).export({ type: 'spki', format: 'pem' }) as string } } : {}),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: names.map((n) => (isIP(n) ? { type: 7 as const, ip: n } : { type: 2 as const, value: n })) },
    ],
  });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Key first, each through a rename: a crash midway never leaves a certificate without its key.
  writeAtomic(keyFile, pems.private, 0o600);
  writeAtomic(certFile, pems.cert, 0o644);
  return { tls: identityOf(pems.cert, pems.private, certFile, keyFile), made };
}

/**
 * The names a laptop in the room may use for this machine: localhost, the loopback addresses,
 * the host name (and its .local form, as mDNS announces it) and its LAN IPv4 addresses.
 * IPv6 LAN addresses are left out: nobody types one, and privacy addresses change daily, which
 * would renew the certificate (and send every laptop through the warning again) each day.
 */
export function machineNames(): string[] {
  const names = ['localhost', '127.0.0.1', '::1'];
  const host = hostname();
  if (host && host !== 'localhost') names.push(host, ...(host.includes('.') ? [] : [`${host}.local`]));
  names.push(...lanAddresses());
  return [...new Set(names)];
}

/** This machine's non-loopback IPv4 addresses. */
export function lanAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') out.push(a.address);
  }
  return out;
}

/** One line per fingerprint, for the start-up banner. */
export function fingerprintLines(tls: TlsIdentity): string[] {
  return [`certificate SHA-256: ${tls.certSha256}`, `public key (SPKI) SHA-256, base64: ${tls.spkiSha256}`];
}

function readPem(file: string, what: 'certificate' | 'key'): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'it is a directory' : e.message;
    throw new TlsError(`cannot read the TLS ${what} file ${file}: ${why}`);
  }
}

function identityOf(certPem: string, keyPem: string, certFile: string, keyFile: string): TlsIdentity {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certPem);
  } catch (err) {
    throw new TlsError(`the TLS certificate file ${certFile} holds no PEM certificate (${(err as Error).message})`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    const msg = (err as Error).message;
    const encrypted = /ENCRYPTED PRIVATE KEY|Proc-Type: 4,ENCRYPTED/.test(keyPem) || /passphrase/i.test(msg);
    const why = encrypted ? 'the key is encrypted with a passphrase; give it unencrypted (for example `openssl pkey -in KEY -out KEY.plain`)' : `it holds no PEM private key (${msg})`;
    throw new TlsError(`the TLS key file ${keyFile}: ${why}`);
  }
  if (!x509.checkPrivateKey(key)) throw new TlsError(`the TLS key in ${keyFile} does not match the certificate in ${certFile} (they are from different pairs)`);
  const spki = x509.publicKey.export({ type: 'spki', format: 'der' });
  return {
    cert: certPem,
    key: keyPem,
    certSha256: x509.fingerprint256,
    spkiSha256: createHash('sha256').update(spki).digest('base64'),
    names: subjectNames(x509),
    notAfter: new Date(x509.validTo),
    certFile,
    keyFile,
  };
}

/** The DNS names and IP addresses in the subjectAltName ("DNS:localhost, IP Address:127.0.0.1"). */
function subjectNames(x509: X509Certificate): string[] {
  const out: string[] = [];
  for (const part of (x509.subjectAltName ?? '').split(', ')) {
    const m = /^(DNS|IP Address):(.+)$/.exec(part.trim());
    if (m) out.push(isIP(m[2]) === 6 ? canonicalName(m[2]).slice(1, -1) : m[2]);
  }
  return out;
}

/** Names compared as a certificate matches them: DNS names without case, IPv6 in one spelling. */
function canonicalName(n: string): string {
  if (isIP(n) === 6) return new URL(`http://[${n}]/`).hostname;
  return n.toLowerCase();
}

function writeAtomic(file: string, text: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, file);
}
