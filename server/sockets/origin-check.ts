// The Origin check on the worker handshake: which web pages may open a worker socket. It guards
// visitors' browsers, not the coordinator; what a worker may send is checked elsewhere.
//
// A browser always sends Origin on a WebSocket or cross-origin request, and a page cannot forge
// it, so refusing foreign origins stops another web site from quietly turning its visitors'
// tabs into workers (or into a flood) against this coordinator. A request without Origin comes
// from a program (the Node worker, the submit CLI, a benchmark): it is accepted, because such a
// client could send any Origin it likes, so refusing it would protect nothing.

/**
 * Why a handshake's Origin is refused, or null when it is accepted: none given, the page came
 * from this coordinator (the same host and port as the Host header), or it is in `allowed`.
 * @example originRefusal('https://evil.example', 'class.example:3000', new Set()) // "pages on https://evil.example ..."
 */
export function originRefusal(origin: string | undefined, host: string | undefined, allowed: ReadonlySet<string>): string | null {
  if (origin === undefined) return null;
  let page: URL;
  try {
    page = new URL(origin);
  } catch {
    return `a page with the origin ${JSON.stringify(origin.slice(0, 100))} may not join as a worker`;
  }
  if (allowed.has(page.origin)) return null;
  if (host !== undefined && sameHost(page, host)) return null;
  return `pages on ${page.origin} may not join this coordinator as workers: open the coordinator's own join page${host ? ` (on ${host})` : ''}, or ask its operator to add ${page.origin} to the allowed worker origins`;
}

/** The page's host and port against a Host header, a default port written out or not. */
function sameHost(page: URL, host: string): boolean {
  try {
    return new URL(`${page.protocol}//${host}`).host === page.host;
  } catch {
    return false;
  }
}

/** Origins as a browser sends them ("https://a.example:8443", no path), from an operator's list. */
export function normalizeOrigins(origins: readonly string[]): Set<string> {
  return new Set(origins.map((o) => new URL(o).origin));
}
