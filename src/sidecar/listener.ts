// One fastify server per listen port. Bodies are never parsed: forward() takes
// the raw request (and receives a small body before sending it, request-body.ts).
// The routing table is swapped on reload without touching connections or
// requests in flight. Requests that ask to switch protocols leave fastify
// through Node's 'upgrade' event (upgrade.ts).
import Fastify, { type FastifyInstance } from 'fastify';
import { type ForwardEnv, forward } from './forward.ts';
import type { OriginRuntime } from './origin-runtime.ts';
import type { PortRoutes } from './router.ts';
import type { TunnelSet } from './tunnel.ts';
import { handleUpgrade } from './upgrade.ts';
import { takesTunnelPath } from './upgrade-policy.ts';

export interface ClientLimits {
  /** Largest request header section, bytes (431 past it). */
  readonly maxHeaderBytes: number;
  /** Time to receive the request headers (408 past it). */
  readonly headersTimeoutMs: number;
  /** Time to receive the whole request, body included (408 past it); 0 disables. */
  readonly requestTimeoutMs: number;
  /** Idle time of a kept-alive client connection. */
  readonly keepAliveTimeoutMs: number;
}

export class Listener {
  readonly port: number;
  readonly address: string;
  routes: PortRoutes<OriginRuntime> | undefined;
  readonly #app: FastifyInstance;
  #closing = false;

  constructor(
    port: number,
    address: string,
    limits: ClientLimits,
    env: Omit<ForwardEnv, 'routes'>,
    tunnels: TunnelSet,
  ) {
    this.port = port;
    this.address = address;
    this.#app = Fastify({
      logger: false,
      http: {
        maxHeaderSize: limits.maxHeaderBytes,
        // How often Node checks header/request timeouts (its default is 30 s).
        connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(limits.headersTimeoutMs / 4))),
        // Requests that may become tunnels go to 'upgrade'; the rest are served as plain HTTP.
        shouldUpgradeCallback: (req) => takesTunnelPath(req, this.routes),
      },
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      return503OnClosing: true,
      forceCloseConnections: 'idle',
      routerOptions: { ignoreTrailingSlash: false, maxParamLength: 8192 },
    });
    const server = this.#app.server;
    server.headersTimeout = limits.headersTimeoutMs;
    // Node hands CONNECT to a 'connect' listener and drops it without one: refuse it in words.
    server.on('connect', (_req, socket: import('node:stream').Duplex) => {
      env.clientError('connect_method');
      const body = '405 Method Not Allowed: originguard is not a forward proxy (CONNECT)\n';
      socket.end(
        `HTTP/1.1 405 Method Not Allowed\r\nconnection: close\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
      );
    });
    const fenv: ForwardEnv = { ...env, routes: () => this.routes };
    const upgradeEnv = {
      forward: fenv,
      tunnels,
      reinject: (socket: import('node:stream').Duplex) => server.emit('connection', socket),
      closing: () => this.#closing,
    };
    server.on('upgrade', (req, socket, head) => handleUpgrade(upgradeEnv, req, socket, head));
    this.#app.removeAllContentTypeParsers();
    // Leave the body unread: forward() streams it to the origin.
    this.#app.addContentTypeParser('*', (_req, _payload, done) => done(null));
    const handler = (
      request: { raw: import('node:http').IncomingMessage },
      reply: { hijack(): void; raw: import('node:http').ServerResponse },
    ) => {
      reply.hijack();
      forward(fenv, request.raw, reply.raw);
    };
    this.#app.all('*', handler);
    this.#app.setNotFoundHandler(handler);
  }

  async start(): Promise<void> {
    await this.#app.listen({ port: this.port, host: this.address });
  }

  /** Stops accepting; resolves when requests in flight have finished. */
  async close(): Promise<void> {
    this.#closing = true;
    await this.#app.close();
  }

  /** Ends every connection now (after the drain grace period). */
  forceClose(): void {
    this.#app.server.closeAllConnections();
  }
}
