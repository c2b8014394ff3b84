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
import type { TunnelSet } from './tunnel.ts';
import { isWebSocket, offeredProtocols, selectProtocols, switchedTo } from './upgrade-policy.ts';

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

/** Not a closure: one would keep the whole request (its context) alive as long as the tunnel. */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

/** Node's 'upgrade' event: the request waits for the origin's answer, and only a 101 opens a tunnel. */
export function handleUpgrade(env: UpgradeEnv, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  // Node removed its own listeners: a reset before the answer must not crash the process.
  socket.on('error', destroyOnError);
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
      if (socket.destroyed) {
        // The client left while the origin was answering: nothing to tunnel.
        origin.destroy();
        return undefined;
      }
      socket.off('error', destroyOnError);
      socket.write(switchingHead(raw, answered as string, env.forward.via));
      env.tunnels.open({
        client: socket,
        origin,
        head,
        websocket: isWebSocket(answered as string),
        idleMs: runtime.streamIdleMs,
        metrics: runtime.metrics.tunnels,
      });
      return undefined;
    },
  });
}
