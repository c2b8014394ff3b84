// Operator benchmark at cluster scale: the built bundle run as the chart runs it
// (its NODE_OPTIONS and memory limit from `helm template`, its own least-privilege
// token), on a real control plane filled with pods created through the API in 30
// namespaces, one in ten selected by one of 100 Origins. At each size it reports
// the operator's RSS (after the load, during a relist, right after a restart),
// restart to /readyz, the webhook's own answer time during a burst of pod
// creations, pods/s with and without the webhook, status convergence, and the cost
// of one status reconcile in a namespace that does not grow. Side by side, the
// peer: the operator before the slim cache (built from git), run as a standby
// replica on the same cluster.
//
//   npm run bench:operator                       (sizes 1000,10000; ~8 min)
//   node bench/operator.ts --sizes 1000,10000,50000 (~12 min; the API server takes ~3 GB)
//   node bench/operator.ts --sizes 300 --no-peer (a quick look)

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startControlPlane } from '../hack/control-plane.ts';
import { ensureNamespace, installLocally, kubectlFor } from '../hack/local-install.ts';
import { metricsAt, sumOf } from '../hack/prom-text.ts';
import { BUNDLE_CLI, type OperatorProcess, startOperator } from '../hack/run-operator.ts';
import { KubeClient } from '../src/kube/client.ts';
import { loadKubeConfig } from '../src/kube/kubeconfig.ts';
import { chartOperatorSettings } from './lib/chart-settings.ts';
import {
  createPods,
  expectedSelected,
  type Layout,
  lastMismatch,
  namespaceName,
  originManifest,
  originsRight,
} from './lib/cluster-load.ts';
import { type OperatorBench, operatorMarkdown, type SizeResult } from './lib/operator-report.ts';
import { buildPeer, holdLease } from './lib/peer-build.ts';
import { cpuSecondsOf, MiB, sampleRssOf } from './lib/pid-stats.ts';
import { reconcileCost } from './lib/reconcile-cost.ts';
import { webhookBurst } from './lib/webhook-burst.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
const { values: flags } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,10000' },
    namespaces: { type: 'string', default: '30' },
    origins: { type: 'string', default: '100' },
    burst: { type: 'string', default: '500' },
    concurrency: { type: 'string', default: '16' },
    resync: { type: 'string', default: '60s' },
    peer: { type: 'string', default: 'fa6bd52' },
    'no-peer': { type: 'boolean', default: false },
    out: { type: 'string', default: join(root, 'bench', 'results') },
    help: { type: 'boolean', short: 'h' },
  },
});
if (flags.help) {
  process.stdout.write(
    'Usage: node bench/operator.ts [--sizes 1000,10000] [--namespaces 30] [--origins 100] [--burst 500]\n' +
      '         [--concurrency 16] [--resync 60s] [--peer <git ref> | --no-peer] [--out DIR]\n',
  );
  process.exit(0);
}
// BUNDLE_CLI (bin/originguard.js) falls back to the TypeScript sources when there is no build.
if (!existsSync(join(root, 'dist', 'originguard.mjs'))) {
  process.stderr.write(
    'bench/operator.ts: no dist/originguard.mjs; run npm run build (npm run bench:operator does)\n',
  );
  process.exit(2);
}
const sizes = flags.sizes.split(',').map(Number);
const layout: Layout = {
  namespaces: Number(flags.namespaces),
  origins: Number(flags.origins),
  selectEvery: 10,
};
const burst = Number(flags.burst);
const concurrency = Number(flags.concurrency);
const resyncMs = Number.parseInt(flags.resync, 10) * (flags.resync.endsWith('m') ? 60_000 : 1000);
const say = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mib = (bytes: number) => Math.round((bytes / MiB) * 10) / 10;
const QUIET_NS = 'bench-quiet';
const QUIET_PODS = 50;

const cp = await startControlPlane({
  log: (m) => say(`[control-plane] ${m}`),
  // Room for the bench's own bursts besides the controllers; the admin user is exempt from APF anyway.
  apiServerArgs: ['--max-requests-inflight=800', '--max-mutating-requests-inflight=400'],
});
const cleanups: (() => Promise<unknown>)[] = [() => cp.stop()];
const cleanup = async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
};
process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  let failure = '';
  const attempt = () =>
    check().catch((err: unknown) => {
      failure = (err as Error).message;
      return false;
    });
  while (!(await attempt())) {
    if (performance.now() - t0 > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms: ${what} (${failure || lastMismatch})`);
    await sleep(100);
  }
  return performance.now() - t0;
}

/** Spawn → /readyz 200, polled every 20 ms (for at most a minute). */
async function readyzAfter(op: OperatorProcess, spawnedAt: number): Promise<number> {
  for (;;) {
    if (op.child.exitCode !== null) throw new Error(`operator exited:\n${op.tail()}`);
    if (performance.now() - spawnedAt > 60_000)
      throw new Error(`operator not ready after 60 s:\n${op.tail()}`);
    const res = await fetch(`http://127.0.0.1:${op.healthPort}/readyz`).catch(() => undefined);
    await res?.body?.cancel();
    if (res?.status === 200) return performance.now() - spawnedAt;
    await sleep(20);
  }
}

try {
  const admin = new KubeClient(await loadKubeConfig({ kubeconfig: cp.kubeconfig }));
  const kubectl = kubectlFor(cp);
  const chart = await chartOperatorSettings(join(dirname(cp.binaries.kubectl), 'helm'));
  say(`chart: memory limit ${chart.memoryLimit ?? 'none'}, NODE_OPTIONS ${chart.nodeOptions ?? '(unset)'}`);
  const install = await installLocally(cp, {
    // warn: the bench reads no log line (a pipe the bench is slow to drain would stall the operator).
    operatorArgs: [`--resync-period=${flags.resync}`, '--log-level=warn'],
    process: {
      command: [process.execPath, BUNDLE_CLI],
      env: { NODE_ENV: 'production', ...(chart.nodeOptions ? { NODE_OPTIONS: chart.nodeOptions } : {}) },
    },
  });
  cleanups.push(() => install.stop());
  const ours = () => install.operator;

  for (let i = 0; i < layout.namespaces; i++) await ensureNamespace(cp, namespaceName(i));
  await ensureNamespace(cp, QUIET_NS);
  const originList = Array.from({ length: layout.origins }, (_, i) => originManifest(layout, i));
  const quietOrigin = {
    ...(originManifest(layout, 0) as { spec: object }),
    metadata: { name: 'quiet', namespace: QUIET_NS },
  };
  await kubectl(
    ['apply', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [...originList, quietOrigin] }),
  );
  // The quiet namespace: one Origin, a fixed number of pods, whatever the cluster size.
  await createPods(admin, layout, 0, QUIET_PODS, concurrency, () => QUIET_NS);

  let peer: OperatorProcess | undefined;
  let startPeer: () => Promise<OperatorProcess> = () => Promise.reject(new Error('no peer'));
  if (!flags['no-peer']) {
    const peerCli = await buildPeer(root, flags.peer, say);
    // A Lease the peer never gets: it runs as a standby replica (caches, no status writes).
    await holdLease(admin, install.operatorNamespace, 'bench-peer');
    startPeer = () =>
      startOperator({
        command: [process.execPath, peerCli],
        kubeconfig: cp.kubeconfig,
        namespace: install.operatorNamespace,
        // Its webhook serves (same certificate Secret) but is not registered: same code loaded, no calls.
        logLevel: 'warn',
        env: { NODE_ENV: 'production' },
        args: [
          '--leader-elect',
          '--leader-election-id=bench-peer',
          `--webhook-configuration=${install.webhookConfiguration}`,
          `--resync-period=${flags.resync}`,
        ],
      });
    peer = await startPeer();
    await peer.waitReady(60_000);
    cleanups.push(() => peer?.stop() ?? Promise.resolve());
  }
  await sleep(5000);
  // Idle: the median over 5 s.
  const idleOurs = sampleRssOf(() => ours().child.pid ?? 0);
  const idlePeer = peer ? sampleRssOf(() => peer?.child.pid ?? 0) : undefined;
  await sleep(5000);
  const idle = {
    ours: mib(idleOurs.stop().median),
    peer: idlePeer ? mib(idlePeer.stop().median) : undefined,
  };
  say(`idle RSS: ours ${idle.ours} MiB${peer ? `, peer ${idle.peer} MiB` : ''}`);

  const results: SizeResult[] = [];
  let created = 0;
  let systemPods = 0;
  for (const size of sizes) {
    say(`\n== ${size} pods ==`);
    const r: Partial<SizeResult> = { size };
    // Create pods up to `size`, sampling both operators.
    const loadOurs = sampleRssOf(() => ours().child.pid ?? 0);
    const loadPeer = peer ? sampleRssOf(() => peer?.child.pid ?? 0) : undefined;
    const cpu0 = cpuSecondsOf(ours().child.pid ?? 0);
    const peerCpu0 = peer ? cpuSecondsOf(peer.child.pid ?? 0) : 0;
    const t0 = performance.now();
    r.createPodsPerSec = await createPods(admin, layout, created, Math.max(created, size), concurrency);
    const createSec = (performance.now() - t0) / 1000;
    r.cpuCoresDuringCreate = (cpuSecondsOf(ours().child.pid ?? 0) - cpu0) / createSec;
    if (peer) r.peerCpuCoresDuringCreate = (cpuSecondsOf(peer.child.pid ?? 0) - peerCpu0) / createSec;
    created = Math.max(created, size);
    const expected = expectedSelected(layout, created);
    r.convergenceMs = await until(
      '100 Origin statuses right',
      async () => (await originsRight(admin, expected)) === layout.origins,
      120_000,
    );
    say(
      `created ${created} pods at ${r.createPodsPerSec.toFixed(0)}/s; ${layout.origins} statuses right ${Math.round(r.convergenceMs)} ms later`,
    );
    await sleep(5000);
    r.rssDuringLoadPeak = mib(loadOurs.stop().peak);
    const peerLoad = loadPeer?.stop();

    // Settled: the median over 10 s.
    const settle = sampleRssOf(() => ours().child.pid ?? 0);
    const settlePeer = peer ? sampleRssOf(() => peer?.child.pid ?? 0) : undefined;
    await sleep(10_000);
    r.rssAfterLoad = mib(settle.stop().median);
    const m = await metricsAt(ours().metricsPort);
    r.heapUsed = mib(sumOf(m, 'originguard_operator_nodejs_heap_size_used_bytes'));
    r.heapTotal = mib(sumOf(m, 'originguard_operator_nodejs_heap_size_total_bytes'));
    r.external = mib(sumOf(m, 'originguard_operator_nodejs_external_memory_bytes'));
    r.cachedPods = sumOf(m, 'originguard_operator_cached_objects', { resource: 'pods' });
    if (peer && settlePeer && peerLoad)
      r.peer = { rssDuringLoadPeak: mib(peerLoad.peak), rssAfterLoad: mib(settlePeer.stop().median) };

    // A relist of every pod informer (both operators relist every --resync, ±20 %).
    const relists = async (op: OperatorProcess) =>
      sumOf(await metricsAt(op.metricsPort), 'originguard_operator_watch_restarts_total', {
        resource: 'pods',
        reason: 'relist',
      });
    const podPaths = async (op: OperatorProcess) =>
      Math.max(1, sumOf(await metricsAt(op.metricsPort), 'originguard_operator_pod_watch_namespaces'));
    const relistOurs = sampleRssOf(() => ours().child.pid ?? 0);
    const relistPeer = peer ? sampleRssOf(() => peer?.child.pid ?? 0) : undefined;
    const [ours0, peer0, paths] = await Promise.all([
      relists(ours()),
      peer ? relists(peer) : 0,
      podPaths(ours()),
    ]);
    await until(
      'a relist of every pod informer',
      async () =>
        (await relists(ours())) - ours0 >= paths &&
        (peer === undefined || (await relists(peer)) - peer0 >= 1),
      resyncMs * 2,
    );
    r.rssDuringRelistPeak = mib(relistOurs.stop().peak);
    if (r.peer && relistPeer) r.peer.rssDuringRelistPeak = mib(relistPeer.stop().peak);
    say(
      `RSS: after load ${r.rssAfterLoad} MiB, creating ${r.rssDuringLoadPeak}, relist ${r.rssDuringRelistPeak}${r.peer ? `; peer ${r.peer.rssAfterLoad} / ${r.peer.rssDuringLoadPeak} / ${r.peer.rssDuringRelistPeak}` : ''}`,
    );

    // One status reconcile: the quiet Origin's namespace never grows, origin-0's does.
    r.reconcileMs = {
      quiet: await reconcileCost(admin, ours(), QUIET_NS, 'quiet'),
      busy: await reconcileCost(admin, ours(), namespaceName(0), 'origin-0'),
    };
    say(
      `one status reconcile: quiet namespace ${r.reconcileMs.quiet.toFixed(2)} ms, busy namespace ${r.reconcileMs.busy.toFixed(2)} ms`,
    );

    // Bursts: without the webhook (the operator's own namespace is never sent to it), then with.
    const burstOurs = sampleRssOf(() => ours().child.pid ?? 0);
    r.burstWithoutWebhookPodsPerSec = await createPods(
      admin,
      layout,
      systemPods,
      systemPods + burst,
      32,
      () => install.operatorNamespace,
    );
    systemPods += burst;
    r.burst = await webhookBurst({
      admin,
      layout,
      ours: ours(),
      peer,
      from: created,
      count: burst,
      concurrency: 32,
    });
    created += burst;
    const expectedAfter = expectedSelected(layout, created);
    await until(
      'statuses after the burst',
      async () => (await originsRight(admin, expectedAfter)) === layout.origins,
      120_000,
    );
    r.rssBurstPeak = mib(burstOurs.stop().peak);
    say(
      `burst of ${burst}: ${r.burstWithoutWebhookPodsPerSec.toFixed(0)} pods/s without the webhook, ${r.burst.podsPerSec.toFixed(0)} with; webhook p99: own ${r.burst.own?.p99Ms.toFixed(1) ?? '–'} ms, client ${r.burst.client?.p99Ms.toFixed(1) ?? '–'} ms, API server ${r.burst.apiServer?.p99Ms.toFixed(1) ?? '–'} ms; event loop p99 ${r.burst.eventLoopP99Ms.toFixed(1)} ms`,
    );

    // Restart: SIGTERM, start again; /readyz, then every cache synced (it leads: no election here), RSS for 15 s.
    await ours().stop('SIGTERM');
    const spawnedAt = performance.now();
    const restarted = await install.restart();
    const restartRss = sampleRssOf(() => restarted.child.pid ?? 0);
    r.restartReadyzMs = await readyzAfter(restarted, spawnedAt);
    await until(
      'caches synced (leading)',
      async () => sumOf(await metricsAt(restarted.metricsPort), 'originguard_operator_leader') === 1,
      60_000,
    );
    r.restartSyncedMs = performance.now() - spawnedAt;
    await sleep(Math.max(0, 15_000 - (performance.now() - spawnedAt)));
    r.rssAfterRestartPeak = mib(restartRss.stop().peak);
    if (peer && r.peer) {
      await peer.stop('SIGTERM');
      const peerSpawned = performance.now();
      peer = await startPeer();
      const peerRss = sampleRssOf(() => peer?.child.pid ?? 0);
      r.peer.restartReadyzMs = await readyzAfter(peer, peerSpawned);
      await sleep(10_000);
      r.peer.rssAfterRestartPeak = mib(peerRss.stop().peak);
    }
    r.pods = created + systemPods + QUIET_PODS;
    r.controlPlaneRss = Object.fromEntries(Object.entries(cp.rss()).map(([k, v]) => [k, mib(v)]));
    say(
      `restart: /readyz after ${Math.round(r.restartReadyzMs)} ms, caches synced after ${Math.round(r.restartSyncedMs)} ms, RSS peak ${r.rssAfterRestartPeak} MiB${r.peer ? `; peer /readyz ${Math.round(r.peer.restartReadyzMs ?? 0)} ms, RSS ${r.peer.rssAfterRestartPeak} MiB` : ''}`,
    );
    results.push(r as SizeResult);
  }

  const bench: OperatorBench = {
    date: new Date().toISOString(),
    git: commit,
    loadavg: loadavg(),
    layout,
    burst,
    resync: flags.resync,
    chart,
    peer: flags['no-peer'] ? undefined : flags.peer,
    idle,
    sizes: results,
  };
  mkdirSync(flags.out, { recursive: true });
  const stamp = bench.date.replace(/[:.]/g, '-').slice(0, 19);
  writeFileSync(join(flags.out, `operator-${stamp}Z.json`), `${JSON.stringify(bench, null, 2)}\n`);
  const md = operatorMarkdown(bench);
  writeFileSync(join(flags.out, 'operator.md'), md);
  say(`\n${md}`);
} finally {
  await cleanup();
}
