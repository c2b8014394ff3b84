// The container image: its size (as `podman images` shows it, and compressed as a
// registry stores and a node pulls it: gzip layers, what Docker Hub lists), and
// start-to-ready of the sidecar and of the operator inside it, run as a pod runs
// them (hack/podman.ts: read-only root, /tmp an emptyDir, uid 65532, no
// capabilities). Writes bench/results/image-<time>.json and bench/results/image.md.
//
//   npm run bench:image     (builds the image with hack/image.sh, then node bench/image.ts [--runs 7])
//
// Sidecar: a fresh /tmp each run (a new pod: V8's compile cache cold), then a
// kept /tmp (a container restarted in its pod: the cache warm). "ready" is the
// first 200 of /readyz after `podman run` was spawned (polled every 5 ms); the
// process's own start-to-ready is the sidecar's sinceProcessStartMs log field.
// Operator: against a local control plane (admin credentials, CRDs applied),
// until /readyz answers 200 (caches synced, webhook certificate loaded).
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { startControlPlane } from '../hack/control-plane.ts';
import { kubectlFor } from '../hack/local-install.ts';
import { freePort } from '../hack/net.ts';
import { IMAGE, POD_LIKE, PODMAN_ENV, podman } from '../hack/podman.ts';
import { mutatingWebhookConfiguration } from '../src/operator/manifests.ts';

const root = new URL('../', import.meta.url).pathname;
const { values: flags } = parseArgs({ options: { runs: { type: 'string', default: '7' } } });
const runs = Number(flags.runs);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const execFileAsync = promisify(execFile);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const mb = (bytes: number) => Math.round(bytes / 1e5) / 10;

/** Bytes of the image as the store holds it, and of its layers gzip-compressed (a registry's size). */
async function sizes(image: string, dir: string): Promise<{ uncompressed: number; compressed: number }> {
  const uncompressed = Number((await podman(['image', 'inspect', '--format', '{{.Size}}', image])).trim());
  const out = join(dir, `save-${Math.random().toString(36).slice(2)}`);
  await podman(['save', '--format', 'docker-dir', '--compress', '--output', out, image], 300_000);
  const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as {
    layers: { size: number }[];
  };
  await rm(out, { recursive: true, force: true });
  return { uncompressed, compressed: manifest.layers.reduce((sum, l) => sum + l.size, 0) };
}

async function untilReady(port: number, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what}: not ready after ${timeoutMs} ms`);
    await sleep(5);
  }
}

/**
 * `podman run -d` of the image as a pod runs it, with `flags` added (a volume at
 * /tmp replaces the tmpfs); returns ms from spawn to /readyz 200 and the logs.
 */
async function timeContainer(name: string, flags: string[], args: string[], port: number) {
  const ownTmp = flags.some((f) => f.includes(':/tmp:'));
  const pod = POD_LIKE.filter((f) => !(ownTmp && f.startsWith('--tmpfs=/tmp')));
  const t0 = performance.now();
  await podman(['run', '--detach', `--name=${name}`, ...pod, ...flags, IMAGE, ...args]);
  try {
    await untilReady(port, name);
    const readyMs = performance.now() - t0;
    const logs = await podman(['logs', name]);
    return { readyMs, logs };
  } finally {
    await podman(['rm', '--force', '--time=10', name]);
  }
}

const work = await mkdtemp(join(tmpdir(), 'og-bench-image-'));
const origin = createServer((_req, res) => res.end('ok\n'));
const originPort = await freePort();
await new Promise<void>((resolve) => origin.listen(originPort, '127.0.0.1', resolve));
try {
  const base = (
    await execFileAsync('bash', [join(root, 'hack/image-base.sh')], { env: PODMAN_ENV })
  ).stdout.trim();
  const image = await sizes(IMAGE, work);
  const baseSize = await sizes(base, work);

  // The sidecar on one Origin, from a mounted file.
  const config = join(work, 'config');
  await mkdir(config);
  const listen = await freePort();
  await writeFile(
    join(config, 'origin.yaml'),
    stringifyYaml({
      apiVersion: 'edge.originguard.dev/v1alpha1',
      kind: 'Origin',
      metadata: { name: 'shop', namespace: 'bench' },
      spec: {
        selector: { matchLabels: { app: 'shop' } },
        listen: { port: listen, address: '127.0.0.1' },
        upstream: { host: '127.0.0.1', port: originPort },
      },
    }),
  );
  await chmod(config, 0o755);
  await chmod(join(config, 'origin.yaml'), 0o644);
  const kept = join(work, 'kept-tmp');
  await mkdir(kept, { mode: 0o1777 });
  await chmod(kept, 0o1777);
  const sidecar = async (tmp: 'fresh' | 'kept', i: number) => {
    const admin = await freePort();
    const { readyMs, logs } = await timeContainer(
      `og-bench-sidecar-${tmp}-${i}`,
      [`--volume=${config}:/config:ro`, ...(tmp === 'kept' ? [`--volume=${kept}:/tmp:rw`] : [])],
      ['sidecar', '--config=/config/origin.yaml', `--admin-port=${admin}`, '--admin-address=127.0.0.1'],
      admin,
    );
    const line = logs.split('\n').find((l) => l.includes('"sidecar ready"'));
    const inProcess = Number(
      (JSON.parse(line ?? '{}') as { sinceProcessStartMs?: number }).sinceProcessStartMs,
    );
    return { readyMs, inProcessMs: inProcess };
  };
  const measured: Record<string, { readyMs: number; inProcessMs: number }[]> = { fresh: [], kept: [] };
  await sidecar('kept', -1); // fills the kept /tmp's compile cache, as a pod's first start does
  for (let i = 0; i < runs; i++) {
    measured.fresh?.push(await sidecar('fresh', i));
    measured.kept?.push(await sidecar('kept', i));
  }

  // The operator against a local control plane.
  const cp = await startControlPlane({ log: () => {} });
  const operatorRuns: number[] = [];
  try {
    const kubectl = kubectlFor(cp);
    await kubectl(['apply', '--server-side', '-f', join(root, 'crds')]);
    await kubectl(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
    await kubectl(['create', 'namespace', 'og-bench']);
    const admin = parseYaml(await readFile(cp.kubeconfig, 'utf8')) as {
      clusters: { cluster: Record<string, string> }[];
    };
    for (const { cluster } of admin.clusters) {
      cluster['certificate-authority-data'] = (
        await readFile(cluster['certificate-authority'] ?? '')
      ).toString('base64');
      delete cluster['certificate-authority'];
    }
    const kubeDir = join(work, 'kube');
    await mkdir(kubeDir);
    await writeFile(join(kubeDir, 'kubeconfig'), stringifyYaml(admin));
    await chmod(kubeDir, 0o755);
    await chmod(join(kubeDir, 'kubeconfig'), 0o644);
    for (let i = 0; i <= runs; i++) {
      const webhookPort = await freePort();
      const health = await freePort();
      await kubectl(
        ['apply', '-f', '-'],
        JSON.stringify(
          mutatingWebhookConfiguration({
            name: 'originguard-bench',
            clientConfig: { url: `https://127.0.0.1:${webhookPort}/mutate-pods` },
            excludedNamespaces: ['kube-system'],
            extraNamespaceSelector: { matchLabels: { 'originguard.bench/none': 'none' } },
          }),
        ),
      );
      const { readyMs } = await timeContainer(
        `og-bench-operator-${i}`,
        [`--volume=${kubeDir}:/config:ro`],
        [
          'operator',
          '--kubeconfig=/config/kubeconfig',
          '--namespace=og-bench',
          `--health-probe-bind-address=127.0.0.1:${health}`,
          '--metrics-bind-address=0',
          `--webhook-bind-address=127.0.0.1:${webhookPort}`,
          '--webhook-host=127.0.0.1',
          '--webhook-configuration=originguard-bench',
          '--leader-elect',
        ],
        health,
      );
      if (i > 0) operatorRuns.push(readyMs); // the first run creates the webhook certificate Secret
    }
  } finally {
    await cp.stop();
  }

  const stat = (xs: number[]) => ({
    median: Math.round(median(xs)),
    min: Math.round(Math.min(...xs)),
    max: Math.round(Math.max(...xs)),
  });
  const results = {
    date: new Date().toISOString(),
    image: IMAGE,
    base,
    runs,
    sizeBytes: {
      image,
      base: baseSize,
      app: {
        uncompressed: image.uncompressed - baseSize.uncompressed,
        compressed: image.compressed - baseSize.compressed,
      },
    },
    sidecarReadyMs: {
      freshTmp: {
        container: stat(measured.fresh?.map((r) => r.readyMs) ?? []),
        process: stat(measured.fresh?.map((r) => r.inProcessMs) ?? []),
      },
      keptTmp: {
        container: stat(measured.kept?.map((r) => r.readyMs) ?? []),
        process: stat(measured.kept?.map((r) => r.inProcessMs) ?? []),
      },
    },
    operatorReadyMs: stat(operatorRuns),
  };
  const stamp = results.date.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
  await writeFile(join(root, `bench/results/image-${stamp}.json`), `${JSON.stringify(results, null, 2)}\n`);
  const s = results.sidecarReadyMs;
  const range = (x: { median: number; min: number; max: number }) => `${x.median} ms (${x.min}–${x.max})`;
  const md = `# The image: size and start-to-ready

\`npm run bench:image\`, ${results.date} (median of ${runs} runs, min–max in brackets).
Image \`${IMAGE}\` built from the Dockerfile on \`${base}\` (the stand-in
for \`node:24.21.0-bookworm-slim\`, hack/image-base.sh).

| | uncompressed (\`podman images\`) | compressed (gzip layers, as a registry stores it) |
|---|---|---|
| image | ${mb(image.uncompressed)} MB | ${mb(image.compressed)} MB |
| of which the Node base | ${mb(baseSize.uncompressed)} MB | ${mb(baseSize.compressed)} MB |
| of which originguard (bin/, dist/, package.json) | ${mb(results.sizeBytes.app.uncompressed)} MB | ${mb(results.sizeBytes.app.compressed)} MB |

| start to ready, in the container | \`podman run\` → /readyz 200 | process start → ready (its log) |
|---|---|---|
| sidecar, new pod (/tmp empty: compile cache cold) | ${range(s.freshTmp.container)} | ${range(s.freshTmp.process)} |
| sidecar, container restarted (/tmp kept: cache warm) | ${range(s.keptTmp.container)} | ${range(s.keptTmp.process)} |
| operator (caches synced, webhook certificate loaded) | ${range(results.operatorReadyMs)} | – |
`;
  await writeFile(join(root, 'bench/results/image.md'), md);
  process.stdout.write(md);
} finally {
  origin.close();
  await rm(work, { recursive: true, force: true });
}
