import { describe, expect, it } from 'vitest';
import { cdnLoopContains, forwardRequestHeaders, forwardResponseHeaders } from '../../src/sidecar/headers.ts';

const ctx = {
  clientAddress: '127.0.0.9',
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

  it('appends the client to X-Forwarded-For and sets Proto, Host, Via and CDN-Loop', () => {
    const raw = ['Host', 'www.example.re', 'X-Forwarded-For', '127.0.0.5', 'Via', '1.1 edge'];
    const h = new Map(pairs(forwardRequestHeaders(raw, ctx).headers));
    expect(h.get('x-forwarded-for')).toBe('127.0.0.5, 127.0.0.9');
    expect(h.get('x-forwarded-proto')).toBe('http');
    expect(h.get('x-forwarded-host')).toBe('www.example.re');
    expect(h.get('via')).toBe('1.1 edge, 1.1 originguard');
    expect(h.get('cdn-loop')).toBe('originguard-abc');
    expect(h.get('host')).toBe('www.example.re');
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
