// Scale benchmark: N sidecar identities (default 100) against one Origin on a
// real control plane, with the operator running as a process. Each sidecar runs
// in this process (startClusterSidecar) with its own pod-bound token from the
// TokenRequest API, its own Origin watch and its own listener (127.0.1.x). The
// origin is failed, then recovered; for each transition the bench measures the
// time until `Origin.status` is right, the API writes by the sidecars and by the
// operator, and the watch events the API server sent for Origins (every sidecar
// watches its Origin, so each status write fans out N times).
//
// Side by side, the peer design ARCHITECTURE.md rejects: every sidecar patches
// Origin.status itself, while the same N watchers watch it.
//
//   npm run bench:scale                    (node bench/scale.ts --sidecars 100)

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { request } from 'undici';
import { startControlPlane } from '../hack/control-plane.ts';
import { ensureNamespace, installLocally, kubectlFor } from '../hack/local-install.ts';
import { freePort } from '../hack/net.ts';
import { reportName } from '../src/api/report.ts';
import type { OriginStatus } from '../src/api/status.ts';
import { KubeClient, resourcePath } from '../src/kube/client.ts';
import { Informer } from '../src/kube/informer.ts';
import { loadKubeConfig } from '../src/kube/kubeconfig.ts';
import { type ClusterSidecar, startClusterSidecar } from '../src/sidecar/cluster.ts';
import { SidecarMetrics } from '../src/sidecar/metrics.ts';
import { apiCounters, type Counters, delta } from './lib/scale-support.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: flags } = parseArgs({
  options: {
    sidecars: { type: 'string', default: '100' },
    'no-peer': { type: 'boolean', default: false },
    out: { type: 'string', default: join(root, 'bench', 'results') },
    help: { type: 'boolean', short: 'h' },
  },
});
if (flags.help) {
  process.stdout.write('Usage: node bench/scale.ts [--sidecars N] [--no-peer] [--out DIR]\n');
  process.exit(0);
}
const N = Number(flags.sidecars);
const logger = pino({ level: process.env.ORIGINGUARD_BENCH_LOG ?? 'silent' });
const say = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Transition {
  /** ms from the origin's change (and the first request that saw it) to the status showing it. */
  statusRightMs: number;
  sidecarWrites: number;
  operatorStatusWrites: number;
  originWatchEvents: number;
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((res, rej) => {
    server.once('error', rej);
    server.listen(port, '127.0.0.1', () => res());
  });
}

const cp = await startControlPlane({ log: (m) => say(`[control-plane] ${m}`) });
const cleanups: (() => Promise<unknown>)[] = [() => cp.stop()];
const cleanup = async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
};
process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

try {
  const admin = new KubeClient(await loadKubeConfig({ kubeconfig: cp.kubeconfig }));
  const kubectl = kubectlFor(cp);
  // As the chart installs it: CRDs, RBAC, admission policy, the webhook, the operator with its
  // own least-privilege token, watching the bench namespace only (the peer namespace is the peer's).
  await ensureNamespace(cp, 'scale');
  await ensureNamespace(cp, 'peer');
  const install = await installLocally(cp, {
    operatorArgs: ['--watch-namespaces=scale', '--log-level=warn'],
  });
  cleanups.push(() => install.stop());

  // The origin, and the Origin.
  const originPort = await freePort();
  const listenPort = await freePort();
  let origin = createServer((_req, res) => res.end('ok\n'));
  await listen(origin, originPort);
  const originYaml = (namespace: string) => `apiVersion: edge.originguard.dev/v1alpha1
kind: Origin
metadata: {name: shop, namespace: ${namespace}}
spec:
  selector: {matchLabels: {app: edge}}
  listen: {port: ${listenPort}, address: 127.0.0.1}
  upstream: {host: 127.0.0.1, port: ${originPort}}
  outlierDetection: {consecutiveFailures: 1000}
`;
  await kubectl(['apply', '-f', '-'], originYaml('scale'));

  // N pods, created through the API so the webhook injects them.
  const pods = {
    apiVersion: 'v1',
    kind: 'List',
    items: Array.from({ length: N }, (_, i) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `edge-${i}`, namespace: 'scale', labels: { app: 'edge' } },
      spec: { containers: [{ name: 'app', image: 'busybox' }] },
    })),
  };
  await kubectl(['create', '-f', '-'], JSON.stringify(pods));
  const podList = await admin.list<{ metadata: { name: string; uid: string } }>(
    resourcePath({ group: '', version: 'v1', plural: 'pods', namespace: 'scale' }),
  );
  say(`${podList.items.length} pods created (injected by the webhook)`);

  // One pod-bound token per pod, and one sidecar per identity.
  const ca = readFileSync(cp.caFile, 'utf8');
  const metrics = new SidecarMetrics();
  const sidecars: { sidecar: ClusterSidecar; address: string }[] = [];
  for (const [i, pod] of podList.items.entries()) {
    const tr = await admin.create<{ status: { token: string } }>(
      resourcePath({
        group: '',
        version: 'v1',
        plural: 'serviceaccounts',
        namespace: 'scale',
        name: 'default',
        subresource: 'token',
      }),
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          expirationSeconds: 3600,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid },
        },
      },
    );
    const address = `127.0.1.${i + 1}`;
    const sidecar = await startClusterSidecar({
      identity: {
        podName: pod.metadata.name,
        namespace: 'scale',
        podUid: pod.metadata.uid,
        serviceAccount: 'default',
      },
      credentials: {
        server: cp.server,
        tls: { ca },
        headers: async () => ({ authorization: `Bearer ${tr.status.token}` }),
      },
      labels: { app: 'edge' },
      logger,
      metrics,
      listenAddress: address,
    });
    sidecars.push({ sidecar, address });
  }
  cleanups.push(() => Promise.all(sidecars.map((s) => s.sidecar.stop(0))));
  await Promise.all(sidecars.map((s) => s.sidecar.firstApplied));
  say(`${sidecars.length} sidecars serving`);

  const hitAll = () =>
    Promise.all(
      sidecars.map(async ({ address }) => {
        const res = await request(`http://${address}:${listenPort}/`);
        await res.body.text();
        return res.statusCode;
      }),
    );
  const status = async () =>
    (
      await admin.get<{ status?: OriginStatus }>(
        resourcePath({
          group: 'edge.originguard.dev',
          version: 'v1alpha1',
          plural: 'origins',
          namespace: 'scale',
          name: 'shop',
        }),
      )
    )?.status;

  const measure = async (
    label: string,
    change: () => Promise<void>,
    right: (s: OriginStatus | undefined) => boolean,
  ): Promise<Transition> => {
    const before: Counters = await apiCounters(admin);
    await change();
    const t0 = Date.now();
    const codes = await hitAll();
    await waitUntil(`${label}: status`, async () => right(await status()), 30_000);
    const statusRightMs = Date.now() - t0;
    await sleep(3000); // let every debounced write and coalesced status write land
    const d = delta(before, await apiCounters(admin));
    say(
      `${label}: answers ${[...new Set(codes)].join(',')}; status right after ${statusRightMs} ms; sidecar writes ${d.reportWrites}, operator status writes ${d.statusWrites}, Origin watch events ${d.originWatchEvents}`,
    );
    return {
      statusRightMs,
      sidecarWrites: d.reportWrites,
      operatorStatusWrites: d.statusWrites,
      originWatchEvents: d.originWatchEvents,
    };
  };

  // Warm up: every sidecar reaches the origin once.
  await hitAll();
  await waitUntil('all reachable', async () => (await status())?.pods?.reachable === N, 60_000);
  await sleep(3000);

  const fail = await measure(
    'origin down',
    async () => {
      await new Promise((r) => origin.close(r));
      origin.closeAllConnections();
    },
    (s) => s?.reachable === 'False' && s.pods?.failing === N && s.cause === 'connection_refused',
  );
  const recover = await measure(
    'origin back',
    async () => {
      origin = createServer((_req, res) => res.end('ok\n'));
      await listen(origin, originPort);
    },
    (s) => s?.reachable === 'True' && s.pods?.reachable === N,
  );
  cleanups.push(() => new Promise((r) => origin.close(r)));

  // The peer: each of N writers patches Origin.status itself while N watchers watch the Origin.
  let peer:
    | { writes: number; originWatchEvents: number; deliveredToWatchers: number; ms: number }
    | undefined;
  if (!flags['no-peer']) {
    await kubectl(['apply', '-f', '-'], originYaml('peer'));
    const path = resourcePath({
      group: 'edge.originguard.dev',
      version: 'v1alpha1',
      plural: 'origins',
      namespace: 'peer',
    });
    let delivered = 0;
    const watchers = Array.from(
      { length: N },
      () => new Informer(admin, { name: 'peer', paths: [path], logger }),
    );
    for (const w of watchers) {
      w.on('update', () => delivered++);
      w.start();
    }
    await Promise.all(watchers.map((w) => w.waitForSync()));
    const before = await apiCounters(admin);
    const t0 = Date.now();
    await Promise.all(
      podList.items.map((pod, i) =>
        admin.patch(
          `${path}/shop/status`,
          {
            status: {
              reachable: 'False',
              cause: 'connection_refused',
              podsSummary: `${N - i - 1}/${N}`,
              lastFailure: {
                cause: 'connection_refused',
                phase: 'connect',
                statusCode: 531,
                attempts: 1,
                elapsedMs: 1,
                hint: 'x',
                time: new Date().toISOString(),
                pod: pod.metadata.name,
              },
            },
          },
          'merge',
        ),
      ),
    );
    const ms = Date.now() - t0;
    await waitUntil('peer watch events', async () => delivered >= N * N, 30_000).catch(() => {});
    const d = delta(before, await apiCounters(admin));
    peer = {
      writes: d.statusWrites,
      originWatchEvents: d.originWatchEvents,
      deliveredToWatchers: delivered,
      ms,
    };
    await Promise.all(watchers.map((w) => w.stop()));
    say(
      `peer (every sidecar patches Origin.status): ${peer.writes} status writes in ${ms} ms; ${delivered} watch events delivered to ${N} watchers`,
    );
  }

  const result = {
    date: new Date().toISOString(),
    sidecars: N,
    fail,
    recover,
    peer,
    reportNameExample: reportName('shop', 'edge-0'),
  };
  mkdirSync(flags.out, { recursive: true });
  const stamp = result.date.replace(/[:.]/g, '-').slice(0, 19);
  writeFileSync(join(flags.out, `scale-${stamp}Z.json`), `${JSON.stringify(result, null, 2)}\n`);
  const md = scaleMarkdown(result);
  writeFileSync(join(flags.out, 'scale.md'), md);
  say(md);
} finally {
  await cleanup();
}

function scaleMarkdown(r: {
  date: string;
  sidecars: number;
  fail: Transition;
  recover: Transition;
  peer: { writes: number; originWatchEvents: number; deliveredToWatchers: number; ms: number } | undefined;
}): string {
  const row = (name: string, t: Transition) =>
    `| ${name} | ${t.statusRightMs} ms | ${t.sidecarWrites} (${(t.sidecarWrites / r.sidecars).toFixed(2)} per sidecar) | ${t.operatorStatusWrites} | ${t.originWatchEvents} |`;
  const lines = [
    `Scale run of ${r.date.slice(0, 16).replace('T', ' ')} UTC: ${r.sidecars} sidecars (own pod-bound tokens, own watches) on one Origin, operator as a process (\`npm run bench:scale\`).`,
    '',
    '| transition | status right after | report writes by sidecars | status writes by the operator | Origin watch events sent |',
    '|---|---|---|---|---|',
    row('origin fails (connection refused)', r.fail),
    row('origin recovers', r.recover),
  ];
  if (r.peer !== undefined) {
    const ours = r.fail.operatorStatusWrites;
    lines.push(
      '',
      `Peer, every sidecar patching Origin.status itself (the design ARCHITECTURE.md rejects), same ${r.sidecars} watchers: ${r.peer.writes} status writes, ${r.peer.originWatchEvents} Origin watch events sent (${r.peer.deliveredToWatchers} delivered). originguard: ${ours} status writes, ${r.fail.originWatchEvents} watch events — ${(r.peer.originWatchEvents / Math.max(1, r.fail.originWatchEvents)).toFixed(0)}× fewer.`,
    );
  }
  return `${lines.join('\n')}\n`;
}
