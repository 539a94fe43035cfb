// A raw Engine.IO 4 / Socket.IO 5 connection over a WebSocket, for sending frames no proper
// client would: wrong attachment counts, placeholders that point nowhere, broken JSON, floods.
// It answers the server's pings and nothing else; what to send is up to the caller.
import { createRequire } from 'node:module';

/** The part of ws's WebSocket used here (ws is socket.io's own transport). */
export interface Ws {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string | Uint8Array, cb?: (err?: Error) => void): void;
  close(): void;
  terminate(): void;
  on(event: 'open' | 'close' | 'error' | 'message', fn: (...args: unknown[]) => void): void;
}
const WebSocket = createRequire(import.meta.url)('ws') as new (url: string, opts?: { headers?: Record<string, string>; maxPayload?: number }) => Ws;

export interface RawSocket {
  ws: Ws;
  /** Resolves when the Engine.IO handshake is done (the server's open packet arrived). */
  opened: Promise<boolean>;
  /** Resolves with the time (Date.now()) the connection closed. */
  closed: Promise<number>;
  isOpen(): boolean;
  /** Text messages from the server after the open packet (pings excluded). */
  received: string[];
  /** Sends one Engine.IO message (`40/workers,{...}` joins the workers' namespace). */
  packet(text: string): void;
  /** Sends a raw frame as it is. */
  frame(data: string | Uint8Array): void;
}

/**
 * @example const s = openRaw('http://127.0.0.1:3000'); await s.opened; s.packet('40/workers,{"protocol":3}');
 */
export function openRaw(url: string, opts: { headers?: Record<string, string>; keep?: number } = {}): RawSocket {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`, { headers: opts.headers, maxPayload: 64 << 20 });
  const received: string[] = [];
  const keep = opts.keep ?? 50;
  let open = false;
  const opened = new Promise<boolean>((resolve) => {
    ws.on('message', (data: unknown, isBinary: unknown) => {
      if (isBinary) return;
      const text = String(data);
      if (text.startsWith('0')) {
        open = true;
        return resolve(true);
      }
      if (text === '2') return ws.send('3');
      if (received.length < keep) received.push(text);
    });
    ws.on('close', () => resolve(false));
    ws.on('error', () => resolve(false));
  });
  const closed = new Promise<number>((resolve) => ws.on('close', () => ((open = false), resolve(Date.now()))));
  ws.on('error', () => {});
  const send = (data: string | Uint8Array) => {
    if (ws.readyState === 1) ws.send(data);
  };
  return { ws, opened, closed, isOpen: () => open && ws.readyState === 1, received, packet: send, frame: send };
}

/** Waits until `check()` or `ms` pass; true when the check passed. */
export async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}
