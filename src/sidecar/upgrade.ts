// Protocol upgrades (RFC 9110 §7.8): WebSocket and others. The request takes
// forward()'s path to the origin (same connector, same 531/536), and nothing is
// answered before the origin does. Only the origin's 101 turns the client's
// connection into a tunnel; after any other answer the connection goes back to
// the HTTP server, so what the client sends next is parsed as a new request and
// never reaches the origin raw (the "WebSocket smuggling" class).
import { type IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { UPGRADE_MISMATCH } from './errors.ts';
import { type ForwardEnv, forward } from './forward.ts';
import { forwardResponseHeaders } from './headers.ts';
import type { OriginRuntime } from './origin-runtime.ts';
import { type PortRoutes, route } from './router.ts';
import { Tunnel, type TunnelSet } from './tunnel.ts';

/** The protocols a client offers in its Upgrade header, in its order. */
export function offeredProtocols(header: string | undefined): string[] {
  if (header === undefined) return [];
  return header
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

const nameOf = (protocol: string): string => (protocol.split('/')[0] ?? '').toLowerCase();

/**
 * Whether spec.upgrade.protocols (lower case) lets a protocol through. Absent:
 * every protocol but h2c, with which a client could talk past the proxy.
 */
export function protocolAllowed(protocol: string, allowed: readonly string[] | undefined): boolean {
  if (allowed === undefined) return nameOf(protocol) !== 'h2c';
  return allowed.includes(protocol.toLowerCase()) || allowed.includes(nameOf(protocol));
}

/** The Upgrade value to ask the origin for: the offered protocols allowed, in the client's order. */
export function selectProtocols(
  offered: readonly string[],
  allowed: readonly string[] | undefined,
): string | undefined {
  const ok = offered.filter((p) => protocolAllowed(p, allowed));
  return ok.length === 0 ? undefined : ok.join(', ');
}

/** Whether a 101's Upgrade value names one of the protocols asked for (RFC 9110 §7.8). */
export function switchedTo(requested: string, answered: string | undefined): boolean {
  if (answered === undefined) return false;
  const chosen = offeredProtocols(answered);
  if (chosen.length === 0) return false;
  const asked = offeredProtocols(requested).map((p) => p.toLowerCase());
  return chosen.every((p) => asked.includes(p.toLowerCase()) || asked.includes(nameOf(p)));
}

/**
 * Whether a request Node parsed as an upgrade goes to the tunnel path. Not: one
 * over HTTP/1.0, one with a body, and one offering only h2c that the Origin does
 * not allow (a client offers h2c opportunistically: RFC 7540 §3.2 serves it as if
 * the Upgrade were absent). These are served as plain HTTP, their Upgrade dropped.
 */
export function takesTunnelPath(
  req: IncomingMessage,
  routes: PortRoutes<OriginRuntime> | undefined,
): boolean {
  if (req.httpVersion !== '1.1') return false;
  if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0)
    return false;
  const offered = offeredProtocols(req.headers.upgrade);
  if (offered.length === 0) return false;
  const allowed = route(routes, req.headers.host)?.upgradeProtocols;
  return !offered.every((p) => nameOf(p) === 'h2c' && !protocolAllowed(p, allowed));
}

function headerValue(raw: readonly (Buffer | string)[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    if (String(raw[i]).toLowerCase() === name) return String(raw[i + 1]);
  }
  return undefined;
}

/** The 101 for the client: the origin's fields, hop-by-hop ones dropped, Via added, the switch kept. */
function switchingHead(raw: readonly (Buffer | string)[], upgrade: string, via: string): string {
  const fields = forwardResponseHeaders(raw, via);
  let head = 'HTTP/1.1 101 Switching Protocols\r\n';
  for (let i = 0; i < fields.length; i += 2) head += `${fields[i]}: ${fields[i + 1]}\r\n`;
  return `${head}Connection: Upgrade\r\nUpgrade: ${upgrade}\r\n\r\n`;
}

export interface UpgradeEnv {
  readonly forward: ForwardEnv;
  readonly tunnels: TunnelSet;
  /** Gives a connection back to the HTTP server, as if just accepted. */
  readonly reinject: (socket: Duplex) => void;
  /** True once the listener stops accepting: new upgrades get 503. */
  readonly closing: () => boolean;
}

/** Node's 'upgrade' event: the request waits for the origin's answer, and only a 101 opens a tunnel. */
export function handleUpgrade(env: UpgradeEnv, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  // Node removed its own listeners: a reset before the answer must not crash the process.
  socket.on('error', () => socket.destroy());
  const res = new ServerResponse(req);
  res.assignSocket(socket as Socket);
  let switched = false;
  res.once('finish', () => {
    if (switched) return;
    res.detachSocket(socket as Socket);
    if (socket.destroyed) return;
    if ((res as unknown as { _last?: boolean })._last === true) {
      socket.end(() => socket.destroy());
      return;
    }
    // The connection stays HTTP: whatever the client sent after its request is parsed next.
    if (head.length > 0) socket.unshift(head);
    env.reinject(socket);
  });
  if (env.closing()) {
    res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
    res.end('503 Service Unavailable: the proxy is shutting down\n');
    return;
  }
  const offered = String(req.headers.upgrade ?? '');
  forward(env.forward, req, res, {
    offered,
    select: (runtime) => selectProtocols(offeredProtocols(offered), runtime.upgradeProtocols),
    onSwitch: (runtime, requested, raw, origin) => {
      const answered = headerValue(raw, 'upgrade');
      if (!switchedTo(requested, answered)) {
        return {
          cause: 'http_upgrade_failed',
          phase: 'response',
          code: UPGRADE_MISMATCH,
          attempts: [],
          elapsedMs: 0,
        };
      }
      switched = true;
      res.detachSocket(socket as Socket);
      socket.write(switchingHead(raw, answered as string, env.forward.via));
      const tunnel = new Tunnel({
        client: socket,
        origin,
        head,
        websocket: offeredProtocols(answered).some((p) => nameOf(p) === 'websocket'),
        idleMs: runtime.streamIdleMs,
        metrics: runtime.metrics.tunnels,
      });
      env.tunnels.add(tunnel);
      return undefined;
    },
  });
}
