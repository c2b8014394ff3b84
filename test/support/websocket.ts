// Real WebSocket origins and clients (the ws library) for the tunnel tests: an
// echo origin that negotiates subprotocols and permessage-deflate, and a client
// that reports the HTTP answer when the server does not switch.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';

export interface WsOrigin {
  readonly port: number;
  /** Server-side sockets, in connection order. */
  readonly sockets: WebSocket[];
  /** Requests that reached the HTTP server without upgrading (method, url, upgrade header). */
  readonly plain: { method: string; url: string; upgrade: string | undefined }[];
  /** The headers of each upgrade request, as the origin received them. */
  readonly upgrades: http.IncomingHttpHeaders[];
  [Symbol.asyncDispose](): Promise<void>;
}

export interface WsOriginOptions {
  /** Subprotocols the origin accepts, in its preference order. */
  readonly protocols?: readonly string[];
  /** Called for each accepted socket; the default echoes every message. */
  readonly onConnection?: (ws: WebSocket) => void;
  /** Serve over TLS (wss) with this certificate and key. */
  readonly tls?: { readonly cert: string; readonly key: string };
}

/** An HTTP server whose upgrades are WebSockets echoing every message (text stays text). */
export async function startWsOrigin(opts: WsOriginOptions = {}): Promise<WsOrigin> {
  const sockets: WebSocket[] = [];
  const plain: WsOrigin['plain'] = [];
  const upgrades: http.IncomingHttpHeaders[] = [];
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: true,
    maxPayload: 256 * 1024 * 1024,
    handleProtocols: (offered) => opts.protocols?.find((p) => offered.has(p)) ?? false,
  });
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    plain.push({ method: req.method ?? '', url: req.url ?? '', upgrade: req.headers.upgrade });
    res.end(`plain ${req.url}\n`);
  };
  const server =
    opts.tls === undefined ? http.createServer(onRequest) : https.createServer(opts.tls, onRequest);
  server.on('upgrade', (req, socket, head) => {
    upgrades.push(req.headers);
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.push(track(ws));
      if (opts.onConnection) opts.onConnection(ws);
      else ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    sockets,
    plain,
    upgrades,
    async [Symbol.asyncDispose]() {
      for (const ws of wss.clients) ws.terminate();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export interface Refusal {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** Opens a WebSocket; resolves with it once open, or with the HTTP answer when there is no 101. */
export function openWs(
  url: string,
  protocols: string[] = [],
  options: WebSocket.ClientOptions = {},
): Promise<WebSocket | Refusal> {
  return new Promise((resolve, reject) => {
    const ws = track(new WebSocket(url, protocols, { perMessageDeflate: false, ...options }));
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    ws.once('error', reject);
  });
}

/** Resolves with the next message (and whether it was binary). */
export function nextMessage(ws: WebSocket): Promise<{ data: Buffer; binary: boolean }> {
  return new Promise((resolve, reject) => {
    ws.once('message', (data, binary) => resolve({ data: data as Buffer, binary }));
    ws.once('error', reject);
  });
}

type Close = { code: number; reason: string };
const closes = new WeakMap<WebSocket, Promise<Close>>();

/** Records how `ws` closes from its creation on, so that closed() answers truly however late it is asked. */
function track(ws: WebSocket): WebSocket {
  const close = new Promise<Close>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  closes.set(ws, close);
  return ws;
}

/** Resolves with the close code and reason once the socket closes (at once if it has). */
export function closed(ws: WebSocket): Promise<Close> {
  if (!closes.has(ws)) {
    if (ws.readyState === WebSocket.CLOSED)
      throw new Error('the socket closed before its close was recorded');
    track(ws);
  }
  return closes.get(ws) as Promise<Close>;
}

export const isRefusal = (x: WebSocket | Refusal): x is Refusal => !(x instanceof WebSocket);

export { WebSocket };
