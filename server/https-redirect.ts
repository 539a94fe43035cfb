// Plain http on the HTTPS port: a browser sent there (an old bookmark, an address typed without
// https://) gets a redirect to the same address over https instead of a dropped connection.
// Only the first bytes of a connection are looked at; TLS itself stays with Node's https server.
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';

/** First byte of a TLS record carrying a handshake (a ClientHello opens every TLS connection). */
const TLS_HANDSHAKE = 0x16;
/** A plain-http request head longer than this is not answered. */
const MAX_HEAD_BYTES = 8192;
/** A connection that sends nothing for this long before TLS or a request head is closed. */
const FIRST_BYTES_TIMEOUT_MS = 10_000;

/**
 * Makes `server` answer plain http requests with 307 to https (same host, port and path).
 * Call it once the server is made, before it listens.
 * @example answerPlainHttp(app.server as https.Server);
 */
export function answerPlainHttp(server: HttpsServer): void {
  // Node's TLS server takes raw sockets on 'connection'; they go to it once their first bytes
  // say TLS. Node feeds bytes already read (unshifted) to the TLS layer before reading more.
  const tlsListeners = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    const ignore = () => {}; // a client gone before it said anything is no error of ours
    const silent = () => socket.destroy();
    socket.on('error', ignore);
    socket.setTimeout(FIRST_BYTES_TIMEOUT_MS);
    socket.once('timeout', silent);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      if (head.length === 0 && chunk[0] === TLS_HANDSHAKE) {
        socket.off('data', onData);
        socket.pause();
        socket.unshift(chunk);
        socket.setTimeout(0);
        socket.off('timeout', silent);
        socket.off('error', ignore);
        for (const listener of tlsListeners) listener.call(server, socket);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0 && head.length < MAX_HEAD_BYTES) return;
      socket.off('data', onData);
      socket.end(redirectFor(head.subarray(0, end < 0 ? head.length : end).toString('latin1')));
    };
    socket.on('data', onData);
  });
}

/** The answer to a plain-http request head: 307 to its https address, or 400 when it names none. */
function redirectFor(head: string): string {
  const [requestLine, ...lines] = head.split('\r\n');
  const target = /^[A-Z]+ (\/\S*) HTTP\/1\.[01]$/.exec(requestLine)?.[1];
  const host = lines.find((l) => /^host:/i.test(l))?.slice(5).trim();
  if (!target || !host || !/^[A-Za-z0-9.\-:[\]]+$/.test(host)) {
    const body = 'This coordinator speaks https only: open its address with https://\n';
    return `HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
  }
  // Temporary, and not cached: the same port may serve plain http on another day.
  return `HTTP/1.1 307 Temporary Redirect\r\nLocation: https://${host}${target}\r\nCache-Control: no-store\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
}
