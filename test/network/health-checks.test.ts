// The sidecar's active checks on real sockets: an origin nobody calls shows its
// health and cause, recovery is seen without a request, an ejected origin comes
// back through a check instead of a user's request, a health path answering an
// unexpected status holds the origin Unreachable, and a dead address found by a
// check costs the first request nothing.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { HealthSnapshot } from '../../src/sidecar/health.ts';
import { CONNECT_STAGGER_MS } from '../../src/upstream/connector.ts';
import { startFullAcceptQueue } from '../support/accept-queue.ts';
import { startDnsServer } from '../support/dns-server.ts';
import { closedPort } from '../support/origins.ts';
import { proxyStatus, type RunningSidecar, startSidecar } from '../support/run-sidecar.ts';

/** An HTTP origin whose /healthz status can be changed, recording who asked what. */
async function healthOrigin(port = 0): Promise<{
  port: number;
  requests: { path: string; agent: string; at: number }[];
  healthStatus: number;
  close(): Promise<void>;
}> {
  const state = { healthStatus: 200 };
  const requests: { path: string; agent: string; at: number }[] = [];
  const server = http.createServer((req, res) => {
    requests.push({ path: req.url ?? '', agent: req.headers['user-agent'] ?? '', at: performance.now() });
    res.writeHead(req.url === '/healthz' ? state.healthStatus : 200, { 'content-type': 'text/plain' });
    res.end('ok\n');
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    get healthStatus() {
      return state.healthStatus;
    },
    set healthStatus(v: number) {
      state.healthStatus = v;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const health = (sc: RunningSidecar): HealthSnapshot => sc.sidecar.health()[0] as HealthSnapshot;

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  while (!check()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return performance.now() - t0;
}

const metric = async (sc: RunningSidecar, name: string, labels: Record<string, string>) => {
  const m = await sc.metrics.registry.getSingleMetric(name)?.get();
  return (m?.values ?? [])
    .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((n, v) => n + v.value, 0);
};

describe('active health checks', () => {
  it('shows an origin nobody calls Unreachable with its cause within about one interval, and Reachable once back, without a request', async () => {
    const port = await closedPort();
    await using sc = await startSidecar({
      upstream: { host: '127.0.0.1', port },
      healthCheck: { interval: '300ms', timeout: '200ms' },
    });
    const down = await until('Unreachable', () => health(sc).state === 'Unreachable', 1_000);
    expect(down).toBeLessThan(450);
    // One failed check shows the cause but does not eject (the app may just not listen yet).
    expect(health(sc)).toMatchObject({ ejected: false, check: { consecutive: 1 } });
    expect(health(sc)).toMatchObject({
      state: 'Unreachable',
      source: 'Probe',
      cause: 'connection_refused',
      requests: 0,
      failures: 0,
      lastFailure: {
        cause: 'connection_refused',
        source: 'Probe',
        statusCode: 531,
        address: `127.0.0.1:${port}`,
      },
      check: { lastResult: 'Failure', cause: 'connection_refused' },
    });
    expect(await metric(sc, 'originguard_origin_reachable', {})).toBe(0);
    expect(
      await metric(sc, 'originguard_health_check_failures_total', {
        cause: 'connection_refused',
        phase: 'connect',
      }),
    ).toBeGreaterThan(0);

    const origin = await healthOrigin(port);
    try {
      const up = await until('Reachable', () => health(sc).state === 'Reachable', 1_000);
      expect(up).toBeLessThan(450);
      expect(health(sc)).toMatchObject({ state: 'Reachable', source: 'Probe', requests: 0 });
      // A connect-only check sends no request: the origin saw none.
      expect(origin.requests).toEqual([]);
      expect(await metric(sc, 'originguard_origin_reachable', {})).toBe(1);
    } finally {
      await origin.close();
    }
  });

  it('says connection_timeout for an origin behind a dropping firewall, after the check timeout', async () => {
    await using dropping = await startFullAcceptQueue();
    await using sc = await startSidecar({
      upstream: { host: '127.0.0.1', port: dropping.port },
      timeouts: { connect: '2s' },
      healthCheck: { interval: '400ms', timeout: '150ms' },
    });
    await until('Unreachable', () => health(sc).state === 'Unreachable', 1_500);
    expect(health(sc)).toMatchObject({ cause: 'connection_timeout', phase: 'connect', source: 'Probe' });
    // The check's timeout, not the Origin's 2 s connect timeout, bounds the attempt.
    expect(health(sc).lastFailure?.elapsedMs).toBeGreaterThanOrEqual(145);
    expect(health(sc).lastFailure?.elapsedMs).toBeLessThan(400);
  });

  it('ejects an origin its checks cannot reach, fails requests fast meanwhile, and lets a check, not a user request, decide recovery', async () => {
    await using dropping = await startFullAcceptQueue();
    await using sc = await startSidecar({
      upstream: { host: '127.0.0.1', port: dropping.port },
      timeouts: { connect: '1s' },
      outlierDetection: { consecutiveFailures: 5, baseEjectionTime: '200ms', maxEjectionTime: '200ms' },
      healthCheck: { interval: '1s', timeout: '150ms', path: '/healthz', unhealthyThreshold: 2 },
    });
    // Two failed checks in a row (the threshold) eject it.
    await until('ejected by a check', () => health(sc).ejected, 3_000);
    expect(health(sc).check?.consecutive).toBeGreaterThanOrEqual(2);
    // While it stays down, requests fail at once: none is admitted as a trial that would
    // wait the 1 s connect timeout, though each 200 ms ejection ends again and again.
    const slowest = { ms: 0 };
    for (const t0 = performance.now(); performance.now() - t0 < 1_200; ) {
      const fast = await sc.get();
      expect(fast.status).toBe(531);
      expect(proxyStatus(fast).error).toBe('destination_unavailable');
      slowest.ms = Math.max(slowest.ms, fast.ms);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(slowest.ms).toBeLessThan(200);

    // The origin comes back on the same port.
    await dropping.close();
    const origin = await healthOrigin(dropping.port);
    try {
      const answers: number[] = [];
      const t0 = performance.now();
      while (!answers.includes(200) && performance.now() - t0 < 3_000) {
        answers.push((await sc.get()).status);
        await new Promise((r) => setTimeout(r, 20));
      }
      // Requests kept coming while the origin was back but not yet seen: they failed fast.
      expect(answers.at(-1)).toBe(200);
      expect(answers.slice(0, -1).every((s) => s === 531)).toBe(true);
      const first = origin.requests[0];
      expect(first?.path).toBe('/healthz');
      expect(first?.agent).toMatch(/^originguard-health-check\//);
      expect(health(sc)).toMatchObject({ state: 'Reachable', source: 'Probe', ejected: false });
      // No user request reached the origin before the check that ended the ejection.
      const users = origin.requests.filter((r) => !r.agent.startsWith('originguard-health-check'));
      expect(users.length).toBeGreaterThan(0);
      expect(users.every((r) => r.at >= (first?.at ?? Number.POSITIVE_INFINITY))).toBe(true);
    } finally {
      await origin.close();
    }
  });

  it('holds the origin Unreachable while its health path answers an unexpected status, whatever traffic gets', async () => {
    const origin = await healthOrigin();
    origin.healthStatus = 503;
    try {
      await using sc = await startSidecar({
        upstream: { host: '127.0.0.1', port: origin.port },
        healthCheck: { interval: '250ms', timeout: '200ms', path: '/healthz', expectedStatuses: ['200-299'] },
      });
      await until('Unreachable', () => health(sc).state === 'Unreachable', 1_000);
      expect(health(sc)).toMatchObject({
        cause: 'destination_unavailable',
        phase: 'response',
        source: 'Probe',
        check: { lastResult: 'Failure', summary: 'GET /healthz answered 503, expected 200-299' },
      });
      expect(origin.requests.find((r) => r.path === '/healthz')?.agent).toMatch(
        /^originguard-health-check\//,
      );
      // Traffic gets its 200, but a 200 on / says nothing about /healthz.
      expect((await sc.get('/')).status).toBe(200);
      expect(health(sc).state).toBe('Unreachable');
      // Only a check ends it.
      origin.healthStatus = 204;
      await until('Reachable', () => health(sc).state === 'Reachable', 1_000);
      expect(health(sc).source).toBe('Probe');
    } finally {
      await origin.close();
    }
  });

  it('skips connect-only checks while requests reach the origin, and runs them once traffic stops', async () => {
    const origin = await healthOrigin();
    try {
      await using sc = await startSidecar({
        upstream: { host: '127.0.0.1', port: origin.port },
        healthCheck: { interval: '200ms', timeout: '100ms' },
      });
      await until('Reachable', () => health(sc).state === 'Reachable', 1_000);
      const before = await metric(sc, 'originguard_health_checks_total', { result: 'success' });
      for (let i = 0; i < 12; i++) {
        expect((await sc.get('/')).status).toBe(200);
        await new Promise((r) => setTimeout(r, 100));
      }
      const during = (await metric(sc, 'originguard_health_checks_total', { result: 'success' })) - before;
      expect(await metric(sc, 'originguard_health_checks_total', { result: 'skipped' })).toBeGreaterThan(2);
      expect(during).toBeLessThanOrEqual(1);
      await new Promise((r) => setTimeout(r, 700));
      expect(await metric(sc, 'originguard_health_checks_total', { result: 'success' })).toBeGreaterThan(
        before + during,
      );
    } finally {
      await origin.close();
    }
  });

  it('finds a dead address behind a name before any request, so the first request does not wait the stagger', async () => {
    await using dead = await startFullAcceptQueue();
    const live = http.createServer((_req, res) => res.end('live\n'));
    await new Promise<void>((resolve) => live.listen(dead.port, '127.0.0.2', resolve));
    await using dns = await startDnsServer({
      'shop.test': { kind: 'answer', a: ['127.0.0.1', '127.0.0.2'], ttl: 60 },
    });
    try {
      await using sc = await startSidecar(
        {
          upstream: { host: 'shop.test', port: dead.port },
          timeouts: { connect: '3s' },
          healthCheck: { interval: '300ms', timeout: '100ms' },
        },
        { dnsServer: dns.address },
      );
      await until(
        'the dead address marked failed',
        () =>
          (health(sc).addresses ?? []).some(
            (a) => a.address === `127.0.0.1:${dead.port}` && a.state === 'failed',
          ),
        1_500,
      );
      expect(health(sc)).toMatchObject({ state: 'Reachable', source: 'Probe' });
      const first = await sc.get();
      expect(first.body).toBe('live\n');
      expect(first.ms).toBeLessThan(CONNECT_STAGGER_MS - 50);
    } finally {
      live.closeAllConnections();
      await new Promise((resolve) => live.close(resolve));
    }
  });
});
