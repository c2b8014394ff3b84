import { describe, expect, it } from 'vitest';
import { forwardingTrust } from '../../src/sidecar/forwarding-trust.ts';
import { cdnLoopContains, forwardRequestHeaders, forwardResponseHeaders } from '../../src/sidecar/headers.ts';

const ctx = {
  peer: '127.0.0.9',
  trust: forwardingTrust(undefined),
  proto: 'http' as const,
  cdnId: 'originguard-abc',
  via: '1.1 originguard',
  defaultHost: 'origin.internal:8081',
};
const pairs = (flat: string[]) => {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string]);
  return out;
};

describe('request headers to the origin', () => {
  it('drops hop-by-hop fields and those named in Connection', () => {
    const raw = [
      'Host',
      'www.example.re',
      'Connection',
      'keep-alive, X-Secret',
      'X-Secret',
      '1',
      'Keep-Alive',
      'timeout=5',
      'TE',
      'trailers',
      'Upgrade',
      'h2c',
      'Proxy-Authorization',
      'Basic x',
      'Accept',
      '*/*',
    ];
    const names = pairs(forwardRequestHeaders(raw, ctx).headers).map(([n]) => n.toLowerCase());
    for (const gone of ['connection', 'x-secret', 'keep-alive', 'te', 'upgrade', 'proxy-authorization'])
      expect(names).not.toContain(gone);
    expect(names).toContain('accept');
  });

  it("replaces an untrusted peer's forwarding headers with what the sidecar saw, and sets Via and CDN-Loop", () => {
    const raw = [
      'Host',
      'www.example.re',
      'X-Forwarded-For',
      '6.6.6.6',
      'X-Forwarded-Proto',
      'https',
      'X-Forwarded-Host',
      'evil.example',
      'Forwarded',
      'for=6.6.6.6',
      'X-Real-IP',
      '6.6.6.6',
      'True-Client-IP',
      '6.6.6.6',
      'X-Original-URL',
      '/admin',
      'Via',
      '1.1 edge',
    ];
    const out = pairs(forwardRequestHeaders(raw, ctx).headers);
    expect(out).toEqual([
      ['host', 'www.example.re'],
      ['x-forwarded-for', '127.0.0.9'],
      ['x-forwarded-proto', 'http'],
      ['x-forwarded-host', 'www.example.re'],
      ['forwarded', 'for=127.0.0.9;host=www.example.re;proto=http'],
      ['x-real-ip', '127.0.0.9'],
      ['via', '1.1 edge, 1.1 originguard'],
      ['cdn-loop', 'originguard-abc'],
    ]);
  });

  it("keeps and appends to a trusted peer's forwarding headers, and finds the client behind it", () => {
    const raw = [
      'Host',
      'www.example.re',
      'X-Forwarded-For',
      '6.6.6.6, 127.0.0.3',
      'X-Forwarded-Proto',
      'https',
      'X-Forwarded-Host',
      'www.example.re',
      'Forwarded',
      'for=127.0.0.3;proto=https',
      'True-Client-IP',
      '127.0.0.3',
    ];
    const trusted = { ...ctx, trust: forwardingTrust({ trustedProxies: ['127.0.0.8/31'], trustedHops: 0 }) };
    const h = new Map(pairs(forwardRequestHeaders(raw, trusted).headers));
    expect(h.get('x-forwarded-for')).toBe('6.6.6.6, 127.0.0.3, 127.0.0.9');
    expect(h.get('x-forwarded-proto')).toBe('https');
    expect(h.get('forwarded')).toBe(
      'for=127.0.0.3;proto=https, for=127.0.0.9;host=www.example.re;proto=http',
    );
    expect(h.get('True-Client-IP')).toBe('127.0.0.3');
    // 127.0.0.3 is outside the trusted range: it is the client, whatever it claims further left.
    expect(h.get('x-real-ip')).toBe('127.0.0.3');
    const hops = { ...ctx, trust: forwardingTrust({ trustedHops: 2 }) };
    expect(new Map(pairs(forwardRequestHeaders(raw, hops).headers)).get('x-real-ip')).toBe('6.6.6.6');
  });

  it('never lets Connection remove Host, framing or the headers the proxy sets', () => {
    const raw = [
      'Host',
      'www.example.re',
      'Connection',
      'Host, Content-Length, X-Forwarded-For, Via, CDN-Loop, Forwarded, X-Hop',
      'Content-Length',
      '3',
      'X-Hop',
      '1',
    ];
    const h = new Map(pairs(forwardRequestHeaders(raw, ctx).headers));
    expect(h.get('host')).toBe('www.example.re');
    expect(h.get('Content-Length')).toBe('3');
    expect(h.get('x-forwarded-for')).toBe('127.0.0.9');
    expect(h.get('via')).toBe('1.1 originguard');
    expect(h.has('X-Hop')).toBe(false);
  });

  it('drops header names with underscores unless the Origin allows them', () => {
    const raw = ['Host', 'x', 'X_Forwarded_For', '6.6.6.6', 'X-Ok', '1'];
    expect(pairs(forwardRequestHeaders(raw, ctx).headers).map(([n]) => n)).not.toContain('X_Forwarded_For');
    expect(pairs(forwardRequestHeaders(raw, { ...ctx, underscores: true }).headers)).toContainEqual([
      'X_Forwarded_For',
      '6.6.6.6',
    ]);
  });

  it('counts Max-Forwards down on OPTIONS and TRACE only', () => {
    const raw = ['Host', 'x', 'Max-Forwards', '3'];
    const of = (method: string) =>
      new Map(pairs(forwardRequestHeaders(raw, { ...ctx, method }).headers)).get('Max-Forwards');
    expect(of('OPTIONS')).toBe('2');
    expect(of('TRACE')).toBe('2');
    expect(of('GET')).toBe('3');
  });

  it('sends upstream.hostHeader instead of the client Host when set', () => {
    const h = new Map(
      pairs(
        forwardRequestHeaders(['Host', 'www.example.re'], { ...ctx, hostOverride: 'origin.internal' })
          .headers,
      ),
    );
    expect(h.get('host')).toBe('origin.internal');
    expect(h.get('x-forwarded-host')).toBe('www.example.re');
  });

  it("sends the origin's own host:port when the client sent no Host (HTTP/1.0)", () => {
    const h = new Map(pairs(forwardRequestHeaders(['Accept', '*/*'], ctx).headers));
    expect(h.get('host')).toBe('origin.internal:8081');
    expect(h.has('x-forwarded-host')).toBe(false);
  });

  it('detects a loop when CDN-Loop already names this Origin', () => {
    expect(forwardRequestHeaders(['CDN-Loop', 'foo, originguard-abc; v=1'], ctx).loop).toBe(true);
    expect(forwardRequestHeaders(['CDN-Loop', 'originguard-other'], ctx).loop).toBe(false);
    expect(cdnLoopContains('a, B; x=1', 'b')).toBe(true);
  });
});

describe('response headers to the client', () => {
  it('drops hop-by-hop fields and adds Via', () => {
    const raw = [
      'Content-Type',
      'text/plain',
      'Connection',
      'close, X-Hop',
      'X-Hop',
      '1',
      'Transfer-Encoding',
      'chunked',
    ].map((s) => Buffer.from(s));
    const out = pairs(forwardResponseHeaders(raw, '1.1 originguard'));
    expect(out).toEqual([
      ['Content-Type', 'text/plain'],
      ['via', '1.1 originguard'],
    ]);
  });
});
