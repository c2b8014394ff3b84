/**
 * Origin behaviours on 127.0.0.1 (random free ports) for the sidecar's network tests.
 *
 * - `startHttpOrigin()`: a well-behaved HTTP/1.1 origin (node:http) that echoes the
 *   request as JSON, streams large bodies, digests large uploads, can delay its
 *   headers, and records every request.
 * - `closedPort()`: a port on which nothing listens (verified: connect → ECONNREFUSED).
 * - Raw TCP misbehaviours (node:net, no HTTP parsing beyond "has the request head
 *   arrived"): `resetOnAccept`, `finOnAccept`, `silent`, `finWithoutResponse`,
 *   `resetAfterRequest`, `resetMidResponse`, `stallMidBody`, `garbage`, `slowHeaders`.
 *   They work as well under a TLS client: there the "request" is the ClientHello, so
 *   e.g. `silent` is a stalled TLS handshake and `finWithoutResponse` a FIN during it.
 *
 * Observed on Linux 6.18 / Node 24 / undici 8 (see test/network/fixtures.test.ts):
 *
 * | fixture              | undici.request error                                | connected? |
 * |----------------------|-----------------------------------------------------|------------|
 * | closedPort           | ECONNREFUSED, syscall connect                       | no         |
 * | resetOnAccept        | ECONNRESET, syscall connect (see note)              | no         |
 * | finOnAccept          | UND_ERR_SOCKET "other side closed"                  | yes        |
 * | finWithoutResponse   | UND_ERR_SOCKET "other side closed"                  | yes        |
 * | resetAfterRequest    | ECONNRESET, syscall read                            | yes        |
 * | resetMidResponse     | status 200, then on the body: ECONNRESET (read)     | yes        |
 * | stallMidBody         | status 200, then on the body: UND_ERR_BODY_TIMEOUT  | yes        |
 * | silent               | UND_ERR_HEADERS_TIMEOUT                             | yes        |
 * | garbage              | HTTPParserError, `code` undefined                   | yes        |
 * | slowHeaders(ms)      | 200 after ms                                        | yes        |
 *
 * Under a TLS client (https URL to the same fixture): silent → UND_ERR_CONNECT_TIMEOUT
 * (connect timeout covers the handshake), finWithoutResponse → ECONNRESET "Client
 * network socket disconnected before secure TLS connection was established",
 * resetAfterRequest → ECONNRESET (syscall read), garbage → ERR_SSL_WRONG_VERSION_NUMBER;
 * all four as undici connect errors.
 *
 * Note on resetOnAccept: the kernel completed the handshake, but on loopback the RST
 * is already there when the client's event loop first looks at the socket, so Node
 * reports the connect itself as failed (10/10 here). With a slower or remote origin
 * the client could see `connected` first and then ECONNRESET on read.
 *
 * Note on timers: undici's headers/body timeouts (and its connect timeout) run on a
 * ~1 s resolution timer: 100 ms configured fired after up to ~1 s here.
 *
 * ("connected?" = undici's `undici:client:connected` diagnostics channel fired.)
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';

export interface RecordedRequest {
  method: string;
  /** Path and query, as sent. */
  url: string;
  headers: http.IncomingHttpHeaders;
  bodyBytes: number;
  at: number;
}

export interface HttpOriginOptions {
  /** Delay before the response head of every request (also per request: `?delay=MS`). */
  headersDelayMs?: number;
  host?: '127.0.0.1' | '::1';
  /** Listen on this port (e.g. to bring a stopped origin back on the same port); default a free one. */
  port?: number;
}

export interface HttpOriginHandle {
  readonly host: string;
  readonly port: number;
  /** `http://127.0.0.1:PORT` (IPv6 hosts bracketed). */
  readonly url: string;
  /** Every request that reached the origin, in arrival order (recorded after its body was read). */
  readonly requests: readonly RecordedRequest[];
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** JSON body of the echo route. */
export interface EchoResponse {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  bodyBytes: number;
  /** Hex SHA-256 of the request body. */
  bodySha256: string;
}

const CHUNK = Buffer.alloc(64 * 1024, 0x61); // 'a'

/** Writes `total` bytes of 'a' with back-pressure. */
async function streamBytes(res: http.ServerResponse, total: number): Promise<void> {
  let left = total;
  while (left > 0 && !res.destroyed) {
    const n = Math.min(left, CHUNK.length);
    left -= n;
    if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    }
  }
  res.end();
}

function bracket(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * A well-behaved HTTP origin. Routes (any method):
 * - `GET /bytes/N` streams N bytes of `a` (`content-length: N`, sent in 64 KiB writes).
 * - anything else: reads the whole request body, answers `200` with an {@link EchoResponse}.
 * Query parameters on any route: `delay=MS` (wait before the head), `status=N`.
 */
export async function startHttpOrigin(opts: HttpOriginOptions = {}): Promise<HttpOriginHandle> {
  const host = opts.host ?? '127.0.0.1';
  const requests: RecordedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    const hash = createHash('sha256');
    let bodyBytes = 0;
    req.on('data', (chunk: Buffer) => {
      bodyBytes += chunk.length;
      hash.update(chunk);
    });
    req.on('error', () => {});
    req.on('end', () => {
      const url = req.url ?? '/';
      const u = new URL(url, 'http://origin.invalid');
      requests.push({ method: req.method ?? '', url, headers: req.headers, bodyBytes, at: Date.now() });
      const delay = Number(u.searchParams.get('delay') ?? opts.headersDelayMs ?? 0);
      const status = Number(u.searchParams.get('status') ?? 200);
      const respond = () => {
        if (res.destroyed) return;
        const bytes = /^\/bytes\/(\d+)$/.exec(u.pathname);
        if (bytes?.[1] !== undefined) {
          const total = Number(bytes[1]);
          res.writeHead(status, { 'content-type': 'application/octet-stream', 'content-length': total });
          void streamBytes(res, total);
          return;
        }
        const echo: EchoResponse = {
          method: req.method ?? '',
          url,
          headers: req.headers,
          bodyBytes,
          bodySha256: hash.digest('hex'),
        };
        const body = JSON.stringify(echo);
        res.writeHead(status, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
      };
      if (delay > 0) {
        const t = setTimeout(() => {
          timers.delete(t);
          respond();
        }, delay);
        timers.add(t);
      } else {
        respond();
      }
    });
  });
  await listen(server, host, opts.port);
  const port = (server.address() as net.AddressInfo).port;
  const close = async (): Promise<void> => {
    for (const t of timers) clearTimeout(t);
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    host,
    port,
    url: `http://${bracket(host)}:${port}`,
    requests,
    close,
    [Symbol.asyncDispose]: close,
  };
}

function listen(server: net.Server, host: string, port = 0): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Resolves to the error code of one plain `net.connect` to host:port, or
 * `'connected'`, or `'timeout'` after `timeoutMs`.
 */
export function probeConnect(port: number, host = '127.0.0.1', timeoutMs = 300): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    const t = setTimeout(() => {
      s.destroy();
      resolve('timeout');
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve('connected');
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(t);
      resolve(err.code ?? err.message);
    });
  });
}

/**
 * A port on 127.0.0.1 on which nothing listens: bound to an ephemeral port, closed,
 * then verified to refuse a connection (ECONNREFUSED). Tries a few ports at most.
 */
export async function closedPort(): Promise<number> {
  for (let i = 0; i < 5; i++) {
    const s = net.createServer();
    await listen(s, '127.0.0.1');
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => s.close(() => resolve()));
    if ((await probeConnect(port)) === 'ECONNREFUSED') return port;
  }
  throw new Error('could not find a closed port on 127.0.0.1 in 5 tries');
}

export interface TcpOriginHandle {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Bytes received so far, over all connections. */
  readonly bytesReceived: number;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** What a raw origin does with each accepted socket. */
export type TcpBehaviour = (socket: net.Socket, timers: Set<NodeJS.Timeout>) => void;

/** A raw TCP origin on 127.0.0.1 running `behaviour` on every accepted socket. */
export async function startTcpOrigin(
  behaviour: TcpBehaviour,
  opts: { host?: '127.0.0.1' | '::1' } = {},
): Promise<TcpOriginHandle> {
  const host = opts.host ?? '127.0.0.1';
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let connections = 0;
  let bytesReceived = 0;
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => {
      bytesReceived += d.length;
    });
    behaviour(socket, timers);
  });
  await listen(server, host);
  const port = (server.address() as net.AddressInfo).port;
  const close = async (): Promise<void> => {
    for (const t of timers) clearTimeout(t);
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    host,
    port,
    url: `http://${bracket(host)}:${port}`,
    get connections() {
      return connections;
    },
    get bytesReceived() {
      return bytesReceived;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * Calls `fn` once the request head (`\r\n\r\n`) has arrived, or on the first bytes when
 * `firstBytes` or when they start a TLS handshake record (0x16: a ClientHello), so that
 * every fixture also acts on a TLS client.
 */
function onRequestHead(socket: net.Socket, fn: () => void, firstBytes = false): void {
  let buf = '';
  const onData = (d: Buffer) => {
    const tlsHello = buf === '' && d[0] === 0x16;
    buf += d.toString('latin1');
    if (firstBytes || tlsHello || buf.includes('\r\n\r\n')) {
      socket.off('data', onData);
      fn();
    }
  };
  socket.on('data', onData);
}

function later(timers: Set<NodeJS.Timeout>, ms: number, fn: () => void): void {
  const t = setTimeout(() => {
    timers.delete(t);
    fn();
  }, ms);
  timers.add(t);
}

/** RST immediately on accept (`resetAndDestroy`): the client's TCP connect has already succeeded. */
export function resetOnAccept(): Promise<TcpOriginHandle> {
  return startTcpOrigin((s) => {
    s.resetAndDestroy();
  });
}

/** FIN immediately on accept, before anything is read. */
export function finOnAccept(): Promise<TcpOriginHandle> {
  return startTcpOrigin((s) => {
    s.end();
  });
}

/** Accepts and reads everything, never answers (→ headers timeout / 536; under TLS: stalled handshake). */
export function silent(): Promise<TcpOriginHandle> {
  return startTcpOrigin(() => {});
}

/** Reads the request head (or, under TLS, the ClientHello), then closes with FIN without answering. */
export function finWithoutResponse(): Promise<TcpOriginHandle> {
  return startTcpOrigin((s) => {
    onRequestHead(s, () => s.end(), true);
  });
}

/** Reads the request head, then RST. */
export function resetAfterRequest(): Promise<TcpOriginHandle> {
  return startTcpOrigin((s) => {
    onRequestHead(s, () => s.resetAndDestroy());
  });
}

/**
 * Reads the request head, sends a head announcing `contentLength` bytes and the first
 * `sentBytes` of them, then RST after `afterMs`.
 */
export function resetMidResponse(
  opts: { contentLength?: number; sentBytes?: number; afterMs?: number } = {},
): Promise<TcpOriginHandle> {
  const total = opts.contentLength ?? 100_000;
  const sent = opts.sentBytes ?? 1000;
  return startTcpOrigin((s, timers) => {
    onRequestHead(s, () => {
      s.write(
        `HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: ${total}\r\n\r\n`,
      );
      s.write(Buffer.alloc(sent, 0x61));
      later(timers, opts.afterMs ?? 20, () => s.resetAndDestroy());
    });
  });
}

/** Like `resetMidResponse` but the body simply stops (socket stays open): a body stall. */
export function stallMidBody(
  opts: { contentLength?: number; sentBytes?: number } = {},
): Promise<TcpOriginHandle> {
  const total = opts.contentLength ?? 100_000;
  const sent = opts.sentBytes ?? 1000;
  return startTcpOrigin((s) => {
    onRequestHead(s, () => {
      s.write(
        `HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: ${total}\r\n\r\n`,
      );
      s.write(Buffer.alloc(sent, 0x61));
    });
  });
}

/** Reads the request head, answers with bytes that are not HTTP, then closes. */
export function garbage(
  bytes: string | Buffer = 'SSH-2.0-OpenSSH_9.2 not http\r\n',
): Promise<TcpOriginHandle> {
  return startTcpOrigin((s) => {
    onRequestHead(s, () => s.end(bytes));
  });
}

/** Reads the request head, waits `ms`, then answers a valid `200` with body `ok` (keep-alive). */
export function slowHeaders(ms: number): Promise<TcpOriginHandle> {
  return startTcpOrigin((s, timers) => {
    const answerNext = () =>
      onRequestHead(s, () =>
        later(timers, ms, () => {
          if (s.destroyed) return;
          s.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok');
          answerNext();
        }),
      );
    answerNext();
  });
}
