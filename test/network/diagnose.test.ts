// `originguard diagnose` as a library, against real sockets and servers on
// loopback: one test per verdict, each result checked against the v1 schema,
// and the verdict compared with what a real sidecar answers for the same origin.
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFullAcceptQueue } from '../support/accept-queue.ts';
import { diagnoseOrigin, diagnoseTarget, stepLines } from '../support/diagnosis.ts';
import { type DnsServerHandle, startDnsServer } from '../support/dns-server.ts';
import { closedPort, resetOnAccept, silent, startHttpOrigin } from '../support/origins.ts';
import { manifest, proxyStatus, startSidecar } from '../support/run-sidecar.ts';
import { createTestPki, startPlaintextServer, startTlsServer, type TestPki } from '../support/tls.ts';

const DOCS = 'https://github.com/originguard/originguard/blob/main/docs/causes.md';

describe('diagnose: TCP', () => {
  it('says connection_refused (531) when nothing listens, naming the port and what to start', async () => {
    const port = await closedPort();
    const d = await diagnoseTarget(`127.0.0.1:${port}`);
    expect(d.reachable).toBe(false);
    expect(d.verdict).toMatchObject({
      cause: 'connection_refused',
      statusCode: 531,
      failedIn: 'connect',
      source: 'probe',
      summary: `127.0.0.1:${port} refuses connections: nothing listens on port ${port}`,
      docs: `${DOCS}#connection_refused`,
    });
    expect(d.verdict.fix).toContain('start the origin process');
    expect(d.steps.map((s) => [s.phase, s.detail])).toEqual([['tcp', 'refused (ECONNREFUSED)']]);
    expect(d.steps.some((s) => s.phase === 'http')).toBe(false);
  });

  it('says connection_timeout when SYNs are dropped (full accept queue), after exactly the connect timeout', async () => {
    await using q = await startFullAcceptQueue();
    const d = await diagnoseTarget(`127.0.0.1:${q.port}`, { connectTimeoutMs: 300 });
    expect(d.verdict).toMatchObject({ cause: 'connection_timeout', statusCode: 531, failedIn: 'connect' });
    expect(d.verdict.summary).toBe(
      `127.0.0.1:${q.port} drops connections: no answer to the connection attempt within 300ms`,
    );
    const tcp = d.steps.find((s) => s.phase === 'tcp');
    expect(tcp?.detail).toBe('timeout (no connection within 300ms)');
    expect(tcp?.elapsedMs).toBeGreaterThanOrEqual(295);
    expect(tcp?.elapsedMs).toBeLessThan(450);
  });

  it('says connection_terminated when the origin resets the connection it accepted', async () => {
    await using o = await resetOnAccept();
    const d = await diagnoseTarget(`127.0.0.1:${o.port}`);
    expect(d.reachable).toBe(false);
    expect(d.verdict.cause).toBe('connection_terminated');
    // The kernel completes the handshake first: the reset lands on the connect (531) or the request (536).
    expect([531, 536]).toContain(d.verdict.statusCode);
    expect(d.verdict.summary).toMatch(/reset|closed the connection/);
  });
});

describe('diagnose: DNS, per resolver', () => {
  let dns: DnsServerHandle;
  let origin: Awaited<ReturnType<typeof startHttpOrigin>>;
  beforeAll(async () => {
    origin = await startHttpOrigin();
    dns = await startDnsServer({
      'nx.test': { kind: 'nxdomain' },
      'nodata.test': { kind: 'nodata' },
      'servfail.test': { kind: 'servfail' },
      'refused.test': { kind: 'refused' },
      'silent.test': { kind: 'silent' },
      'two.test': { kind: 'answer', a: ['127.0.0.1', '127.0.0.2'], ttl: 42 },
      'www.test': { kind: 'cname', target: 'edge.test', ttl: 30 },
      'edge.test': { kind: 'cname', target: 'real.test', ttl: 20 },
      'real.test': { kind: 'answer', a: ['127.0.0.1'], ttl: 10 },
      'dangling.test': { kind: 'cname', target: 'nowhere.test' },
      'nowhere.test': { kind: 'nodata' },
      'shop.web.svc.cluster.local': { kind: 'answer', a: ['127.0.0.1'], ttl: 5 },
    });
  });
  afterAll(async () => {
    await dns.close();
    await origin.close();
  });
  const resolver = () => ({ servers: [dns.address] });

  it.each([
    ['nx.test', 'NXDOMAIN', 'nx.test does not exist in DNS (NXDOMAIN from'],
    ['nodata.test', 'NOERROR', 'nodata.test exists but has no A or AAAA record (NOERROR, no data from'],
    ['servfail.test', 'SERVFAIL', 'the resolver fails for servfail.test (SERVFAIL from'],
    ['refused.test', 'REFUSED', 'the DNS server refuses to answer for refused.test (REFUSED from'],
  ])(
    'says dns_error for %s with rcode %s, per server and as the sidecar resolves it',
    async (host, rcode, summary) => {
      const d = await diagnoseTarget(`http://${host}:${origin.port}/`, { resolver: resolver() });
      expect(d.verdict).toMatchObject({ cause: 'dns_error', rcode, statusCode: 531, failedIn: 'dns' });
      expect(d.verdict.summary).toContain(`${summary} ${dns.address})`);
      const [server, sidecar] = d.steps;
      expect(server).toMatchObject({ phase: 'dns', address: dns.address, ok: false, rcode });
      expect(sidecar).toMatchObject({ phase: 'dns', address: null, ok: false, rcode });
      expect(d.steps).toHaveLength(2);
    },
  );

  it('says dns_timeout when the server does not answer, after exactly the connect timeout', async () => {
    const d = await diagnoseTarget(`http://silent.test:${origin.port}/`, {
      resolver: resolver(),
      connectTimeoutMs: 400,
    });
    expect(d.verdict).toMatchObject({ cause: 'dns_timeout', statusCode: 531 });
    expect(d.verdict.summary).toBe(`${dns.address} did not answer for silent.test within 400ms`);
    for (const s of d.steps) {
      expect(s.elapsedMs).toBeGreaterThanOrEqual(395);
      expect(s.elapsedMs).toBeLessThan(600);
    }
    expect(d.steps[0]?.dns?.queries).toMatchObject([{ name: 'silent.test', outcome: 'timeout' }]);
  });

  it('shows the CNAME chain, every address with its TTL, and probes each address', async () => {
    const d = await diagnoseTarget(`http://www.test:${origin.port}/`, { resolver: resolver() });
    expect(d.reachable).toBe(true);
    expect(d.steps[0]?.dns).toMatchObject({
      answeredName: 'www.test',
      cnames: ['edge.test', 'real.test'],
      addresses: [{ address: '127.0.0.1', family: 4, ttl: 10 }],
    });
    expect(d.steps[0]?.detail).toBe('www.test → 127.0.0.1 ttl 10s (CNAME www.test → edge.test → real.test)');
  });

  it('says NODATA for a CNAME that leads to no address, and names its target', async () => {
    const d = await diagnoseTarget(`http://dangling.test:${origin.port}/`, { resolver: resolver() });
    expect(d.verdict).toMatchObject({ cause: 'dns_error', rcode: 'NOERROR' });
    expect(d.verdict.summary).toContain('(it is a CNAME to nowhere.test, which has none)');
  });

  it('expands search domains as the sidecar does, showing each name tried and its outcome', async () => {
    const before = dns.queries.length;
    const d = await diagnoseTarget(`http://shop:${origin.port}/`, {
      resolver: { servers: [dns.address], search: ['web.svc.cluster.local', 'svc.cluster.local'], ndots: 5 },
    });
    expect(d.reachable).toBe(true);
    expect(d.steps[0]?.dns?.queries.map((q) => `${q.name} ${q.outcome}`)).toEqual([
      'shop.web.svc.cluster.local NOERROR',
    ]);
    const nx = await diagnoseTarget(`http://nope.web:${origin.port}/`, {
      resolver: { servers: [dns.address], search: ['web.svc.cluster.local', 'svc.cluster.local'], ndots: 5 },
    });
    expect(nx.steps[0]?.dns?.queries.map((q) => `${q.name} ${q.outcome}`)).toEqual([
      'nope.web.web.svc.cluster.local NXDOMAIN',
      'nope.web.svc.cluster.local NXDOMAIN',
      'nope.web NXDOMAIN',
    ]);
    expect(nx.verdict.summary).toContain(
      'names tried: nope.web.web.svc.cluster.local, nope.web.svc.cluster.local, nope.web',
    );
    expect(nx.verdict.fix).toContain('with ndots:5 the search domains are tried before the name itself');
    // The sidecar's own resolver asked the very same names (A and AAAA each), per-server walk included.
    const asked = dns.queries.slice(before).filter((q) => q.name.startsWith('nope'));
    expect(new Set(asked.map((q) => q.name))).toEqual(
      new Set(['nope.web.web.svc.cluster.local', 'nope.web.svc.cluster.local', 'nope.web']),
    );
  });

  it('says 1 of 2 addresses is dead when one refuses and the other answers (reachable, with a warning)', async () => {
    const d = await diagnoseTarget(`http://two.test:${origin.port}/`, { resolver: resolver() });
    expect(d.reachable).toBe(true);
    expect(d.verdict.cause).toBeNull();
    expect(stepLines(d, 'tcp')).toEqual([
      `127.0.0.1:${origin.port} ok`,
      `127.0.0.2:${origin.port} connection_refused`,
    ]);
    expect(d.verdict.warnings).toHaveLength(1);
    expect(d.verdict.warnings[0]?.summary).toBe(
      '1 of 2 addresses of two.test refuses connections (the other answers): a stale DNS record or a dead instance',
    );
  });

  it('shows a server that fails while another answers, and that the sidecar stops at the first', async () => {
    await using bad = await startDnsServer({}, { fallback: { kind: 'servfail' } });
    const d = await diagnoseTarget(`http://two.test:${origin.port}/`, {
      resolver: { servers: [bad.address, dns.address] },
    });
    expect(stepLines(d, 'dns')).toEqual([`${bad.address} dns_error`, `${dns.address} ok`, 'null dns_error']);
    expect(d.verdict.cause).toBe('dns_error');
    expect(d.verdict.summary).toContain(
      `${dns.address} answers when asked on its own, but the sidecar's resolver stops at the first server's answer`,
    );
    expect(d.verdict.fix).toContain(`fix or remove ${bad.address}`);
  });
});

describe('diagnose: TLS', () => {
  let pki: TestPki;
  const servers: { close(): Promise<void> }[] = [];
  beforeAll(async () => {
    pki = await createTestPki();
  });
  afterAll(async () => {
    for (const s of servers) await s.close();
  });
  const tls = async (certKey: TestPki['good']) => {
    const s = await startTlsServer({ certKey });
    servers.push(s);
    return s.port;
  };
  const withCa = () => ({ ca: { path: 'ca.pem', pem: pki.ca.cert } });

  it('reaches a healthy TLS origin and shows protocol, cipher, ALPN, SNI, the chain and the checks', async () => {
    const port = await tls(pki.good);
    const d = await diagnoseTarget(`https://127.0.0.1:${port}/health`, {
      ...withCa(),
      serverName: 'origin.test',
    });
    expect(d.reachable).toBe(true);
    expect(d.verdict).toMatchObject({ cause: null, statusCode: 200, source: 'probe', warnings: [] });
    const step = d.steps.find((s) => s.phase === 'tls');
    expect(step?.tls).toMatchObject({
      serverName: 'origin.test',
      protocol: 'TLSv1.3',
      alpn: 'http/1.1',
      trust: '--ca-file ca.pem',
      chainVerified: true,
      nameChecked: 'origin.test',
      nameMatches: true,
      verificationEnforced: true,
    });
    expect(step?.tls?.chain[0]).toMatchObject({
      subject: 'CN=origin.test',
      issuer: 'CN=originguard test CA',
      subjectAltNames: [
        'DNS:localhost',
        'DNS:origin.test',
        'IP Address:127.0.0.1',
        'IP Address:0:0:0:0:0:0:0:1',
      ],
    });
    expect(step?.tls?.chain[0]?.daysLeft).toBeGreaterThan(25);
    const http = d.steps.find((s) => s.phase === 'http');
    expect(http?.http).toMatchObject({ status: 200, path: '/health', host: `127.0.0.1:${port}`, bytes: 14 });
  });

  it('says the certificate expired, how long ago and its notAfter', async () => {
    const port = await tls(pki.expired);
    const d = await diagnoseTarget(`https://localhost:${port}/`, withCa());
    expect(d.verdict).toMatchObject({ cause: 'tls_certificate_error', statusCode: 531, failedIn: 'tls' });
    expect(d.verdict.summary).toMatch(
      new RegExp(
        `^the certificate of 127\\.0\\.0\\.1:${port} expired 1 day ago \\(notAfter \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\)$`,
      ),
    );
    expect(d.verdict.fix).toContain('renew the certificate on the origin (CN=origin.test)');
  });

  it('says which names the certificate holds when it does not match the name checked', async () => {
    const port = await tls(pki.wrongSan);
    const d = await diagnoseTarget(`https://localhost:${port}/`, withCa());
    expect(d.verdict.cause).toBe('tls_certificate_error');
    expect(d.verdict.summary).toBe(
      `the certificate of 127.0.0.1:${port} is for wrong-name.invalid, not localhost`,
    );
    expect(d.verdict.fix).toContain('--server-name');
  });

  it('says the chain does not lead to the CA given, naming the issuer', async () => {
    const port = await tls(pki.unknownCaLeaf);
    const d = await diagnoseTarget(`https://localhost:${port}/`, withCa());
    expect(d.verdict.cause).toBe('tls_certificate_error');
    expect(d.verdict.summary).toBe(
      `the certificate of 127.0.0.1:${port} (issued by CN=originguard unknown CA) does not chain to --ca-file ca.pem (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`,
    );
  });

  it('says the origin does not speak TLS when a plaintext server answers a TLS upstream', async () => {
    const plain = await startPlaintextServer();
    servers.push(plain);
    const d = await diagnoseTarget(`https://127.0.0.1:${plain.port}/`, withCa());
    expect(d.verdict).toMatchObject({ cause: 'tls_protocol_error', statusCode: 531 });
    expect(d.verdict.summary).toBe(
      `127.0.0.1:${plain.port} does not speak TLS: it answered the handshake with plain data (most likely plain HTTP)`,
    );
    expect(d.steps.find((s) => s.phase === 'tls')?.detail).toBe(
      'tls_protocol_error (ERR_SSL_WRONG_VERSION_NUMBER: wrong version number)',
    );
  });

  it('with --insecure, reaches the origin and says loudly what verification would have refused', async () => {
    const port = await tls(pki.expired);
    const d = await diagnoseTarget(`https://localhost:${port}/`, { ...withCa(), insecure: true });
    expect(d.reachable).toBe(true);
    const hidden = d.verdict.warnings.find((w) => w.cause === 'tls_certificate_error');
    expect(hidden?.summary).toMatch(
      /^CERTIFICATE VERIFICATION IS OFF \(--insecure\) and it hides this: the certificate of .* expired/,
    );
  });
});

describe('diagnose: HTTP', () => {
  it('says http_response_timeout (536) when the origin accepts the request and never answers', async () => {
    await using o = await silent();
    const d = await diagnoseTarget(`http://127.0.0.1:${o.port}/slow`, { responseTimeoutMs: 300 });
    expect(d.verdict).toMatchObject({ cause: 'http_response_timeout', statusCode: 536, failedIn: 'request' });
    expect(d.verdict.summary).toBe(
      `127.0.0.1:${o.port} accepted the connection and the request (GET /slow, Host 127.0.0.1:${o.port}) but sent no response within 300ms`,
    );
    const http = d.steps.find((s) => s.phase === 'http');
    expect(http?.elapsedMs).toBeGreaterThanOrEqual(295);
    expect(http?.elapsedMs).toBeLessThan(450);
  });

  it('reaches a healthy origin, sending the Host the sidecar would send, and times the first byte', async () => {
    await using o = await startHttpOrigin();
    const m = manifest('shop', 8080, {
      upstream: { host: '127.0.0.1', port: o.port },
      hosts: ['www.shop.test'],
      timeouts: { connect: '1s', response: '2s' },
    });
    const d = await diagnoseOrigin(m, { path: '/health?full=1' });
    expect(d.reachable).toBe(true);
    expect(d.verdict.summary).toMatch(
      new RegExp(
        `^127\\.0\\.0\\.1:${o.port} answers 200 to GET /health\\?full=1 \\(Host www\\.shop\\.test\\) in \\d+ ms$`,
      ),
    );
    expect(o.requests.map((r) => [r.url, r.headers.host])).toEqual([['/health?full=1', 'www.shop.test']]);
    expect(d.target).toMatchObject({
      connectTimeoutMs: 1000,
      responseTimeoutMs: 2000,
      hostHeader: 'www.shop.test',
    });
  });

  it('sends the request over the connection the TCP step made: one connection per run', async () => {
    let connections = 0;
    const server = http.createServer((_req, res) => res.end('ok\n'));
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const d = await diagnoseTarget(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      expect(d.reachable).toBe(true);
      expect(connections).toBe(1);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('asks on a new connection when the origin closed the one kept while another address timed out', async () => {
    // 127.0.0.1 drops SYNs for 500 ms; 127.0.0.2 closes a connection that sends nothing within 100 ms.
    await using dead = await startFullAcceptQueue();
    const served: number[] = [];
    const live = net.createServer((socket) => {
      const idle = setTimeout(() => socket.end(), 100);
      socket.once('data', () => {
        clearTimeout(idle);
        served.push(Date.now());
        socket.end('HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n');
      });
    });
    await new Promise<void>((resolve) => live.listen(dead.port, '127.0.0.2', resolve));
    await using dns = await startDnsServer({
      'shop.test': { kind: 'answer', a: ['127.0.0.1', '127.0.0.2'], ttl: 60 },
    });
    try {
      const d = await diagnoseTarget(`http://shop.test:${dead.port}/`, {
        connectTimeoutMs: 500,
        resolver: { servers: [dns.address] },
      });
      expect(d.reachable).toBe(true);
      expect(d.verdict.summary).toContain(`127.0.0.2:${dead.port} answers 200`);
      expect(served).toHaveLength(1);
    } finally {
      await new Promise((resolve) => live.close(resolve));
    }
  });

  it('follows the Origin to its backup when the upstream refuses, and warns that it fails over', async () => {
    await using backup = await startHttpOrigin();
    const dead = await closedPort();
    const m = manifest('shop', 8080, {
      upstream: { host: '127.0.0.1', port: dead, backups: [{ host: '127.0.0.1', port: backup.port }] },
    });
    const d = await diagnoseOrigin(m);
    expect(d.reachable).toBe(true);
    expect(d.verdict.summary).toContain(`127.0.0.1:${backup.port} answers 200`);
    expect(d.verdict.warnings.map((w) => w.summary)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^the upstream 127\\.0\\.0\\.1:${dead} is unreachable \\(connection_refused\\): traffic fails over to the backup 127\\.0\\.0\\.1:${backup.port}`,
        ),
      ),
    ]);
  });
});

describe('diagnose gives the cause and status a real sidecar answers for the same origin', () => {
  it.each([
    ['a closed port', async () => ({ host: '127.0.0.1', port: await closedPort(), close: async () => {} })],
    [
      'a silent origin',
      async () => {
        const o = await silent();
        return { host: '127.0.0.1', port: o.port, close: () => o.close() };
      },
    ],
    ['a name that does not exist', async () => ({ host: 'nx.test', port: 80, close: async () => {} })],
  ])('%s', async (_, start) => {
    await using dns = await startDnsServer({});
    const o = await start();
    try {
      const spec = {
        upstream: { host: o.host, port: o.port },
        timeouts: { connect: '500ms', response: '400ms' },
      };
      await using sc = await startSidecar(spec, { dnsServer: dns.address });
      const answer = await sc.get('/');
      const d = await diagnoseOrigin(manifest('same', 8080, spec), { resolver: { servers: [dns.address] } });
      expect(d.verdict.cause).toBe(proxyStatus(answer).error);
      expect(d.verdict.statusCode).toBe(answer.status);
    } finally {
      await o.close();
    }
  });
});
