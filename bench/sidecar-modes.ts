// Start-to-ready and idle memory of the built sidecar, standalone and in cluster
// mode, serving the same Origin. Cluster mode runs as in a pod: a test control
// plane, the install's RBAC and admission policy, a Pending pod and a token bound
// to it. Ready is the first 200 of /readyz after spawn (polled every 5 ms); idle
// RSS is VmRSS 1 s after ready (as bench/run.ts reads it) and again 10 s later,
// after 10 requests through the sidecar.
//
//   npm run bench:modes            (npm run build && node bench/sidecar-modes.ts [--runs 5])
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startControlPlane } from '../hack/control-plane.ts';
import { ensureNamespace, kubectlFor } from '../hack/local-install.ts';
import { freePort } from '../hack/net.ts';
import { podEnv, writeLabels } from '../hack/pod-files.ts';
import { rssBytes } from '../hack/supervisor.ts';
import { sidecarRoleBinding } from '../src/operator/manifests.ts';

const root = new URL('../', import.meta.url).pathname;
const { values: flags } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(flags.runs);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A plain origin on loopback answering 200 to everything. */
async function startOrigin(): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((_req, res) => res.end('ok\n'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const cp = await startControlPlane({ log: () => {} });
const dir = await mkdtemp(join(tmpdir(), 'og-measure-'));
const origin = await startOrigin();
try {
  const kubectl = kubectlFor(cp);
  await kubectl(['apply', '--server-side', '-f', join(root, 'crds')]);
  await kubectl(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
  await kubectl(['apply', '--server-side', '-f', join(root, 'deploy')]);
  await ensureNamespace(cp, 'measure');
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'edge-0', namespace: 'measure', labels: { app: 'edge' } },
    spec: { containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }] },
  };
  await kubectl(['apply', '-f', '-'], JSON.stringify(pod));
  await kubectl(['apply', '-f', '-'], JSON.stringify(sidecarRoleBinding('measure', ['default'])));
  const uid = (
    await kubectl(['get', 'pod', 'edge-0', '-n', 'measure', '-o', 'jsonpath={.metadata.uid}'])
  ).trim();
  const token = await kubectl(
    ['create', 'token', 'default', '-n', 'measure', '--bound-object-kind=Pod', '--bound-object-name=edge-0'],
    '',
  );
  await writeFile(join(dir, 'token'), token.trim());
  await writeFile(join(dir, 'ca.crt'), await readFile(cp.caFile));
  await writeLabels(dir, { app: 'edge' });

  const listen = await freePort();
  const manifest = `apiVersion: edge.originguard.dev/v1alpha1
kind: Origin
metadata: {name: shop, namespace: measure}
spec:
  selector: {matchLabels: {app: edge}}
  listen: {port: ${listen}, address: 127.0.0.1}
  upstream: {host: 127.0.0.1, port: ${origin.port}}
`;
  await kubectl(['apply', '-f', '-'], manifest);
  await writeFile(join(dir, 'origins.yaml'), manifest);
  const env = podEnv(
    { podName: 'edge-0', namespace: 'measure', podUid: uid, serviceAccount: 'default', dir },
    Number(new URL(cp.server).port),
  );

  const measure = async (mode: 'standalone' | 'cluster') => {
    const admin = await freePort();
    const args = [
      join(root, 'dist/originguard.mjs'),
      'sidecar',
      `--admin-port=${admin}`,
      '--admin-address=127.0.0.1',
    ];
    args.push(
      ...(mode === 'cluster' ? ['--cluster'] : ['--config', join(dir, 'origins.yaml')]),
      '--log-level=warn',
    );
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'inherit'] });
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${admin}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (child.exitCode !== null || performance.now() - t0 > 30_000) {
        child.kill('SIGKILL');
        throw new Error(`${mode} sidecar not ready (exit code ${child.exitCode})`);
      }
      await sleep(5);
    }
    const readyMs = performance.now() - t0;
    const rss = () => rssBytes(child.pid ?? 0) / 2 ** 20;
    await sleep(1000);
    const idle1s = rss();
    for (let i = 0; i < 10; i++) await (await fetch(`http://127.0.0.1:${listen}/`)).text();
    await sleep(10_000);
    const idle10s = rss();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    return { readyMs, idle1s, idle10s };
  };

  for (const mode of ['standalone', 'cluster'] as const) {
    await measure(mode); // warms the compile cache, as every start after a pod's first
    const results = [];
    for (let i = 0; i < runs; i++) results.push(await measure(mode));
    const f = (xs: number[], unit: string) =>
      `${median(xs).toFixed(1)} ${unit} (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)})`;
    process.stdout.write(
      `${mode}: start-to-ready ${f(
        results.map((r) => r.readyMs),
        'ms',
      )}; idle RSS 1 s after ready ${f(
        results.map((r) => r.idle1s),
        'MB',
      )}; after 10 requests and 10 s ${f(
        results.map((r) => r.idle10s),
        'MB',
      )} [median of ${runs}]\n`,
    );
  }
} finally {
  await origin.close();
  await cp.stop();
  await rm(dir, { recursive: true, force: true });
}
