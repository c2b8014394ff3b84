// Pure header rewriting for a reverse proxy (RFC 9110 §7.6): hop-by-hop fields
// are dropped both ways, X-Forwarded-*, Via and CDN-Loop (RFC 8586) are set,
// and a request that already passed through this Origin's sidecars is a loop.

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

/** Field names listed in Connection headers: also hop-by-hop for this message. */
function connectionTokens(values: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const v of values) for (const t of v.split(',')) if (t.trim() !== '') out.add(t.trim().toLowerCase());
  return out;
}

export interface ForwardContext {
  readonly clientAddress: string;
  /** The scheme the client used to reach the sidecar. */
  readonly proto: 'http' | 'https';
  /** Host header to send instead of the client's (spec.upstream.hostHeader). */
  readonly hostOverride?: string;
  /** This Origin's CDN-Loop identifier: seeing it again means the request loops. */
  readonly cdnId: string;
  readonly via: string;
}

export interface ForwardHeaders {
  /** Flat [name, value, name, value, ...] list for the upstream request. */
  readonly headers: string[];
  readonly loop: boolean;
  readonly host: string | undefined;
}

/** Headers for the upstream request, from the client's raw headers (Node's rawHeaders layout). */
export function forwardRequestHeaders(raw: readonly string[], ctx: ForwardContext): ForwardHeaders {
  const connection: string[] = [];
  for (let i = 0; i < raw.length; i += 2)
    if ((raw[i] as string).toLowerCase() === 'connection') connection.push(raw[i + 1] as string);
  const listed = connectionTokens(connection);

  const out: string[] = [];
  let host: string | undefined;
  let xff: string | undefined;
  let xfp: string | undefined;
  let xfh: string | undefined;
  let via: string | undefined;
  let cdnLoop: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed.has(lower)) continue;
    switch (lower) {
      case 'host':
        host ??= value;
        continue;
      case 'x-forwarded-for':
        xff = xff === undefined ? value : `${xff}, ${value}`;
        continue;
      case 'x-forwarded-proto':
        xfp ??= value;
        continue;
      case 'x-forwarded-host':
        xfh ??= value;
        continue;
      case 'via':
        via = via === undefined ? value : `${via}, ${value}`;
        continue;
      case 'cdn-loop':
        cdnLoop = cdnLoop === undefined ? value : `${cdnLoop}, ${value}`;
        continue;
      default:
        out.push(name, value);
    }
  }
  const loop = cdnLoop !== undefined && cdnLoopContains(cdnLoop, ctx.cdnId);
  const upstreamHost = ctx.hostOverride ?? host;
  if (upstreamHost !== undefined) out.push('host', upstreamHost);
  out.push('x-forwarded-for', xff === undefined ? ctx.clientAddress : `${xff}, ${ctx.clientAddress}`);
  out.push('x-forwarded-proto', xfp ?? ctx.proto);
  if (xfh !== undefined || host !== undefined) out.push('x-forwarded-host', (xfh ?? host) as string);
  out.push('via', via === undefined ? ctx.via : `${via}, ${ctx.via}`);
  out.push('cdn-loop', cdnLoop === undefined ? ctx.cdnId : `${cdnLoop}, ${ctx.cdnId}`);
  return { headers: out, loop, host };
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
