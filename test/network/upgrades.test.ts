// WebSocket and other upgrades through a real sidecar on loopback: the origin
// answers before the client does (531/536 are HTTP answers, never a 101 and a
// close), only the origin's 101 opens a tunnel, and the tunnel carries bytes
// both ways untouched until either side closes, resets or goes silent.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { closedPort, startHttpOrigin, startTcpOrigin } from '../support/origins.ts';
import { freePort, manifest, proxyStatus, startSidecar } from '../support/run-sidecar.ts';
import { createTestPki } from '../support/tls.ts';
import {
  closed,
  isRefusal,
  nextMessage,
  openWs,
  type Refusal,
  startWsOrigin,
  WebSocket,
} from '../support/websocket.ts';

const wsUrl = (port: number, path = '/ws') => `ws://127.0.0.1:${port}${path}`;

async function open(url: string, protocols: string[] = [], options = {}): Promise<WebSocket> {
  const ws = await openWs(url, protocols, options);
  if (isRefusal(ws)) throw new Error(`expected a WebSocket, got HTTP ${ws.status}: ${ws.body}`);
  return ws;
}

async function refused(url: string): Promise<Refusal> {
  const r = await openWs(url);
  if (!isRefusal(r)) {
    r.terminate();
    throw new Error('expected no 101, but the connection switched');
  }
  return r;
}

/** Sends raw bytes on one connection and collects everything the server sends back until it goes quiet. */
function exchange(port: number, parts: string[], quietMs = 400): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let data = '';
    let timer: NodeJS.Timeout;
    const done = () => {
      s.destroy();
      resolve(data);
    };
    const quiet = () => {
      clearTimeout(timer);
      timer = setTimeout(done, quietMs);
    };
    s.on('data', (d) => {
      data += d.toString('latin1');
      quiet();
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve(data);
    });
    s.once('connect', async () => {
      for (const p of parts) {
        s.write(p);
        await new Promise((r) => setTimeout(r, 150));
      }
      quiet();
    });
  });
}

const UPGRADE_REQUEST =
  'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
  'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';

describe('WebSocket through the tunnel', () => {
  it('echoes text and binary messages, large frames and many messages untouched', async () => {
    await using o = await startWsOrigin();
    await using sc = await startSidecar({ upstream: { host: '127.0.0.1', port: o.port } });
    const ws = await open(wsUrl(sc.port));
    ws.send('hello');
    expect(await nextMessage(ws)).toMatchObject({ binary: false, data: Buffer.from('hello') });
    const bin = randomBytes(1000);
    ws.send(bin);
    const echoed = await nextMessage(ws);
    expect(echoed.binary).toBe(true);
    expect(echoed.data.equals(bin)).toBe(true);

    const big = randomBytes(16 * 1024 * 1024);
    ws.send(big);
    expect((await nextMessage(ws)).data.equals(big)).toBe(true);

    const count = 5000;
    const got: string[] = [];
    const all = new Promise<void>((resolve) =>
      ws.on('message', (d) => {
        got.push(d.toString());
        if (got.length === count) resolve();
      }),
    );
    for (let i = 0; i < count; i++) ws.send(`m${i}`);
    await all;
    expect(got).toEqual(Array.from({ length: count }, (_, i) => `m${i}`));
    ws.close(1000, 'bye');
    expect(await closed(ws)).toEqual({ code: 1000, reason: 'bye' });

    const text = await sc.metrics.registry.metrics();
    expect(text).toContain('originguard_upgrades_total{origin="test/web",result="switched"} 1');
    expect(text).toContain('originguard_requests_total{origin="test/web",code_class="1xx"} 1');
    const sent =
      /originguard_tunnel_bytes_total\{origin="test\/web",direction="client_to_origin"\} (\d+)/.exec(text);
    expect(Number(sent?.[1])).toBeGreaterThan(16 * 1024 * 1024);
  });

  it('negotiates subprotocols and extensions end to end, between client and origin', async () => {
    await using o = await startWsOrigin({ protocols: ['chat.v2', 'chat.v1'] });
    await using sc = await startSidecar({ upstream: { host: '127.0.0.1', port: o.port } });
    const ws = await open(wsUrl(sc.port), ['chat.v1', 'chat.v2'], { perMessageDeflate: true });
    expect(ws.protocol).toBe('chat.v2');
    expect(ws.extensions).toContain('permessage-deflate');
    const compressible = 'a'.repeat(100_000);
    ws.send(compressible);
    expect((await nextMessage(ws)).data.toString()).toBe(compressible);
    // The origin saw the client's offer as sent, the proxy's own fields added.
    expect(o.sockets[0]?.protocol).toBe('chat.v2');
    expect(o.upgrades[0]).toMatchObject({
      'sec-websocket-protocol': 'chat.v1,chat.v2',
      'sec-websocket-extensions': expect.stringContaining('permessage-deflate'),
      via: '1.1 originguard',
    });
    ws.close();
    await closed(ws);
  });

  it('shows the 101 with the origin fields and Via, and no hop-by-hop field but the switch', async () => {
    await using o = await startWsOrigin();
    await using sc = await startSidecar({ upstream: { host: '127.0.0.1', port: o.port } });
    const answer = await exchange(sc.port, [UPGRADE_REQUEST], 300);
    const head = answer.slice(0, answer.indexOf('\r\n\r\n'));
    expect(head).toMatch(/^HTTP\/1.1 101 Switching Protocols\r\n/);
    expect(head).toMatch(/\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/i);
    expect(head).toMatch(/\r\nvia: 1.1 originguard/i);
    expect(head).toMatch(/\r\nConnection: Upgrade\r\nUpgrade: websocket$/);
  });
});

describe('the same connection path as any request', () => {
  it('reaches the origin through a backup over TLS when the primary refuses', async () => {
    const pki = await createTestPki();
    await using o = await startWsOrigin({ tls: pki.good });
    await using sc = await startSidecar({
      upstream: {
        host: '127.0.0.1',
        port: await closedPort(),
        backups: [
          {
            host: '127.0.0.1',
            port: o.port,
            tls: { enabled: true, serverName: 'localhost', caBundle: pki.ca.cert },
          },
        ],
      },
    });
    const ws = await open(wsUrl(sc.port));
    ws.send('over tls');
    expect((await nextMessage(ws)).data.toString()).toBe('over tls');
    ws.close();
    await closed(ws);
  });

  it('answers a TLS failure with 531 and its cause, before any switch', async () => {
    const pki = await createTestPki();
    await using o = await startWsOrigin({ tls: pki.expired });
    await using sc = await startSidecar({
      upstream: {
        host: '127.0.0.1',
        port: o.port,
        tls: { enabled: true, serverName: 'localhost', caBundle: pki.ca.cert },
      },
    });
    const r = await refused(wsUrl(sc.port));
    expect(r.status).toBe(531);
    expect(r.headers['proxy-status']).toContain('error=tls_certificate_error');
    expect(o.sockets).toEqual([]);
  });
});

describe('nothing is answered before the origin', () => {
  it('answers 531 with Proxy-Status, never a 101, when the origin refuses the connection', async () => {
    const port = await closedPort();
    await using sc = await startSidecar({ upstream: { host: '127.0.0.1', port } });
    const r = await refused(wsUrl(sc.port));
    expect(r.status).toBe(531);
    expect(proxyStatus({ status: r.status, headers: r.headers, body: r.body, ms: 0 }).error).toBe(
      'connection_refused',
    );
    expect(r.body).toContain('connection_refused');
    const text = await sc.metrics.registry.metrics();
    expect(text).toContain('originguard_upgrades_total{origin="test/web",result="failed"} 1');
    expect(text).toContain(
      'originguard_upstream_failures_total{origin="test/web",cause="connection_refused",phase="connect"} 1',
    );
    expect(sc.sidecar.health()[0]).toMatchObject({ state: 'Unreachable', cause: 'connection_refused' });
    expect(sc.logs.find((l) => l.cause === 'connection_refused')).toMatchObject({ status: 531, path: '/ws' });
  });

  it('answers 536 when the origin does not answer the upgrade within timeouts.response', async () => {
    await using o = await startTcpOrigin(() => {});
    await using sc = await startSidecar({
      upstream: { host: '127.0.0.1', port: o.port },
      timeouts: { response: '300ms' },
    });
    const started = performance.now();
    const r = await refused(wsUrl(sc.port));
    const ms = performance.now() - started;
    expect(r.status).toBe(536);
    expect(r.headers['proxy-status']).toContain('error=http_response_timeout');
    expect(ms).toBeGreaterThanOrEqual(295);
    expect(ms).toBeLessThan(2000);
  });

  it("passes the origin's refusal of the upgrade to the client as it is, and it is no failure", async () => {
    await using o = await startHttpOrigin();
    await using sc = await startSidecar({ upstream: { host: '127.0.0.1', port: o.port } });
    // The echo origin has no WebSocket: it answers the upgrade request with a plain 200.
    const r = await refused(wsUrl(sc.port, '/ws?status=403'));
    expect(r.status).toBe(403);
    const text = await sc.metrics.registry.metrics();
    expect(text).toContain('originguard_upgrades_total{origin="test/web",result="origin_refused"} 1');
    expect(text).not.toContain('originguard_upstream_failures_total{');
    expect(sc.sidecar.health()[0]?.state).toBe('Reachable');
  });

  it('answers 536 http_upgrade_failed when the origin switches to a protocol the client did not offer', async () => {
    await using o = await startTcpOrigin((s) =>
      s.once('data', () =>
        s.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n'),
      ),
    );
    await using sc = await startSidecar({ upstream: { host: '127.0.0.1', port: o.port } });
    const r = await refused(wsUrl(sc.port));
    expect(r.status).toBe(536);
    expect(r.headers['proxy-status']).toContain('error=http_upgrade_failed');
    expect(sc.sidecar.health()[0]?.state).toBe('Reachable');
  });
});

describe('only a 101 opens a tunnel (no smuggling past the proxy)', () => {
  it('parses what follows a refused upgrade as a new request, routed and refused like any other', async () => {
    await using o = await startHttpOrigin();
    await using sc = await startSidecar({
      upstream: { host: '127.0.0.1', port: o.port },
      hosts: ['www.example.re'],
    });
    const refusedUpgrade = UPGRADE_REQUEST.replace('GET /ws', 'GET /ws?status=426').replace(
      'Host: x',
      'Host: www.example.re',
    );
    // Sent at once, before any answer: a proxy that tunnels on the client's Upgrade
    // alone would hand the second request to the origin raw.
    const answer = await exchange(sc.port, [
      `${refusedUpgrade}GET /internal HTTP/1.1\r\nHost: admin.internal\r\n\r\n`,
    ]);
    expect(statusLines(answer)).toEqual([
      'HTTP/1.1 426 Upgrade Required',
      'HTTP/1.1 421 Misdirected Request',
    ]);
    expect(o.requests.map((r) => r.url)).toEqual(['/ws?status=426']);
  });

  it('keeps the connection HTTP after a refused upgrade: the next request is proxied normally', async () => {
    await using o = await startHttpOrigin();
    await using sc = await startSidecar({ upstream: { host: '127.0.0.1', port: o.port } });
    const answer = await exchange(sc.port, [
      UPGRADE_REQUEST.replace('GET /ws', 'GET /ws?status=403'),
      'GET /next HTTP/1.1\r\nHost: x\r\n\r\n',
    ]);
    expect(statusLines(answer)).toEqual(['HTTP/1.1 403 Forbidden', 'HTTP/1.1 200 OK']);
    expect(o.requests.map((r) => r.url)).toEqual(['/ws?status=403', '/next']);
    expect(o.requests[1]?.headers.via).toBe('1.1 originguard');
  });

  it('serves an h2c upgrade as plain HTTP/1.1 unless the Origin allows h2c', async () => {
    await using o = await startWsOrigin();
    await using sc = await startSidecar({ upstream: { host: '127.0.0.1', port: o.port } });
    const answer = await exchange(sc.port, [
      'GET /h2 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n',
    ]);
    expect(answer).toMatch(/^HTTP\/1.1 200 /);
    expect(answer).toContain('plain /h2');
    expect(o.plain).toEqual([{ method: 'GET', url: '/h2', upgrade: undefined }]);
  });

  it('refuses with 501 a protocol the Origin does not list, without contacting it', async () => {
    await using o = await startWsOrigin();
    await using sc = await startSidecar({
      upstream: { host: '127.0.0.1', port: o.port },
      upgrade: { protocols: ['websocket'] },
    });
    const answer = await exchange(sc.port, [UPGRADE_REQUEST.replace('Upgrade: websocket', 'Upgrade: foo/2')]);
    expect(answer).toMatch(/^HTTP\/1.1 501 /);
    expect(answer).toContain('spec.upgrade.protocols');
    expect(o.plain).toEqual([]);
    expect(o.sockets).toEqual([]);
    const ws = await open(wsUrl(sc.port));
    ws.close();
    const text = await sc.metrics.registry.metrics();
    expect(text).toContain('originguard_upgrades_total{origin="test/web",result="not_allowed"} 1');
    expect(text).toContain('originguard_client_errors_total{reason="upgrade"} 1');
  });
});

describe('closing the tunnel', () => {
  it("passes each side's close to the other, code and reason included", async () => {
    await using o = await startWsOrigin();
    await using sc = await startSidecar({ upstream: { host: '127.0.0.1', port: o.port } });
    const a = await open(wsUrl(sc.port));
    o.sockets[0]?.close(4000, 'origin done');
    expect(await closed(a)).toEqual({ code: 4000, reason: 'origin done' });

    const b = await open(wsUrl(sc.port));
    const originSide = o.sockets[1] as WebSocket;
    const originClosed = closed(originSide);
    b.close(4001, 'client done');
    expect(await originClosed).toEqual({ code: 4001, reason: 'client done' });
    await closed(b);
    await vi.waitFor(
      async () =>
        expect(await sc.metrics.registry.metrics()).toContain(
          'originguard_tunnels_open{origin="test/web"} 0',
        ),
      { timeout: 2000 },
    );
  });

  it("passes a reset on: either side's reset closes the other at once", async () => {
    await using o = await startWsOrigin();
    await using sc = await startSidecar({ upstream: { host: '127.0.0.1', port: o.port } });
    const a = await open(wsUrl(sc.port));
    const aClosed = closed(a);
    (o.sockets[0] as unknown as { _socket: net.Socket })._socket.resetAndDestroy();
    expect((await aClosed).code).toBe(1006);

    const b = await open(wsUrl(sc.port));
    const originClosed = closed(o.sockets[1] as WebSocket);
    (b as unknown as { _socket: net.Socket })._socket.resetAndDestroy();
    expect((await originClosed).code).toBe(1006);
  });

  it('closes a tunnel silent both ways for timeouts.streamIdle, and only then', async () => {
    await using o = await startWsOrigin();
    await using sc = await startSidecar({
      upstream: { host: '127.0.0.1', port: o.port },
      timeouts: { streamIdle: '600ms' },
    });
    // Traffic every 200 ms keeps it open well past the idle timeout.
    const busy = await open(wsUrl(sc.port));
    for (let i = 0; i < 6; i++) {
      busy.send(`tick ${i}`);
      await nextMessage(busy);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(busy.readyState).toBe(WebSocket.OPEN);
    busy.close();

    const idle = await open(wsUrl(sc.port));
    const started = performance.now();
    const { code } = await closed(idle);
    const ms = performance.now() - started;
    expect(code).toBe(1006);
    expect(ms).toBeGreaterThanOrEqual(590);
    expect(ms).toBeLessThan(2000);
    expect(await sc.metrics.registry.metrics()).toContain(
      'originguard_tunnel_idle_closes_total{origin="test/web"} 1',
    );
  });
});

describe('shutdown', () => {
  it('on SIGTERM stops accepting, gives tunnels the drain grace, then sends each WebSocket a Close 1001 between two frames', async () => {
    // The origin streams 64 KiB messages without pause, so frames are in flight when the sidecar shuts down.
    const payload = randomBytes(64 * 1024);
    let streaming = true;
    await using o = await startWsOrigin({
      onConnection: (ws) => {
        const pump = () => {
          while (streaming && ws.readyState === WebSocket.OPEN && ws.bufferedAmount < 1024 * 1024)
            ws.send(payload);
          if (streaming && ws.readyState === WebSocket.OPEN) setTimeout(pump, 1);
        };
        pump();
      },
    });
    const dir = await mkdtemp(join(tmpdir(), 'og-upgrade-'));
    const port = await freePort();
    const config = join(dir, 'origin.yaml');
    await writeFile(
      config,
      stringify(manifest('app', port, { upstream: { host: '127.0.0.1', port: o.port } })),
    );
    const cli = new URL('../../src/cli.ts', import.meta.url).pathname;
    const args = ['sidecar', '--config', config, '--admin-port', String(await freePort())];
    const child = spawn(
      process.execPath,
      [cli, ...args, '--admin-address', '127.0.0.1', '--drain-timeout', '500ms'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          if (d.toString().includes('sidecar ready')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`sidecar exited with ${code}`)));
      });
      const ws = await open(wsUrl(port));
      let messages = 0;
      let intact = true;
      ws.on('message', (d: Buffer) => {
        messages++;
        if (!d.equals(payload)) intact = false;
      });
      const originClosed = closed(o.sockets[0] as WebSocket);
      const clientClosed = closed(ws);
      await new Promise((r) => setTimeout(r, 200));
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      const signalled = performance.now();
      child.kill('SIGTERM');
      // Draining: the listener no longer accepts, while the open tunnel keeps flowing.
      await new Promise((r) => setTimeout(r, 250));
      const during = messages;
      await expect(openWs(wsUrl(port))).rejects.toThrow(/ECONNREFUSED/);
      expect(await clientClosed).toEqual({ code: 1001, reason: 'proxy shutting down' });
      expect(performance.now() - signalled).toBeGreaterThanOrEqual(490);
      expect(messages).toBeGreaterThan(during);
      // A corrupted frame would have failed the client's parser (close 1002) instead.
      expect(intact).toBe(true);
      expect((await originClosed).code).toBe(1001);
      expect(await exited).toBe(0);
    } finally {
      streaming = false;
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** The status lines of the responses in a raw exchange. */
function statusLines(raw: string): string[] {
  return [...raw.matchAll(/HTTP\/1\.1 \d{3} [^\r]*/g)].map((m) => m[0]);
}
