// Pure decisions about protocol upgrades (RFC 9110 §7.8): which offered
// protocols an Origin lets through, whether a request takes the tunnel path at
// all, and whether the origin's 101 switched to what was asked for.
import type { IncomingMessage } from 'node:http';
import type { OriginRuntime } from './origin-runtime.ts';
import { type PortRoutes, route } from './router.ts';

/** The protocols a client offers in its Upgrade header, in its order. */
export function offeredProtocols(header: string | undefined): string[] {
  if (header === undefined) return [];
  return header
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

/** The protocol name without its version, lower case (RFC 9110 §7.8: protocol-name["/" protocol-version]). */
const nameOf = (protocol: string): string => (protocol.split('/')[0] ?? '').toLowerCase();

/** True when a 101's Upgrade value is WebSocket: its frames are followed for a clean Close at shutdown. */
export function isWebSocket(answered: string): boolean {
  return offeredProtocols(answered).some((p) => nameOf(p) === 'websocket');
}

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
