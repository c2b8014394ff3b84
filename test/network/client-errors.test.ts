// Nothing a client does may count as an origin failure: one test for every way
// a request can end in the sidecar's failure path because of its client. After
// each, the origin's health (what /status, the OriginReport and the Origin's
// status show), its failure metrics and its ejection state are untouched, and
// the next request is forwarded.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { startHttpOrigin } from '../support/origins.ts';
import { proxyStatus, type RunningSidecar, type SpecPatch, startSidecar } from '../support/run-sidecar.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Opens a connection, writes `bytes`, and leaves after `leaveAfterMs` (reset). */
async function writeAndLeave(port: number, bytes: string, leaveAfterMs: number): Promise<string> {
  const s = net.connect({ port, host: '127.0.0.1' });
  let got = '';
  s.on('data', (d) => {
    got += d.toString('latin1');
  });
  s.on('error', () => {});
  await new Promise((r) => s.once('connect', r));
  s.write(bytes);
  await sleep(leaveAfterMs);
  s.resetAndDestroy();
  return got;
}

async function clientErrors(sc: RunningSidecar, reason: string): Promise<number> {
  const m = (await sc.metrics.clientErrors.get()).values.find((v) => v.labels.reason === reason);
  return m?.value ?? 0;
}

/** The origin's health, failure metrics and ejection show nothing, and it still serves. */
async function expectOriginUntouched(sc: RunningSidecar): Promise<void> {
  const [h] = sc.sidecar.health();
  expect(h?.failures, 'failures counted against the origin').toBe(0);
  expect(h?.failuresByCause).toEqual({});
  expect(h?.lastFailure).toBeUndefined();
  expect(h?.state).not.toBe('Unreachable');
  expect(h?.ejected).toBe(false);
  expect((await sc.metrics.upstreamFailures.get()).values).toEqual([]);
  const next = await sc.get('/next');
  expect(next.status).toBe(200);
  expect(sc.sidecar.health()[0]?.state).toBe('Reachable');
}

/** One strike would eject the origin: a client error counted as a connection failure would show at once. */
const strict = (port: number, extra: Record<string, unknown> = {}): SpecPatch => ({
  upstream: { host: '127.0.0.1', port },
  outlierDetection: { consecutiveFailures: 1, baseEjectionTime: '30s', maxEjectionTime: '30s' },
  ...extra,
});

describe('client errors are never origin failures', () => {
  it('answers OPTIONS * itself (it used to be a 500 that marked the origin Unreachable)', async () => {
    await using o = await startHttpOrigin();
    await using sc = await startSidecar(strict(o.port));
    const raw = await writeAndLeave(sc.port, 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n', 200);
    expect(raw).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(o.requests).toHaveLength(0);
    await expectOriginUntouched(sc);
  });

  it('does not count a client that leaves before the origin answers as a response timeout', async () => {
    await using o = await startHttpOrigin();
    await using sc = await startSidecar(strict(o.port, { timeouts: { response: '200ms' } }));
    await writeAndLeave(sc.port, 'GET /slow?delay=400 HTTP/1.1\r\nHost: x\r\n\r\n', 50);
    await sleep(500);
    await expectOriginUntouched(sc);
  });

  it('does not count a body the client breaks off while it streams to the origin', async () => {
    await using o = await startHttpOrigin();
    await using sc = await startSidecar(strict(o.port, { request: { bodyBufferBytes: 0 } }));
    await writeAndLeave(
      sc.port,
      'POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nfirst bytes',
      100,
    );
    await sleep(100);
    await expectOriginUntouched(sc);
  });

  it('does not count, nor forward, a small body the client breaks off while the sidecar receives it', async () => {
    await using o = await startHttpOrigin();
    await using sc = await startSidecar(strict(o.port));
    await writeAndLeave(
      sc.port,
      'POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nfirst bytes',
      100,
    );
    await sleep(100);
    expect(o.requests).toHaveLength(0);
    await expectOriginUntouched(sc);
  });

  it('answers 408 to a client that never finishes its body, and counts nothing against the origin', async () => {
    await using o = await startHttpOrigin();
    await using sc = await startSidecar(strict(o.port), {
      limits: { headersTimeoutMs: 300, requestTimeoutMs: 400 },
    });
    const got = await writeAndLeave(
      sc.port,
      'POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab',
      1500,
    );
    expect(got).toMatch(/^HTTP\/1\.1 408 /);
    expect(o.requests).toHaveLength(0);
    await expectOriginUntouched(sc);
  });

  it('answers 413 to a body over the limit, buffered or streamed, as a client error', async () => {
    await using o = await startHttpOrigin();
    for (const bodyBufferBytes of [65536, 0]) {
      await using sc = await startSidecar(strict(o.port, { request: { bodyBufferBytes } }), {
        maxBodyBytes: 1000,
      });
      const chunked = `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n${'y'.repeat(2000)}\r\n0\r\n\r\n`;
      expect(await writeAndLeave(sc.port, chunked, 300)).toMatch(/^HTTP\/1\.1 413 /);
      expect(await clientErrors(sc, 'body_too_large')).toBe(1);
      await expectOriginUntouched(sc);
    }
  });

  it('does not let a client that reads slowly make the response time out', async () => {
    await using o = await startHttpOrigin();
    await using sc = await startSidecar(strict(o.port, { timeouts: { response: '200ms' } }));
    const size = 16 * 1024 * 1024;
    const s = net.connect({ port: sc.port, host: '127.0.0.1' });
    let received = 0;
    const done = new Promise<void>((resolve) => {
      s.on('data', (d: Buffer) => {
        received += d.length;
        if (received >= size) resolve();
      });
    });
    s.write(`GET /bytes/${size} HTTP/1.1\r\nHost: x\r\n\r\n`);
    // Read the first bytes, then nothing for a second: the sidecar's and the origin's buffers fill up.
    await new Promise((r) => s.once('data', r));
    s.pause();
    await sleep(1000);
    s.resume();
    await done;
    s.destroy();
    expect(received).toBeGreaterThanOrEqual(size);
    await expectOriginUntouched(sc);
  });

  it('answers a forged CDN-Loop with proxy_loop_detected but counts it as a client error', async () => {
    await using o = await startHttpOrigin();
    await using sc = await startSidecar(strict(o.port));
    const echo = JSON.parse((await sc.get('/')).body) as { headers: Record<string, string> };
    const id = echo.headers['cdn-loop'] as string;
    const forged = await sc.get('/', { 'cdn-loop': id });
    expect(forged.status).toBe(531);
    expect(proxyStatus(forged).error).toBe('proxy_loop_detected');
    expect(await clientErrors(sc, 'loop_detected')).toBe(1);
    await expectOriginUntouched(sc);
  });
});
