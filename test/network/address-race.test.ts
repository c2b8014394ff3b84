// Addresses raced with a stagger (RFC 8305) and remembered across connections:
// one dead address behind a name costs about the stagger once, not the connect
// timeout on every new connection.
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { CONNECT_STAGGER_MS } from '../../src/upstream/connector.ts';
import { startFullAcceptQueue } from '../support/accept-queue.ts';
import { startDnsServer } from '../support/dns-server.ts';
import { closedPort } from '../support/origins.ts';
import { startSidecar } from '../support/run-sidecar.ts';

/** An origin on 127.0.0.2 that closes every connection after answering, so each request connects anew. */
async function liveOrigin(port: number): Promise<{ connections: () => number; close(): Promise<void> }> {
  let connections = 0;
  const server = http.createServer((_req, res) => {
    res.setHeader('connection', 'close');
    res.end('live\n');
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.2', resolve));
  return {
    connections: () => connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('a name with one dead and one live address', () => {
  it('costs about the stagger on the first connection, then connects to the live address at once', async () => {
    // 127.0.0.1:P drops every SYN (full accept queue); 127.0.0.2:P answers.
    await using dead = await startFullAcceptQueue();
    const live = await liveOrigin(dead.port);
    await using dns = await startDnsServer({
      'shop.test': { kind: 'answer', a: ['127.0.0.1', '127.0.0.2'], ttl: 60 },
    });
    await using sc = await startSidecar(
      { upstream: { host: 'shop.test', port: dead.port }, timeouts: { connect: '3s' } },
      { dnsServer: dns.address },
    );
    try {
      const first = await sc.get();
      expect(first.status).toBe(200);
      expect(first.body).toBe('live\n');
      // The dead address is tried first; the live one starts after the stagger, not after 3 s.
      expect(first.ms).toBeGreaterThanOrEqual(CONNECT_STAGGER_MS - 10);
      expect(first.ms).toBeLessThan(CONNECT_STAGGER_MS + 600);
      const later: number[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await sc.get();
        expect(r.status).toBe(200);
        later.push(r.ms);
      }
      // Every later request opened a new connection, straight to the live address.
      expect(live.connections()).toBe(6);
      expect(Math.max(...later)).toBeLessThan(CONNECT_STAGGER_MS - 50);
      const status = sc.sidecar.health()[0];
      expect(status?.addresses).toContainEqual(
        expect.objectContaining({ address: `127.0.0.2:${dead.port}`, state: 'preferred' }),
      );
    } finally {
      await live.close();
    }
  });

  it('moves to the next address at once when the first refuses, without waiting for the stagger', async () => {
    const port = await closedPort();
    const live = await liveOrigin(port);
    await using dns = await startDnsServer({
      'shop.test': { kind: 'answer', a: ['127.0.0.1', '127.0.0.2'], ttl: 60 },
    });
    await using sc = await startSidecar(
      { upstream: { host: 'shop.test', port }, timeouts: { connect: '3s' } },
      { dnsServer: dns.address },
    );
    try {
      const r = await sc.get();
      expect(r.status).toBe(200);
      expect(r.ms).toBeLessThan(CONNECT_STAGGER_MS - 50);
      expect(sc.sidecar.health()[0]?.addresses).toContainEqual(
        expect.objectContaining({
          address: `127.0.0.1:${port}`,
          state: 'failed',
          cause: 'connection_refused',
        }),
      );
    } finally {
      await live.close();
    }
  });
});
