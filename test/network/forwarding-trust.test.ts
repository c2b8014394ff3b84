// spec.forwardedHeaders through a real sidecar: the peer's address, as the
// kernel reports it, decides whether its forwarding headers are believed. The
// trusted "CDN" is a client bound to 127.0.0.2, everyone else 127.0.0.1.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { type EchoResponse, startHttpOrigin } from '../support/origins.ts';
import { startSidecar } from '../support/run-sidecar.ts';

const SPOOFED = [
  'X-Forwarded-For: 6.6.6.6',
  'X-Forwarded-Proto: https',
  'X-Forwarded-Host: shop.example.re',
  'Forwarded: for=6.6.6.6;proto=https',
  'True-Client-IP: 6.6.6.6',
];

/** GET / from `from` with the given header lines; the origin's echo of what it received. */
function getFrom(port: number, from: string, headers: readonly string[]): Promise<EchoResponse> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: from });
    let data = '';
    s.on('data', (d) => {
      data += d.toString('latin1');
      const body = data.indexOf('\r\n\r\n');
      const length = Number(/content-length: (\d+)/i.exec(data)?.[1] ?? Number.NaN);
      if (body >= 0 && data.length - body - 4 >= length) {
        s.destroy();
        resolve(JSON.parse(data.slice(body + 4)) as EchoResponse);
      }
    });
    s.on('error', reject);
    s.write(`GET / HTTP/1.1\r\nHost: edge.test\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`);
  });
}

describe('whose forwarding headers are believed', () => {
  it('by default, nobody’s: every claim is replaced with what the sidecar saw', async () => {
    await using o = await startHttpOrigin();
    await using sc = await startSidecar({ upstream: { host: '127.0.0.1', port: o.port } });
    const seen = (await getFrom(sc.port, '127.0.0.2', SPOOFED)).headers;
    expect(seen).toMatchObject({
      'x-forwarded-for': '127.0.0.2',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'edge.test',
      forwarded: 'for=127.0.0.2;host=edge.test;proto=http',
      'x-real-ip': '127.0.0.2',
    });
    expect(seen['true-client-ip']).toBeUndefined();
  });

  it('from a peer in trustedProxies, keeps and appends to them, and names the client in X-Real-IP', async () => {
    await using o = await startHttpOrigin();
    await using sc = await startSidecar({
      upstream: { host: '127.0.0.1', port: o.port },
      forwardedHeaders: { trustedProxies: ['127.0.0.2/32', '127.0.0.3'] },
    });
    const cdn = (await getFrom(sc.port, '127.0.0.2', SPOOFED)).headers;
    expect(cdn).toMatchObject({
      'x-forwarded-for': '6.6.6.6, 127.0.0.2',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'shop.example.re',
      forwarded: 'for=6.6.6.6;proto=https, for=127.0.0.2;host=edge.test;proto=http',
      'x-real-ip': '6.6.6.6',
      'true-client-ip': '6.6.6.6',
    });
    // A chain of trusted proxies: the client is the first address from the right that is not one.
    const chain = (await getFrom(sc.port, '127.0.0.2', ['X-Forwarded-For: 6.6.6.6, 127.0.0.3'])).headers;
    expect(chain['x-real-ip']).toBe('6.6.6.6');
    // Anyone else on the same Origin is not believed.
    const other = (await getFrom(sc.port, '127.0.0.1', SPOOFED)).headers;
    expect(other).toMatchObject({
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-proto': 'http',
      'x-real-ip': '127.0.0.1',
    });
  });

  it('with trustedHops, believes that many proxies in front whatever their address', async () => {
    await using o = await startHttpOrigin();
    await using sc = await startSidecar({
      upstream: { host: '127.0.0.1', port: o.port },
      forwardedHeaders: { trustedHops: 2 },
    });
    const seen = (await getFrom(sc.port, '127.0.0.1', ['X-Forwarded-For: 7.7.7.7, 6.6.6.6, 127.0.0.5']))
      .headers;
    expect(seen['x-forwarded-for']).toBe('7.7.7.7, 6.6.6.6, 127.0.0.5, 127.0.0.1');
    // Two hops trusted (127.0.0.1 and 127.0.0.5): the client is 6.6.6.6; 7.7.7.7 is only its claim.
    expect(seen['x-real-ip']).toBe('6.6.6.6');
  });
});
