// Reverse-proxy semantics through a real sidecar on loopback: streaming,
// client aborts, header rewriting, loops, routing, limits and fast failing.
import { createHash } from 'node:crypto';
import net from 'node:net';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { startFullAcceptQueue } from '../support/accept-queue.ts';
import { closedPort, type EchoResponse, startHttpOrigin, startTcpOrigin } from '../support/origins.ts';
import { get, manifest, proxyStatus, startSidecar } from '../support/run-sidecar.ts';

/** Sends raw bytes and returns the first response line (or what the server said before closing). */
function raw(port: number, text: string, waitMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let data = '';
    const done = () => {
      clearTimeout(t);
      s.destroy();
      resolve(data);
    };
    const t = setTimeout(done, waitMs);
    s.on('data', (d) => {
      data += d.toString('latin1');
      const end = data.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(data)?.[1];
      if (end >= 0 && (length === undefined || data.length - end - 4 >= Number(length))) done();
    });
    s.on('error', done);
    s.on('close', done);
    s.write(text);
  });
}

describe('proxying', () => {
  it('forwards method, path and body, and returns the origin answer with Via', async () => {
    await using o = await startHttpOrigin();
    await using sc = await startSidecar({ upstream: { host: '127.0.0.1', port: o.port } });
    const r = await request(`${sc.url}/a/b?c=d`, {
      method: 'POST',
      body: 'hello',
      headers: { host: 'www.example.re' },
    });
    const echo = (await r.body.json()) as EchoResponse;
    expect(r.statusCode).toBe(200);
    expect(r.headers.via).toBe('1.1 originguard');
    expect(echo).toMatchObject({ method: 'POST', url: '/a/b?c=d', bodyBytes: 5 });
    expect(echo.headers).toMatchObject({
      host: 'www.example.re',
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'www.example.re',
      via: '1.1 originguard',
    });
  });

  it('removes hop-by-hop headers, including those named in Connection', async () => {
    await using o = await startHttpOrigin();
    await using sc = await startSidecar({ upstream: { host: '127.0.0.1', port: o.port } });
    const res = await raw(
      sc.port,
      'GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, x-hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\nX-Kept: 1\r\n\r\n',
      1000,
    );
    const echo = JSON.parse(res.slice(res.indexOf('{'))) as EchoResponse;
    expect(echo.headers['x-kept']).toBe('1');
    expect(echo.headers['x-hop']).toBeUndefined();
    expect(echo.headers['keep-alive']).toBeUndefined();
  });

  it('streams a 64 MiB response and a 64 MiB request body intact, both ways', async () => {
    await using o = await startHttpOrigin();
    await using sc = await startSidecar({ upstream: { host: '127.0.0.1', port: o.port } });
    const size = 64 * 1024 * 1024;
    const down = await request(`${sc.url}/bytes/${size}`);
    let received = 0;
    for await (const chunk of down.body) received += (chunk as Buffer).length;
    expect(received).toBe(size);

    const chunk = Buffer.alloc(1024 * 1024, 0x62);
    const hash = createHash('sha256');
    for (let i = 0; i < 64; i++) hash.update(chunk);
    const body = Readable.from(
      (function* () {
        for (let i = 0; i < 64; i++) yield chunk;
      })(),
    );
    const up = await request(`${sc.url}/upload`, { method: 'PUT', body });
    const echo = (await up.body.json()) as EchoResponse;
    expect(echo.bodyBytes).toBe(size);
    expect(echo.bodySha256).toBe(hash.digest('hex'));
  });

  it('cancels the upstream request when the client goes away', async () => {
    let upstreamClosed: () => void = () => {};
    const closed = new Promise<void>((resolve) => {
      upstreamClosed = resolve;
    });
    await using o = await startTcpOrigin((socket) => {
      socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\nstart'));
      socket.on('close', () => upstreamClosed());
    });
    await using sc = await startSidecar({ upstream: { host: '127.0.0.1', port: o.port } });
    const client = net.connect({ port: sc.port, host: '127.0.0.1' });
    client.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((resolve) => client.once('data', resolve));
    client.destroy();
    await expect(
      Promise.race([
        closed.then(() => 'closed'),
        new Promise((r) => setTimeout(() => r('still open'), 2000)),
      ]),
    ).resolves.toBe('closed');
  });

  it('keeps a kept-alive upstream pool: many requests reuse few connections', async () => {
    await using o = await startHttpOrigin();
    let connections = 0;
    await using counting = await startTcpOrigin((socket) => {
      connections++;
      const upstream = net.connect({ port: o.port, host: '127.0.0.1' });
      socket.pipe(upstream).pipe(socket);
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
    });
    await using sc = await startSidecar({ upstream: { host: '127.0.0.1', port: counting.port } });
    for (let i = 0; i < 20; i++) expect((await sc.get(`/${i}`)).status).toBe(200);
    expect(connections).toBe(1);
  });
});

describe('what a reverse proxy must refuse', () => {
  it('answers 421 for a Host no Origin on the port declares, and never forwards it', async () => {
    await using o = await startHttpOrigin();
    await using sc = await startSidecar({
      upstream: { host: '127.0.0.1', port: o.port },
      hosts: ['www.example.re'],
    });
    const r = await sc.get('/', { host: 'evil.example' });
    expect(r.status).toBe(421);
    expect(r.body).toContain('no Origin on this port serves this Host');
    expect(o.requests).toHaveLength(0);
    expect((await sc.get('/', { host: 'www.example.re' })).status).toBe(200);
  });

  it('refuses absolute-form targets (no open proxy) and CONNECT', async () => {
    await using o = await startHttpOrigin();
    await using sc = await startSidecar({ upstream: { host: '127.0.0.1', port: o.port } });
    expect(await raw(sc.port, 'GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n')).toMatch(
      /^HTTP\/1.1 400 /,
    );
    expect(await raw(sc.port, 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n')).toMatch(
      /^HTTP\/1.1 (405|400) /,
    );
    expect(o.requests).toHaveLength(0);
  });

  it('answers 400 to a malformed request and 431 to oversized headers', async () => {
    await using o = await startHttpOrigin();
    await using sc = await startSidecar({ upstream: { host: '127.0.0.1', port: o.port } });
    expect(await raw(sc.port, 'GARBAGE\r\n\r\n')).toMatch(/^HTTP\/1.1 400 /);
    expect(await raw(sc.port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)).toMatch(
      /^HTTP\/1.1 431 /,
    );
  });

  it('answers 413 to a body over the limit, declared or streamed', async () => {
    await using o = await startHttpOrigin();
    await using sc = await startSidecar(
      { upstream: { host: '127.0.0.1', port: o.port } },
      { maxBodyBytes: 1000 },
    );
    const declared = await request(sc.url, { method: 'POST', body: 'x'.repeat(2000) });
    expect(declared.statusCode).toBe(413);
    await declared.body.dump();
    const streamed = await raw(
      sc.port,
      `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n${'y'.repeat(2000)}\r\n0\r\n\r\n`,
    );
    expect(streamed).toMatch(/^HTTP\/1.1 413 /);
  });

  it('answers 408 to a client that does not send its headers in time', async () => {
    await using o = await startHttpOrigin();
    await using sc = await startSidecar(
      { upstream: { host: '127.0.0.1', port: o.port } },
      { limits: { headersTimeoutMs: 300, requestTimeoutMs: 300 } },
    );
    const started = performance.now();
    const res = await raw(sc.port, 'GET / HTTP/1.1\r\nHost: x\r\n', 3000);
    expect(res).toMatch(/^HTTP\/1.1 408 /);
    expect(performance.now() - started).toBeLessThan(2500);
  });
});

describe('loops', () => {
  it('detects a request that comes back through the same Origin (CDN-Loop) and answers 531 proxy_loop_detected', async () => {
    // The Origin's upstream is the sidecar itself: the second pass sees its own CDN-Loop id.
    const port = await (async () => {
      const { freePort } = await import('../support/run-sidecar.ts');
      return freePort();
    })();
    const { Sidecar } = await import('../../src/sidecar/sidecar.ts');
    const { SidecarMetrics } = await import('../../src/sidecar/metrics.ts');
    const { Resolver } = await import('../../src/upstream/resolver.ts');
    const pino = (await import('pino')).default;
    const sidecar = new Sidecar({
      logger: pino({ level: 'silent' }),
      metrics: new SidecarMetrics(),
      resolver: new Resolver({ servers: ['127.0.0.1:1'] }),
      maxBodyBytes: 1000,
      limits: {
        maxHeaderBytes: 16384,
        headersTimeoutMs: 5000,
        requestTimeoutMs: 5000,
        keepAliveTimeoutMs: 5000,
      },
    });
    try {
      const applied = await sidecar.apply([
        manifest('loop', port, { upstream: { host: '127.0.0.1', port } }),
      ]);
      expect(applied.errors).toEqual([]);
      const r = await get(`http://127.0.0.1:${port}/`);
      expect(r.status).toBe(531);
      expect(proxyStatus(r).error).toBe('proxy_loop_detected');
    } finally {
      await sidecar.drain(500);
    }
  });

  it('answers 538 for a loop under the Edgio profile', async () => {
    await using o = await startHttpOrigin();
    await using sc = await startSidecar({
      upstream: { host: '127.0.0.1', port: o.port },
      errorResponse: { statusProfile: 'Edgio' },
    });
    const first = (await (await request(sc.url)).body.json()) as EchoResponse;
    const id = String(first.headers['cdn-loop']);
    expect((await sc.get('/', { 'cdn-loop': id })).status).toBe(538);
  });
});

describe('fast failing a blackholed origin', () => {
  it('after repeated connect timeouts answers 531 at once while one trial probes the origin', async () => {
    await using q = await startFullAcceptQueue();
    await using sc = await startSidecar({
      upstream: { host: '127.0.0.1', port: q.port },
      timeouts: { connect: '200ms' },
      outlierDetection: { consecutiveFailures: 2, baseEjectionTime: '500ms', maxEjectionTime: '5s' },
    });
    expect((await sc.get()).ms).toBeGreaterThanOrEqual(195);
    expect((await sc.get()).ms).toBeGreaterThanOrEqual(195);
    const fast = await sc.get();
    expect(fast.status).toBe(531);
    expect(fast.ms).toBeLessThan(100);
    expect(proxyStatus(fast).error).toBe('destination_unavailable');
    expect(JSON.parse(fast.body).lastFailure).toMatchObject({ cause: 'connection_timeout' });
    // After the ejection interval one request probes again (and waits the connect timeout).
    await new Promise((r) => setTimeout(r, 550));
    const [trial, during] = await Promise.all([
      sc.get(),
      new Promise((r) => setTimeout(r, 20)).then(() => sc.get()),
    ]);
    expect(trial.ms).toBeGreaterThanOrEqual(195);
    expect(during.ms).toBeLessThan(100);
    const metrics = await sc.metrics.registry.getSingleMetricAsString('originguard_origin_ejected');
    expect(metrics).toContain('originguard_origin_ejected{origin="test/web"} 1');
  });

  it('recovers as soon as a trial connects', async () => {
    const port = await closedPort();
    await using sc = await startSidecar({
      upstream: { host: '127.0.0.1', port },
      outlierDetection: { consecutiveFailures: 1, baseEjectionTime: '200ms', maxEjectionTime: '1s' },
    });
    expect(proxyStatus(await sc.get()).error).toBe('connection_refused');
    expect(proxyStatus(await sc.get()).error).toBe('destination_unavailable');
    const origin = net.createServer((s) => s.once('data', () => s.end('HTTP/1.1 204 No Content\r\n\r\n')));
    await new Promise<void>((resolve) => origin.listen(port, '127.0.0.1', resolve));
    try {
      await new Promise((r) => setTimeout(r, 250));
      expect((await sc.get()).status).toBe(204);
      expect((await sc.get()).status).toBe(204);
    } finally {
      origin.close();
    }
  });
});

describe('metrics and status', () => {
  it('counts requests by status class and failures by cause, and shows the origin state', async () => {
    const port = await closedPort();
    await using sc = await startSidecar({ upstream: { host: '127.0.0.1', port } });
    await sc.get();
    const text = await sc.metrics.registry.metrics();
    expect(text).toContain('originguard_requests_total{origin="test/web",code_class="5xx"} 1');
    expect(text).toContain(
      'originguard_upstream_failures_total{origin="test/web",cause="connection_refused",phase="connect"} 1',
    );
    const [h] = sc.sidecar.health();
    expect(h).toMatchObject({ state: 'Unreachable', cause: 'connection_refused', failures: 1 });
    expect(sc.logs.find((l) => l.cause === 'connection_refused')).toMatchObject({
      origin: 'test/web',
      status: 531,
    });
  });
});
