// WebSocket and other upgrades through a real sidecar on loopback: the origin
// answers before the client does (531/536 are HTTP answers, never a 101 and a
// close), only the origin's 101 opens a tunnel, and the tunnel carries bytes
// both ways untouched until either side closes, resets or goes silent.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { closedPort, startHttpOrigin, startTcpOrigin } from '../support/origins.ts';
import { proxyStatus, startSidecar } from '../support/run-sidecar.ts';
import {
  closed,
  isRefusal,
  nextMessage,
  openWs,
  type Refusal,
  startWsOrigin,
  type WebSocket,
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
