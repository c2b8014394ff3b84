// `originguard diagnose` as a user runs it: a separate process, its output on
// a pipe or a terminal, its exit code per class of cause, its JSON checked
// against the v1 schema, and its answers to bad usage and bad files. The
// kubectl plugin against a real control plane: test/cluster/diagnose-plugin.test.ts.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/diagnose/diagnosis.ts';
import { startFullAcceptQueue } from '../support/accept-queue.ts';
import { expectValidDiagnosis } from '../support/diagnosis.ts';
import { type DnsServerHandle, startDnsServer } from '../support/dns-server.ts';
import { closedPort, silent, startHttpOrigin } from '../support/origins.ts';
import { createTestPki, startTlsServer } from '../support/tls.ts';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(args: readonly string[], env: NodeJS.ProcessEnv = {}, entry = CLI): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [entry, ...args],
      { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, timeout: 20_000 },
      (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : Number((err as { code?: number }).code), stdout, stderr });
      },
    );
  });
}

/** Timings vary: every "12 ms" becomes "N ms", and padded columns collapse. */
const normalized = (text: string) =>
  text
    .replace(/\d+ ms/g, 'N ms')
    .replace(/ {2,}N ms/g, ' N ms')
    .replace(/:\d{4,5}\b/g, ':PORT');

let work = '';
/** The sources under the plugin's name, as kubectl runs it (the checked-in bin would load a stale dist/). */
let plugin = '';
let dns: DnsServerHandle;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'og-diagnose-'));
  plugin = join(work, 'kubectl-originguard');
  await symlink(CLI, plugin);
  dns = await startDnsServer({ 'nx.test': { kind: 'nxdomain' } });
});
afterAll(async () => {
  await dns.close();
  await rm(work, { recursive: true, force: true });
});

describe('originguard diagnose: exit codes and JSON', () => {
  it('exits 0 for a reachable origin and prints JSON valid against the v1 schema', async () => {
    await using o = await startHttpOrigin();
    const r = await run(['diagnose', `http://127.0.0.1:${o.port}/health`, '-o', 'json']);
    expect(r.code).toBe(0);
    const d = expectValidDiagnosis(JSON.parse(r.stdout));
    expect(d).toMatchObject({
      apiVersion: 'diagnose.originguard.dev/v1',
      kind: 'Diagnosis',
      reachable: true,
    });
    expect(d.verdict).toMatchObject({ cause: null, statusCode: 200 });
    expect(d.steps.map((s) => s.phase)).toEqual(['tcp', 'http']);
  });

  it.each([
    [
      'refused',
      EXIT.refused,
      async () => ({ target: `127.0.0.1:${await closedPort()}`, args: [], close: async () => {} }),
    ],
    [
      'NXDOMAIN',
      EXIT.dns,
      async () => ({ target: 'http://nx.test/', args: ['--dns-server', dns.address], close: async () => {} }),
    ],
    [
      'a dropped SYN',
      EXIT.connectTimeout,
      async () => {
        const q = await startFullAcceptQueue();
        return {
          target: `127.0.0.1:${q.port}`,
          args: ['--connect-timeout', '300ms'],
          close: () => q.close(),
        };
      },
    ],
    [
      'an expired certificate',
      EXIT.tls,
      async () => {
        const pki = await createTestPki();
        const s = await startTlsServer({ certKey: pki.expired });
        await writeFile(join(work, 'ca.pem'), pki.ca.cert);
        return {
          target: `https://localhost:${s.port}/`,
          args: ['--ca-file', join(work, 'ca.pem')],
          close: () => s.close(),
        };
      },
    ],
    [
      'a silent origin',
      EXIT.response,
      async () => {
        const s = await silent();
        return {
          target: `127.0.0.1:${s.port}`,
          args: ['--response-timeout', '300ms'],
          close: () => s.close(),
        };
      },
    ],
    [
      'a cluster name this machine cannot resolve',
      EXIT.inconclusive,
      async () => ({
        target: 'http://shop.web.svc.cluster.local/',
        args: ['--dns-server', dns.address],
        close: async () => {},
      }),
    ],
  ])('exits with its class code for %s (%i), with valid JSON', async (_, code, start) => {
    const t = await start();
    try {
      const r = await run(['diagnose', t.target, ...t.args, '-o', 'json']);
      expect(r.code, r.stderr).toBe(code);
      const d = expectValidDiagnosis(JSON.parse(r.stdout));
      expect(d.reachable).toBe(false);
    } finally {
      await t.close();
    }
  });

  it('prints YAML with -o yaml', async () => {
    const r = await run(['diagnose', `127.0.0.1:${await closedPort()}`, '-o', 'yaml']);
    expect(r.code).toBe(EXIT.refused);
    expect(r.stdout).toMatch(/^apiVersion: diagnose\.originguard\.dev\/v1\nkind: Diagnosis\n/);
    expect(r.stdout).toContain('cause: connection_refused');
  });
});

describe('originguard diagnose: human output', () => {
  it('prints each step, the verdict, the fix, the evidence and the docs link, without colour on a pipe', async () => {
    const port = await closedPort();
    const r = await run(['diagnose', `127.0.0.1:${port}`], { TERM: 'xterm-256color' });
    expect(r.code).toBe(EXIT.refused);
    expect(r.stdout).not.toContain('\u001b[');
    expect(r.stderr).toBe('');
    expect(normalized(r.stdout)).toBe(
      [
        'Diagnosing 127.0.0.1:PORT',
        '  connect timeout 5s, response timeout 60s; from this machine',
        '',
        'TCP   port PORT'.replace('PORT', String(port)),
        '  ✗ 127.0.0.1:PORT N ms  refused (ECONNREFUSED)',
        '',
        '✗ connection_refused → the sidecar answers 531',
        `  127.0.0.1:PORT refuses connections: nothing listens on port ${port}`,
        "  Fix: start the origin process (`systemctl status nginx`, `ss -ltn 'sport = :PORT'` on the origin) or fix the port in TARGET",
        '  Evidence:',
        '    tcp 127.0.0.1:PORT: refused (ECONNREFUSED) (N ms)',
        '  Docs: https://github.com/originguard/originguard/blob/main/docs/causes.md#connection_refused',
        '',
      ].join('\n'),
    );
  });

  it('prints the chain and the certificate verdict of a TLS origin, and the answer of a healthy one', async () => {
    const pki = await createTestPki();
    await using good = await startTlsServer({ certKey: pki.good });
    await using wrong = await startTlsServer({ certKey: pki.wrongSan });
    await writeFile(join(work, 'ca2.pem'), pki.ca.cert);
    const ok = await run(['diagnose', `https://localhost:${good.port}/`, '--ca-file', join(work, 'ca2.pem')]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`TLS   SNI localhost, verified against --ca-file ${join(work, 'ca2.pem')}`);
    expect(ok.stdout).toMatch(
      /✓ 127\.0\.0\.1:\d+ +\d+ ms {2}TLSv1\.3 TLS_AES_256_GCM_SHA384; ALPN http\/1\.1; SNI localhost; certificate CN=origin\.test issued by CN=originguard test CA/,
    );
    expect(ok.stdout).toContain('✓ Reachable');
    const bad = await run([
      'diagnose',
      `https://localhost:${wrong.port}/`,
      '--ca-file',
      join(work, 'ca2.pem'),
    ]);
    expect(bad.code).toBe(EXIT.tls);
    expect(bad.stdout).toContain('✗ tls_certificate_error → the sidecar answers 531');
    expect(bad.stdout).toContain(
      `the certificate of 127.0.0.1:${wrong.port} is for wrong-name.invalid, not localhost`,
    );
  });

  const hasScript = (() => {
    try {
      execFileSync('script', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      console.warn('[diagnose-cli] terminal tests skipped: the `script` command (util-linux) is missing');
      return false;
    }
  })();

  it.skipIf(!hasScript)('colours and a progress line on a terminal, none with NO_COLOR', async () => {
    const port = await closedPort();
    const onTty = (env: NodeJS.ProcessEnv) =>
      new Promise<string>((resolve) => {
        const cmd = `${process.execPath} ${CLI} diagnose 127.0.0.1:${port}`;
        execFile(
          'script',
          ['-qec', cmd, '/dev/null'],
          { env: { PATH: process.env.PATH, TERM: 'xterm', ...env } },
          (_e, out) => resolve(out),
        );
      });
    const coloured = await onTty({});
    expect(coloured).toContain('\u001b[31m'); // red ✗
    expect(coloured).toMatch(/connecting to 1 address\(es\), port \d+/); // the progress line
    const plain = await onTty({ NO_COLOR: '1' });
    expect(plain).toContain('✗ connection_refused');
    // No SGR colour or weight (the progress line's erase-line sequences remain).
    expect(plain.split('\u001b[').filter((part) => /^(1|2|3\d)m/.test(part))).toEqual([]);
  });
});

describe('originguard diagnose: usage, files and the cluster', () => {
  it.each([
    [[], 'give one TARGET'],
    [['a:1', 'b:2'], 'give one TARGET, got 2'],
    [['shop.example'], 'expected a URL (https://shop.example/health), host:port, or origin/NAME'],
    [['shop.example:99999'], 'port must be 1-65535, got "99999"'],
    [['ftp://shop.example/'], 'only http:// and https:// URLs are diagnosed'],
    [['origin/Shop'], '"Shop" is not an Origin name'],
    [
      ['a:1', '--connect-timeout', 'soon'],
      '--connect-timeout: must be a duration such as 500ms, 10s or 5m, got "soon"',
    ],
    [['a:1', '-o', 'xml'], '-o: must be text, json or yaml, got "xml"'],
    [
      ['http://a/', '--insecure'],
      '--ca-file, --server-name and --insecure apply to TLS: use an https:// URL',
    ],
    [['https://a/', '--ca-file', '/nonexistent/ca.pem'], '--ca-file: cannot read /nonexistent/ca.pem'],
    [['a:1', '--bogus'], "Unknown option '--bogus'"],
  ])('exits 64 for %j, saying what is wrong', async (args, message) => {
    const r = await run(['diagnose', ...args]);
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toContain(message);
    expect(r.stdout).toBe('');
  });

  it('exits 65 for an invalid --config, with the same messages as the sidecar, or an Origin it does not declare', async () => {
    const file = join(work, 'bad.yaml');
    await writeFile(
      file,
      `apiVersion: edge.originguard.dev/v1alpha1
kind: Origin
metadata: {name: shop, namespace: web}
spec:
  selector: {matchLabels: {app: shop}}
  listen: {port: 8080}
  upstream: {host: 127.0.0.1, port: 70000}
`,
    );
    const bad = await run(['diagnose', 'origin/shop', '--config', file]);
    expect(bad.code).toBe(EXIT.invalidConfig);
    expect(bad.stderr).toContain('spec.upstream.port: must be 1-65535, got 70000');
    const good = join(work, 'good.yaml');
    await writeFile(good, (await import('node:fs')).readFileSync(file, 'utf8').replace('70000', '8081'));
    const missing = await run(['diagnose', 'origin/cart', '--config', good]);
    expect(missing.code).toBe(EXIT.invalidConfig);
    expect(missing.stderr).toContain(`${good} declares no Origin cart (declared: web/shop)`);
  });

  it('diagnoses origin/NAME from --config as its sidecar connects: its own timeouts and backups', async () => {
    await using q = await startFullAcceptQueue();
    await using backup = await startHttpOrigin();
    const file = join(work, 'origins.yaml');
    await writeFile(
      file,
      `apiVersion: edge.originguard.dev/v1alpha1
kind: Origin
metadata: {name: shop, namespace: web}
spec:
  selector: {matchLabels: {app: shop}}
  listen: {port: 8080}
  hosts: [shop.example]
  upstream:
    host: 127.0.0.1
    port: ${q.port}
    backups: [{host: 127.0.0.1, port: ${backup.port}}]
  timeouts: {connect: 300ms, response: 2s}
`,
    );
    const r = await run(['diagnose', 'origin/shop', '--config', file, '-n', 'web', '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const d = expectValidDiagnosis(JSON.parse(r.stdout));
    expect(d.target).toMatchObject({
      origin: { namespace: 'web', name: 'shop' },
      connectTimeoutMs: 300,
      hostHeader: 'shop.example',
    });
    const tcp = d.steps.find((s) => s.phase === 'tcp' && s.target === 0);
    expect(tcp?.cause).toBe('connection_timeout');
    expect(tcp?.elapsedMs).toBeGreaterThanOrEqual(295);
    expect(backup.requests.map((x) => x.headers.host)).toEqual(['shop.example']);
    expect(d.verdict.warnings[0]?.summary).toContain(
      `the upstream 127.0.0.1:${q.port} is unreachable (connection_timeout)`,
    );
  });

  it('exits 69 when origin/NAME must come from a cluster that cannot be reached', async () => {
    const kubeconfig = join(work, 'kubeconfig');
    const port = await closedPort();
    await writeFile(
      kubeconfig,
      `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: web}}]
current-context: x
`,
    );
    const r = await run(['diagnose', 'origin/shop'], { KUBECONFIG: kubeconfig });
    expect(r.code).toBe(EXIT.clusterUnavailable);
    expect(r.stderr).toContain(
      `reading Origin web/shop: cannot reach the API server https://127.0.0.1:${port}`,
    );
    const ctx = await run(['diagnose', 'origin/shop', '--context', 'nope'], { KUBECONFIG: kubeconfig });
    expect(ctx.code).toBe(EXIT.clusterUnavailable);
    expect(ctx.stderr).toContain('context "nope" is not in the kubeconfig (contexts: x)');
  });

  it('as kubectl-originguard, offers diagnose and status under the kubectl name', async () => {
    const help = await run(['--help'], {}, plugin);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: kubectl originguard <command> [options]');
    expect(help.stdout).toContain('diagnose');
    expect(help.stdout).toContain('status');
    expect(help.stdout).not.toContain('sidecar');
    const sub = await run(['diagnose', '--help'], {}, plugin);
    expect(sub.stdout).toContain('Usage: kubectl originguard diagnose TARGET [options]');
    const refused = await run(['sidecar'], {}, plugin);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('kubectl originguard: unknown command "sidecar"');
  });
});
