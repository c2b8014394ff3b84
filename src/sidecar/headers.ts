// Pure header rewriting for a reverse proxy (RFC 9110 §7.6): hop-by-hop fields
// are dropped both ways, forwarding headers are kept from trusted hops and
// replaced for everyone else (forwarding-trust.ts), Via and CDN-Loop (RFC 8586)
// are set, and a request that already passed through this Origin's sidecars is a loop.
import { type ForwardingTrust, forwardedElement, plainAddress, xffAddresses } from './forwarding-trust.ts';

/** Fields that describe one connection, never forwarded (RFC 9110 §7.6.1, plus legacy ones). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'http2-settings',
]);

/**
 * Fields that say where a request came from or what it asked for, believed only
 * from trusted hops. Besides X-Forwarded-* and Forwarded, the ones CDNs and
 * frameworks read as the client address or the original URL.
 */
const FORWARDING = new Set([
  'forwarded',
  'x-real-ip',
  'x-client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-cluster-client-ip',
  'x-original-forwarded-for',
  'x-original-url',
  'x-rewrite-url',
]);

const isForwarding = (lower: string): boolean => lower.startsWith('x-forwarded-') || FORWARDING.has(lower);

/** Fields the proxy sets or frames the message with: naming them in Connection must not remove them. */
const PROTECTED = new Set(['host', 'content-length', 'via', 'cdn-loop']);

/** Field names listed in Connection headers: also hop-by-hop for this message, unless protected. */
function connectionTokens(values: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const v of values)
    for (const t of v.split(',')) {
      const name = t.trim().toLowerCase();
      if (name !== '' && !PROTECTED.has(name) && !isForwarding(name)) out.add(name);
    }
  return out;
}

export interface ForwardContext {
  /** Address of the peer that sent the request (the client, or the proxy in front). */
  readonly peer: string;
  /** Whose forwarding headers are believed (spec.forwardedHeaders). */
  readonly trust: ForwardingTrust;
  /** The scheme the peer used to reach the sidecar. */
  readonly proto: 'http' | 'https';
  /** Host header to send instead of the client's (spec.upstream.hostHeader). */
  readonly hostOverride?: string;
  /** Host header to send when the client sent none (HTTP/1.0). */
  readonly defaultHost: string;
  /** This Origin's CDN-Loop identifier: seeing it again means the request loops. */
  readonly cdnId: string;
  readonly via: string;
  /** Forward header names with underscores (spec.request.underscoresInHeaders: Allow). */
  readonly underscores?: boolean;
  /** The request method: Max-Forwards counts down on OPTIONS and TRACE (RFC 9110 §7.6.2). */
  readonly method?: string;
}

export interface ForwardHeaders {
  /** Flat [name, value, name, value, ...] list for the upstream request. */
  readonly headers: string[];
  readonly loop: boolean;
  readonly host: string | undefined;
}

/** The proxy-relevant fields of a request, with everything else kept in order. */
interface Collected {
  readonly rest: string[];
  host?: string;
  readonly xff: string[];
  xfp?: string;
  xfh?: string;
  forwarded?: string;
  realIp?: string;
  via?: string;
  cdnLoop?: string;
}

const join = (a: string | undefined, b: string): string => (a === undefined ? b : `${a}, ${b}`);

/** Max-Forwards minus one, for OPTIONS and TRACE; other methods and unparsable values pass as is. */
function maxForwards(value: string, method: string | undefined): string {
  if (method !== 'OPTIONS' && method !== 'TRACE') return value;
  return /^\d+$/.test(value) && Number(value) > 0 ? String(Number(value) - 1) : value;
}

/** Keeps a trusted hop's forwarding field, in the slot the proxy rewrites or in order. */
function collectForwarding(c: Collected, name: string, lower: string, value: string): void {
  switch (lower) {
    case 'x-forwarded-for':
      c.xff.push(value);
      break;
    case 'x-forwarded-proto':
      c.xfp ??= value;
      break;
    case 'x-forwarded-host':
      c.xfh ??= value;
      break;
    case 'forwarded':
      c.forwarded = join(c.forwarded, value);
      break;
    case 'x-real-ip':
      c.realIp ??= value;
      break;
    default:
      c.rest.push(name, value);
  }
}

function collect(raw: readonly string[], ctx: ForwardContext, trusted: boolean): Collected {
  const connection: string[] = [];
  for (let i = 0; i < raw.length; i += 2)
    if ((raw[i] as string).toLowerCase() === 'connection') connection.push(raw[i + 1] as string);
  const listed = connectionTokens(connection);
  const c: Collected = { rest: [], xff: [] };
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed.has(lower)) continue;
    if (ctx.underscores !== true && name.includes('_')) continue;
    if (isForwarding(lower)) {
      if (trusted) collectForwarding(c, name, lower, value);
      continue;
    }
    switch (lower) {
      case 'host':
        c.host ??= value;
        break;
      case 'via':
        c.via = join(c.via, value);
        break;
      case 'cdn-loop':
        c.cdnLoop = join(c.cdnLoop, value);
        break;
      case 'max-forwards':
        c.rest.push(name, maxForwards(value, ctx.method));
        break;
      default:
        c.rest.push(name, value);
    }
  }
  return c;
}

/** Headers for the upstream request, from the client's raw headers (Node's rawHeaders layout). */
export function forwardRequestHeaders(raw: readonly string[], ctx: ForwardContext): ForwardHeaders {
  const peer = plainAddress(ctx.peer);
  const trusted = ctx.trust.trusts(peer);
  const c = collect(raw, ctx, trusted);
  const out = c.rest;
  out.push('host', ctx.hostOverride ?? c.host ?? ctx.defaultHost);
  const xff = xffAddresses(c.xff);
  out.push('x-forwarded-for', [...xff, peer].join(', '));
  out.push('x-forwarded-proto', c.xfp ?? ctx.proto);
  const xfh = c.xfh ?? c.host;
  if (xfh !== undefined) out.push('x-forwarded-host', xfh);
  out.push('forwarded', join(c.forwarded, forwardedElement(peer, c.host, ctx.proto)));
  out.push('x-real-ip', c.realIp ?? ctx.trust.client(xff, peer));
  out.push('via', join(c.via, ctx.via));
  out.push('cdn-loop', join(c.cdnLoop, ctx.cdnId));
  return {
    headers: out,
    loop: c.cdnLoop !== undefined && cdnLoopContains(c.cdnLoop, ctx.cdnId),
    host: c.host,
  };
}

/** True if a CDN-Loop field value (a list of cdn-id with parameters) names this id. */
export function cdnLoopContains(value: string, id: string): boolean {
  for (const member of value.split(',')) {
    const cdn = member.split(';', 1)[0]?.trim().toLowerCase();
    if (cdn === id.toLowerCase()) return true;
  }
  return false;
}

/** Response headers for the client from undici's raw headers: hop-by-hop dropped, Via added. */
export function forwardResponseHeaders(raw: readonly (Buffer | string)[], via: string): string[] {
  const connection: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (String(raw[i]).toLowerCase() === 'connection') connection.push(String(raw[i + 1]));
  }
  const listed = connection.length === 0 ? undefined : connectionTokens(connection);
  const out: string[] = [];
  let upstreamVia: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = typeof raw[i] === 'string' ? (raw[i] as string) : (raw[i] as Buffer).toString('latin1');
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed?.has(lower)) continue;
    const value =
      typeof raw[i + 1] === 'string' ? (raw[i + 1] as string) : (raw[i + 1] as Buffer).toString('latin1');
    if (lower === 'via') {
      upstreamVia = upstreamVia === undefined ? value : `${upstreamVia}, ${value}`;
      continue;
    }
    out.push(name, value);
  }
  out.push('via', upstreamVia === undefined ? via : `${upstreamVia}, ${via}`);
  return out;
}
