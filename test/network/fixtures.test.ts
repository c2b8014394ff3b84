/**
 * Self-tests of the real-socket fixtures in test/support/. Each test proves that
 * a fixture really produces its condition, observed with plain sockets, undici or
 * dns.Resolver; together they are the project's record of which errno / code each
 * condition gives on this kernel.
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Client } from 'undici';
import { beforeAll, describe, expect, it } from 'vitest';
import { startFullAcceptQueue } from '../support/accept-queue.ts';
import { startDnsServer } from '../support/dns-server.ts';
import { isNetnsAvailable, NETNS, netnsSetup, type RejectWith, runInNetns } from '../support/netns.ts';
import type { ProbeResult, ProbeTarget } from '../support/netns-probe.ts';
import {
  closedPort,
  type EchoResponse,
  finOnAccept,
  finWithoutResponse,
  garbage,
  probeConnect,
  resetAfterRequest,
  resetMidResponse,
  resetOnAccept,
  silent,
  slowHeaders,
  stallMidBody,
  startHttpOrigin,
} from '../support/origins.ts';
import { requestOutcome } from '../support/outcome.ts';
import {
  createTestPki,
  startPlaintextServer,
  startTlsServer,
  type TestPki,
  tlsAlertId,
} from '../support/tls.ts';

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
}

describe('dns-server (c-ares dns.promises.Resolver)', () => {
  it('answers A and AAAA with TTLs and gives a distinct c-ares code per failure', async () => {
    await using dns = await startDnsServer({
      'ok.test': { kind: 'answer', a: ['127.0.0.2'], aaaa: ['::1'], ttl: 42 },
      'v4only.test': { kind: 'answer', a: ['127.0.0.3', '127.0.0.4'], ttl: 7 },
      'nodata.test': { kind: 'nodata' },
      'nx.test': { kind: 'nxdomain' },
      'servfail.test': { kind: 'servfail' },
      'refused.test': { kind: 'refused' },
      'silent.test': { kind: 'silent' },
    });
    const r = dns.resolver({ timeoutMs: 150 });
    expect(await r.resolve4('ok.test', { ttl: true })).toEqual([{ address: '127.0.0.2', ttl: 42 }]);
    expect(await r.resolve6('OK.test.', { ttl: true })).toEqual([{ address: '::1', ttl: 42 }]);
    expect(await r.resolve4('v4only.test', { ttl: true })).toEqual([
      { address: '127.0.0.3', ttl: 7 },
      { address: '127.0.0.4', ttl: 7 },
    ]);
    expect(await codeOf(r.resolve6('v4only.test'))).toBe('ENODATA');
    expect(await codeOf(r.resolve4('nodata.test'))).toBe('ENODATA');
    expect(await codeOf(r.resolve4('nx.test'))).toBe('ENOTFOUND');
    expect(await codeOf(r.resolve4('not-in-table.test'))).toBe('ENOTFOUND');
    expect(await codeOf(r.resolve4('servfail.test'))).toBe('ESERVFAIL');
    expect(await codeOf(r.resolve4('refused.test'))).toBe('EREFUSED');
    const t0 = performance.now();
    expect(await codeOf(r.resolve4('silent.test'))).toBe('ETIMEOUT');
    const elapsed = performance.now() - t0;
    // c-ares 1.34 (Node 24) raises any per-try timeout below 250 ms to 250 ms
    // (MIN_TIMEOUT_MS in ares_metrics.c), and Node checks c-ares' timeouts only on a
    // periodic timer of min(timeout, 1000) ms: timeout 150 → ETIMEOUT after ~300 ms.
    expect(elapsed).toBeGreaterThanOrEqual(240);
    expect(elapsed).toBeLessThan(1000);
    expect(dns.queryCount('ok.test')).toBe(2);
    expect(dns.queryCount('silent.test')).toBe(1); // tries: 1 → one question
    expect(dns.queries.find((q) => q.name === 'ok.test' && q.type === 'AAAA')).toBeDefined();
  });

  it('delays answers, and set()/delete() change the table at run time', async () => {
    await using dns = await startDnsServer({
      'slow.test': { kind: 'answer', a: ['127.0.0.2'], delayMs: 120 },
    });
    // timeout 60 is raised to c-ares' 250 ms floor, so a 120 ms answer still arrives.
    const r = dns.resolver({ timeoutMs: 60 });
    const t0 = performance.now();
    expect(await r.resolve4('slow.test')).toEqual(['127.0.0.2']);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(110);
    // A delay longer than the effective resolver timeout is a timeout. The effective
    // timeout is anywhere in [timeout, 2 × timeout] (Node's periodic check), so the
    // delay must exceed twice the configured value.
    dns.set('slow.test', { kind: 'answer', a: ['127.0.0.2'], delayMs: 600 });
    const t1 = performance.now();
    expect(await codeOf(dns.resolver({ timeoutMs: 250 }).resolve4('slow.test'))).toBe('ETIMEOUT');
    expect(performance.now() - t1).toBeLessThan(560);
    dns.set('slow.test', { kind: 'servfail' });
    expect(await codeOf(r.resolve4('slow.test'))).toBe('ESERVFAIL');
    dns.delete('slow.test');
    expect(await codeOf(r.resolve4('slow.test'))).toBe('ENOTFOUND');
  });
});

describe('origins: HTTP origin', () => {
  it('echoes, streams large bodies, digests uploads, delays headers and records requests', async () => {
    await using origin = await startHttpOrigin();
    const client = new Client(origin.url);
    try {
      const echo = await client.request({
        method: 'PUT',
        path: '/a/b?x=1',
        headers: { 'x-test': 'yes' },
        body: 'hi',
      });
      const e = (await echo.body.json()) as EchoResponse;
      expect(e).toMatchObject({ method: 'PUT', url: '/a/b?x=1', bodyBytes: 2 });
      expect(e.headers['x-test']).toBe('yes');
      expect(e.bodySha256).toBe(createHash('sha256').update('hi').digest('hex'));

      const big = await client.request({ method: 'GET', path: `/bytes/${5 * 1024 * 1024 + 3}` });
      expect(big.headers['content-length']).toBe(String(5 * 1024 * 1024 + 3));
      let n = 0;
      for await (const chunk of big.body) n += (chunk as Buffer).length;
      expect(n).toBe(5 * 1024 * 1024 + 3);

      const upload = Buffer.alloc(3 * 1024 * 1024, 7);
      const up = await client.request({ method: 'POST', path: '/upload', body: upload });
      const u = (await up.body.json()) as EchoResponse;
      expect(u.bodyBytes).toBe(upload.length);
      expect(u.bodySha256).toBe(createHash('sha256').update(upload).digest('hex'));

      const t0 = performance.now();
      const slow = await client.request({ method: 'GET', path: '/?delay=150&status=503' });
      await slow.body.dump();
      expect(slow.statusCode).toBe(503);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(145);

      expect(origin.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
        'PUT /a/b?x=1',
        `GET /bytes/${5 * 1024 * 1024 + 3}`,
        'POST /upload',
        'GET /?delay=150&status=503',
      ]);
      expect(origin.requests[2]?.bodyBytes).toBe(upload.length);
    } finally {
      await client.close();
    }
  });

  it('serves on ::1 and delays every response with headersDelayMs', async () => {
    await using origin = await startHttpOrigin({ host: '::1', headersDelayMs: 100 });
    expect(origin.url).toBe(`http://[::1]:${origin.port}`);
    const o = await requestOutcome(origin.url);
    expect(o).toMatchObject({ status: 200, connection: 'connected' });
    expect(o.ms).toBeGreaterThanOrEqual(95);
  });
});

describe('origins: connect-phase and response-phase failures (undici.request)', () => {
  it('closedPort: ECONNREFUSED from connect(), undici never connected', async () => {
    const port = await closedPort();
    expect(await probeConnect(port)).toBe('ECONNREFUSED');
    const o = await requestOutcome(`http://127.0.0.1:${port}`);
    expect(o).toMatchObject({ code: 'ECONNREFUSED', syscall: 'connect', connection: 'connectError' });
  });

  it('resetOnAccept: the kernel completed the handshake, yet undici reports ECONNRESET from connect()', async () => {
    await using origin = await resetOnAccept();
    // A plain socket: the RST may beat the connect callback on loopback (both are
    // ready in the same event-loop turn), so either outcome is a real one.
    expect(['ECONNRESET', 'connected']).toContain(await probeConnect(origin.port));
    const o = await requestOutcome(origin.url);
    expect(o.code).toBe('ECONNRESET');
    // Observed here 10/10: syscall 'connect' with undici:client:connectError, i.e. a
    // connect-phase failure (531) although the TCP handshake had completed.
    expect([
      { syscall: 'connect', connection: 'connectError' },
      { syscall: 'read', connection: 'connected' },
    ]).toContainEqual({ syscall: o.syscall, connection: o.connection });
    expect(origin.connections).toBeGreaterThanOrEqual(1);
  });

  it('finOnAccept and finWithoutResponse: UND_ERR_SOCKET "other side closed" after connecting', async () => {
    await using fin = await finOnAccept();
    await using finAfter = await finWithoutResponse();
    for (const url of [fin.url, finAfter.url]) {
      const o = await requestOutcome(url);
      expect(o).toMatchObject({
        code: 'UND_ERR_SOCKET',
        message: 'other side closed',
        connection: 'connected',
      });
    }
    expect(finAfter.bytesReceived).toBeGreaterThan(0);
  });

  it('resetAfterRequest: ECONNRESET from read() after connecting', async () => {
    await using origin = await resetAfterRequest();
    const o = await requestOutcome(origin.url);
    expect(o).toMatchObject({
      code: 'ECONNRESET',
      syscall: 'read',
      failedAt: 'request',
      connection: 'connected',
    });
  });

  it('resetMidResponse: status 200, then ECONNRESET while reading the body', async () => {
    await using origin = await resetMidResponse({ contentLength: 50_000, sentBytes: 1000 });
    const o = await requestOutcome(origin.url);
    expect(o).toMatchObject({ status: 200, failedAt: 'body', code: 'ECONNRESET', connection: 'connected' });
  });

  it('garbage: HTTPParserError (no code) after connecting', async () => {
    await using origin = await garbage();
    const o = await requestOutcome(origin.url);
    expect(o).toMatchObject({ name: 'HTTPParserError', failedAt: 'request', connection: 'connected' });
  });

  it('slowHeaders(ms): answers after ms', async () => {
    await using origin = await slowHeaders(150);
    const o = await requestOutcome(origin.url);
    expect(o).toMatchObject({ status: 200, bodyBytes: 2, connection: 'connected' });
    expect(o.ms).toBeGreaterThanOrEqual(145);
  });

  it('silent and stallMidBody: undici headers/body timeouts (its timers tick at ~1 s resolution)', async () => {
    await using quiet = await silent();
    await using stall = await stallMidBody();
    const [h, b, aborted] = await Promise.all([
      requestOutcome(quiet.url, { headersTimeoutMs: 100 }),
      requestOutcome(stall.url, { bodyTimeoutMs: 100 }),
      requestOutcome(quiet.url, { abortAfterMs: 150 }),
    ]);
    expect(h).toMatchObject({
      code: 'UND_ERR_HEADERS_TIMEOUT',
      failedAt: 'request',
      connection: 'connected',
    });
    expect(b).toMatchObject({
      status: 200,
      code: 'UND_ERR_BODY_TIMEOUT',
      failedAt: 'body',
      connection: 'connected',
    });
    // 100 ms configured, fired after up to ~1 s: undici uses its FastTimer for these.
    expect(h.ms).toBeLessThan(2500);
    expect(aborted).toMatchObject({ name: 'TimeoutError', connection: 'connected' });
    expect(aborted.ms).toBeLessThan(400);
    expect(quiet.bytesReceived).toBeGreaterThan(0);
  });
});

describe('tls', () => {
  let pki: TestPki;
  beforeAll(async () => {
    pki = await createTestPki({ dnsName: 'origin.test' });
  });
  const trust = () => ({ ca: pki.ca.cert });

  it('good leaf: 200 by IP, by localhost, by servername, and over ::1', async () => {
    await using v4 = await startTlsServer({ certKey: pki.good, body: 'tls ok' });
    await using v6 = await startTlsServer({ certKey: pki.good, host: '::1' });
    expect(await requestOutcome(v4.url, { connect: trust() })).toMatchObject({ status: 200, bodyBytes: 6 });
    expect(await requestOutcome(`https://localhost:${v4.port}`, { connect: trust() })).toMatchObject({
      status: 200,
    });
    expect(
      await requestOutcome(v4.url, { connect: { ...trust(), servername: 'origin.test' } }),
    ).toMatchObject({
      status: 200,
    });
    expect(await requestOutcome(v6.url, { connect: trust() })).toMatchObject({ status: 200 });
    expect(v4.tlsErrors).toEqual([]);
  });

  it.each([
    ['expired', 'CERT_HAS_EXPIRED'],
    ['notYetValid', 'CERT_NOT_YET_VALID'],
    ['wrongSan', 'ERR_TLS_CERT_ALTNAME_INVALID'],
    ['selfSigned', 'DEPTH_ZERO_SELF_SIGNED_CERT'],
    ['unknownCaLeaf', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    ['unknownCaChain', 'SELF_SIGNED_CERT_IN_CHAIN'],
  ] as const)('%s certificate: %s during connect', async (which, code) => {
    await using server = await startTlsServer({ certKey: pki[which] });
    const o = await requestOutcome(server.url, { connect: trust() });
    expect(o).toMatchObject({ code, connection: 'connectError', connectErrorCode: code });
  });

  it('TLS 1.3-only server vs a client capped at TLS 1.2: protocol_version alert 70', async () => {
    await using server = await startTlsServer({ certKey: pki.good, minVersion: 'TLSv1.3' });
    const o = await requestOutcome(server.url, { connect: { ...trust(), maxVersion: 'TLSv1.2' } });
    expect(o).toMatchObject({ code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', connection: 'connectError' });
    expect(tlsAlertId({ message: o.message ?? '' })).toBe(70);
    expect(server.tlsErrors).toContain('ERR_SSL_UNSUPPORTED_PROTOCOL');
  });

  it('client certificate required under TLS 1.2: handshake_failure alert 40 (OpenSSL 3 code name)', async () => {
    await using server = await startTlsServer({
      certKey: pki.good,
      maxVersion: 'TLSv1.2',
      requireClientCertCa: pki.ca.cert,
    });
    const o = await requestOutcome(server.url, { connect: trust() });
    // Node 24's OpenSSL 3 names it ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE (older: ..._SSLV3_ALERT_...).
    expect(o).toMatchObject({ code: 'ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE', connection: 'connectError' });
    expect(tlsAlertId({ message: o.message ?? '' })).toBe(40);
    expect(server.tlsErrors).toContain('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE');
    const withCert = await requestOutcome(server.url, {
      connect: { ...trust(), cert: pki.client.cert, key: pki.client.key },
    });
    expect(withCert).toMatchObject({ status: 200 });
  });

  it('client certificate required under TLS 1.3: undici has connected, then "other side closed"', async () => {
    await using server = await startTlsServer({
      certKey: pki.good,
      minVersion: 'TLSv1.3',
      requireClientCertCa: pki.ca.cert,
    });
    const o = await requestOutcome(server.url, { connect: trust() });
    // The client finishes its side of a TLS 1.3 handshake before the server checks the
    // certificate: a connected socket closed by the peer, not a connect error.
    expect(o).toMatchObject({
      code: 'UND_ERR_SOCKET',
      message: 'other side closed',
      connection: 'connected',
    });
    expect(server.tlsErrors).toContain('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE');
  });

  it('plaintext HTTP origin on a TLS upstream: ERR_SSL_WRONG_VERSION_NUMBER', async () => {
    await using plain = await startPlaintextServer();
    const o = await requestOutcome(`https://127.0.0.1:${plain.port}`, { connect: trust() });
    expect(o).toMatchObject({ code: 'ERR_SSL_WRONG_VERSION_NUMBER', connection: 'connectError' });
  });

  it('raw origins under TLS: stalled handshake, FIN, RST and garbage after the ClientHello', async () => {
    await using quiet = await silent();
    await using fin = await finWithoutResponse();
    await using rst = await resetAfterRequest();
    await using junk = await garbage();
    const tlsUrl = (u: string) => u.replace('http:', 'https:');
    const [stalled, f, r, g] = await Promise.all([
      requestOutcome(tlsUrl(quiet.url), { connect: trust(), connectTimeoutMs: 200 }),
      requestOutcome(tlsUrl(fin.url), { connect: trust() }),
      requestOutcome(tlsUrl(rst.url), { connect: trust() }),
      requestOutcome(tlsUrl(junk.url), { connect: trust() }),
    ]);
    // undici's connect timeout covers TCP + TLS; 200 ms fired after ~0.5-1 s (coarse timer).
    expect(stalled).toMatchObject({ code: 'UND_ERR_CONNECT_TIMEOUT', connection: 'connectError' });
    expect(f).toMatchObject({ code: 'ECONNRESET', connection: 'connectError' });
    expect(f.message).toMatch(/disconnected before secure TLS connection was established/);
    expect(r).toMatchObject({ code: 'ECONNRESET', syscall: 'read', connection: 'connectError' });
    expect(g).toMatchObject({ code: 'ERR_SSL_WRONG_VERSION_NUMBER', connection: 'connectError' });
  });
});

describe('accept-queue', () => {
  it('drops every SYN once backlog+1 connections wait: a real connect timeout on loopback', async () => {
    await using q = await startFullAcceptQueue({ backlog: 1 });
    // Linux 6.x completes exactly backlog + 1 handshakes.
    expect(q.held).toBe(2);
    expect(await probeConnect(q.port, '127.0.0.1', 250)).toBe('timeout');
    const o = await requestOutcome(q.url, { connectTimeoutMs: 200 });
    expect(o).toMatchObject({ code: 'UND_ERR_CONNECT_TIMEOUT', connection: 'connectError' });
    // 200 ms configured; undici fired it after ~1 s here (coarse timer).
    expect(o.ms).toBeGreaterThanOrEqual(190);
    expect(o.ms).toBeLessThan(2500);
    // Still full afterwards: aborted SYN_SENT sockets leave nothing behind.
    expect(await probeConnect(q.port, '127.0.0.1', 150)).toBe('timeout');
  });
});

const netns = isNetnsAvailable();
if (!netns.ok) console.warn(`[fixtures] netns tests skipped: ${netns.reason}`);

describe.skipIf(!netns.ok)('netns (unshare -rn, nft, ip route)', () => {
  const probeScript = fileURLToPath(new URL('../support/netns-probe.ts', import.meta.url));
  const S = netnsSetup;

  it('IPv4 ICMP rejects, tcp reset, drop and route types give their errno', async () => {
    const v4: [string, RejectWith][] = [
      ['host-unreachable', 'icmp type host-unreachable'],
      ['net-unreachable', 'icmp type net-unreachable'],
      ['port-unreachable', 'icmp type port-unreachable'],
      ['prot-unreachable', 'icmp type prot-unreachable'],
      ['admin-prohibited', 'icmp type admin-prohibited'],
      ['host-prohibited', 'icmp type host-prohibited'],
      ['net-prohibited', 'icmp type net-prohibited'],
      ['tcp-reset', 'tcp reset'],
    ];
    const routes = ['unreachable', 'prohibit', 'blackhole', 'throw'] as const;
    const setup = [S.addAddress(NETNS.v4), ...S.nftInit(), S.drop(NETNS.v4, 2000)];
    const targets: ProbeTarget[] = [
      { id: 'drop', host: NETNS.v4, port: 2000 },
      { id: 'closed', host: NETNS.v4, port: 2001 },
      { id: 'no-route', host: NETNS.v4Route(200), port: 80 },
    ];
    v4.forEach(([id, how], i) => {
      setup.push(S.reject(NETNS.v4, 1000 + i, how));
      targets.push({ id, host: NETNS.v4, port: 1000 + i });
    });
    routes.forEach((type, i) => {
      setup.push(S.route(type, NETNS.v4Route(i + 1)));
      targets.push({ id: `route-${type}`, host: NETNS.v4Route(i + 1), port: 80 });
    });
    const r = await runInNetns<Record<string, ProbeResult>>({
      setup,
      script: probeScript,
      args: [JSON.stringify(targets)],
    });
    const codes = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.code]));
    expect(codes).toEqual({
      'host-unreachable': 'EHOSTUNREACH',
      'net-unreachable': 'ENETUNREACH',
      'port-unreachable': 'ECONNREFUSED',
      'prot-unreachable': 'ENOPROTOOPT',
      'admin-prohibited': 'EHOSTUNREACH',
      'host-prohibited': 'EHOSTUNREACH',
      'net-prohibited': 'ENETUNREACH',
      'tcp-reset': 'ECONNREFUSED',
      drop: 'timeout',
      closed: 'ECONNREFUSED',
      'no-route': 'ENETUNREACH',
      'route-unreachable': 'EHOSTUNREACH',
      'route-prohibit': 'EACCES',
      'route-blackhole': 'EINVAL',
      'route-throw': 'ENETUNREACH',
    });
    expect(r['host-unreachable']?.errno).toBe(-113);
    // Every IPv4 reject is taken on the first SYN (~15 ms here), well before the 1 s
    // SYN retransmission; the bound is loose for a loaded machine.
    for (const [id, v] of Object.entries(r)) if (id !== 'drop') expect(v.ms, id).toBeLessThan(900);
  });

  it('IPv6 rejects and routes (loopback artifact: an ICMPv6 reject lands ~1 s late)', async () => {
    const v6: [string, RejectWith][] = [
      ['no-route', 'icmpv6 type no-route'],
      ['admin-prohibited', 'icmpv6 type admin-prohibited'],
      ['addr-unreachable', 'icmpv6 type addr-unreachable'],
      ['port-unreachable', 'icmpv6 type port-unreachable'],
      ['policy-fail', 'icmpv6 type policy-fail'],
      ['reject-route', 'icmpv6 type reject-route'],
      ['tcp-reset', 'tcp reset'],
    ];
    const routes = ['unreachable', 'prohibit', 'blackhole', 'throw'] as const;
    const setup = [S.addAddress(NETNS.v6), ...S.nftInit(), S.drop(NETNS.v6, 2000)];
    const targets: ProbeTarget[] = [
      { id: 'drop', host: NETNS.v6, port: 2000 },
      { id: 'no-route-at-all', host: NETNS.v6Route(200), port: 80 },
    ];
    v6.forEach(([id, how], i) => {
      setup.push(S.reject(NETNS.v6, 1000 + i, how));
      targets.push({ id, host: NETNS.v6, port: 1000 + i, timeoutMs: 2500 });
    });
    routes.forEach((type, i) => {
      setup.push(S.route(type, NETNS.v6Route(i + 1)));
      targets.push({ id: `route-${type}`, host: NETNS.v6Route(i + 1), port: 80 });
    });
    const r = await runInNetns<Record<string, ProbeResult>>({
      setup,
      script: probeScript,
      args: [JSON.stringify(targets)],
    });
    const codes = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.code]));
    expect(codes).toEqual({
      'no-route': 'ENETUNREACH',
      'admin-prohibited': 'EACCES',
      'addr-unreachable': 'EHOSTUNREACH',
      'port-unreachable': 'ECONNREFUSED',
      'policy-fail': 'EACCES',
      'reject-route': 'EACCES',
      'tcp-reset': 'ECONNREFUSED',
      drop: 'timeout',
      'no-route-at-all': 'ENETUNREACH',
      'route-unreachable': 'EHOSTUNREACH',
      'route-prohibit': 'EACCES',
      'route-blackhole': 'EINVAL',
      'route-throw': 'ENETUNREACH',
    });
    // Timing (~1030 ms for every ICMPv6 reject here, ~5 ms for routes) is not asserted,
    // it depends on scheduling: the first ICMPv6 error arrives while connect() still
    // holds the socket lock and is dropped (TcpExt LockDroppedIcmps 1, nft counter 2
    // SYNs); the SYN retransmitted after the 1 s initial RTO draws the error that aborts
    // the connect. Over a real link the ICMP arrives later and is taken at once.
    expect(r['route-unreachable']?.ms).toBeLessThan(900);
  });

  it('runInNetns rejects with stderr when a setup line fails', async () => {
    await expect(
      runInNetns({ setup: ['ip route add bogus-route-type 198.18.9.9/32'], script: probeScript }),
    ).rejects.toThrow(/netns run exited with/);
  });
});
