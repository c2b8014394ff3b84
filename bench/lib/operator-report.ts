// The operator benchmark's record and its markdown: a row per cluster size, the
// peer (the operator before the slim cache) beside ours, and the targets of issue
// 13 checked on the measured figures. A target not measured at its size (50,000
// pods unless --sizes has it) is extrapolated from the two largest sizes and says so.
import type { ChartOperatorSettings } from './chart-settings.ts';
import type { Layout } from './cluster-load.ts';
import type { BurstResult } from './webhook-burst.ts';

/** MiB, except where named otherwise. */
export interface SizeResult {
  /** Pods asked for at this step (the bench namespaces). */
  size: number;
  /** Pods in the cluster when the step ended (bench namespaces, bursts, the quiet namespace). */
  pods: number;
  /** Pods in the operator's cache (originguard_operator_cached_objects). */
  cachedPods: number;
  createPodsPerSec: number;
  cpuCoresDuringCreate: number;
  peerCpuCoresDuringCreate?: number;
  convergenceMs: number;
  rssDuringLoadPeak: number;
  rssAfterLoad: number;
  heapUsed: number;
  heapTotal: number;
  /** Buffers outside V8's heap (network reads, TLS). */
  external: number;
  rssDuringRelistPeak: number;
  rssBurstPeak: number;
  rssAfterRestartPeak: number;
  restartReadyzMs: number;
  restartSyncedMs: number;
  reconcileMs: { quiet: number; busy: number };
  burstWithoutWebhookPodsPerSec: number;
  burst: BurstResult;
  controlPlaneRss: Record<string, number>;
  peer?: {
    rssDuringLoadPeak: number;
    rssAfterLoad: number;
    rssDuringRelistPeak?: number;
    rssAfterRestartPeak?: number;
    restartReadyzMs?: number;
  };
}

export interface OperatorBench {
  date: string;
  git: string;
  loadavg: number[];
  layout: Layout;
  burst: number;
  resync: string;
  chart: ChartOperatorSettings;
  peer: string | undefined;
  idle: { ours: number; peer: number | undefined };
  sizes: SizeResult[];
}

const f = (v: number | undefined, digits = 0) =>
  v === undefined || Number.isNaN(v) ? '–' : v.toFixed(digits);

/** The highest RSS seen at a size: creating, settled, relisting, bursting, restarting. */
export const worstRss = (r: SizeResult) =>
  Math.max(r.rssDuringLoadPeak, r.rssAfterLoad, r.rssDuringRelistPeak, r.rssBurstPeak, r.rssAfterRestartPeak);

/** RSS at `pods`, measured or extrapolated linearly from the two largest sizes. */
export function rssAt(b: OperatorBench, pods: number): { mib: number; measured: boolean } | undefined {
  const exact = b.sizes.find((s) => s.size === pods);
  if (exact) return { mib: worstRss(exact), measured: true };
  const [a, c] = [...b.sizes].sort((x, y) => x.pods - y.pods).slice(-2);
  if (a === undefined || c === undefined || c.pods === a.pods) return undefined;
  const perPod = (worstRss(c) - worstRss(a)) / (c.pods - a.pods);
  return { mib: worstRss(c) + perPod * (pods - c.pods), measured: false };
}

interface Target {
  name: string;
  goal: string;
  value: string;
  met: boolean | undefined;
}

export function operatorTargets(b: OperatorBench): Target[] {
  const at10k = b.sizes.find((s) => s.size === 10_000);
  const t: Target[] = [];
  const rss = (pods: number, limit: number) => {
    const v = rssAt(b, pods);
    t.push({
      name: `RSS with ${pods.toLocaleString('en')} pods (peak: load, relist, burst, restart)`,
      goal: `≤ ${limit} MiB`,
      value: v === undefined ? '–' : `${f(v.mib)} MiB${v.measured ? '' : ' (extrapolated)'}`,
      met: v === undefined ? undefined : v.mib <= limit,
    });
  };
  rss(10_000, 150);
  rss(50_000, 256);
  t.push({
    name: 'restart to /readyz with 10,000 pods',
    goal: '≤ 3 s',
    value: at10k ? `${f(at10k.restartReadyzMs)} ms (caches synced ${f(at10k.restartSyncedMs)} ms)` : '–',
    met: at10k ? at10k.restartReadyzMs <= 3000 : undefined,
  });
  const own = at10k?.burst.own;
  t.push({
    name: `webhook's own answer time p99, burst of ${b.burst} with 10,000 pods`,
    goal: '≤ 25 ms',
    value: own ? `${f(own.p99Ms, 1)} ms; ${f(own.shareWithin25Ms * 100, 2)} % within 25 ms` : '–',
    met: own ? own.shareWithin25Ms >= 0.99 : undefined,
  });
  const client = at10k?.burst.client;
  t.push({
    name: 'the same, timed by a client on the webhook port (adds waiting in the operator)',
    goal: '≤ 25 ms',
    value: client
      ? `${f(client.p99Ms, 1)} ms (max ${f(client.maxMs, 1)} ms, ${client.requests} requests)`
      : '–',
    met: client ? client.p99Ms <= 25 : undefined,
  });
  const [small, large] = [b.sizes[0], b.sizes.at(-1)];
  if (small && large && small !== large) {
    const ratio = large.reconcileMs.quiet / small.reconcileMs.quiet;
    t.push({
      name: `status reconcile, namespace of fixed size, ${small.pods} → ${large.pods} pods in the cluster`,
      goal: 'independent of pods elsewhere',
      value: `${f(small.reconcileMs.quiet, 2)} → ${f(large.reconcileMs.quiet, 2)} ms (×${f(ratio, 2)})`,
      // Within noise: a scan of the cluster would grow with it (×10 here).
      met: ratio < 2,
    });
  }
  return t;
}

export function operatorMarkdown(b: OperatorBench): string {
  const peer = b.peer !== undefined;
  const head = [
    `Operator at scale, ${b.date.slice(0, 16).replace('T', ' ')} UTC, commit ${b.git}, load average ${b.loadavg.map((l) => l.toFixed(1)).join(' ')} (\`npm run bench:operator\`).`,
    `The bundle as the chart runs it (memory limit ${b.chart.memoryLimit ?? 'none'}, \`NODE_OPTIONS=${b.chart.nodeOptions ?? ''}\`), its own least-privilege token; ${b.layout.namespaces} namespaces, ${b.layout.origins} Origins, one pod in ${b.layout.selectEvery} selected; relist every ${b.resync}.`,
    peer
      ? `Peer: the operator at ${b.peer} (before the slim cache), as it shipped (no heap flag), a standby replica on the same cluster (caches and webhook server, no reconcilers; its webhook is not registered, so it answers no review).`
      : 'No peer in this run.',
    '',
    `Idle (Origins, no pods): ${f(b.idle.ours)} MiB${peer ? `, peer ${f(b.idle.peer)} MiB` : ''}.`,
    '',
  ];
  const cols = [
    'pods in cluster',
    'pods cached',
    'RSS after load',
    'RSS creating (peak)',
    'RSS relist (peak)',
    'RSS burst (peak)',
    'RSS after restart (peak)',
    'heap used / total, external',
    'restart → /readyz',
    'restart → synced',
    'webhook own p50 / p99',
    'webhook client p50 / p99',
    'API server → webhook p99',
    'event loop p99 (burst)',
    'pods/s without / with webhook',
    `${b.layout.origins} statuses right after`,
    'one reconcile, fixed / growing namespace',
    'operator CPU creating',
  ];
  const rows = b.sizes.map((r) =>
    [
      r.pods,
      r.cachedPods,
      `${f(r.rssAfterLoad)} MiB`,
      `${f(r.rssDuringLoadPeak)} MiB`,
      `${f(r.rssDuringRelistPeak)} MiB`,
      `${f(r.rssBurstPeak)} MiB`,
      `${f(r.rssAfterRestartPeak)} MiB`,
      `${f(r.heapUsed)} / ${f(r.heapTotal)}, ${f(r.external)} MiB`,
      `${f(r.restartReadyzMs)} ms`,
      `${f(r.restartSyncedMs)} ms`,
      r.burst.own ? `${f(r.burst.own.p50Ms, 1)} / ${f(r.burst.own.p99Ms, 1)} ms` : '–',
      r.burst.client ? `${f(r.burst.client.p50Ms, 1)} / ${f(r.burst.client.p99Ms, 1)} ms` : '–',
      r.burst.apiServer ? `${f(r.burst.apiServer.p99Ms, 1)} ms` : '–',
      `${f(r.burst.eventLoopP99Ms, 1)} ms`,
      `${f(r.burstWithoutWebhookPodsPerSec)} / ${f(r.burst.podsPerSec)}`,
      `${f(r.convergenceMs)} ms`,
      `${f(r.reconcileMs.quiet, 2)} / ${f(r.reconcileMs.busy, 2)} ms`,
      `${f(r.cpuCoresDuringCreate * 100)} %`,
    ].join(' | '),
  );
  const lines = [...head, `| ${cols.join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`];
  for (const r of rows) lines.push(`| ${r} |`);
  if (peer) {
    lines.push(
      '',
      '| pods in cluster | RSS after load: ours / peer | creating (peak) | relist (peak) | after restart (peak) | restart → /readyz | CPU creating | event loop p99 (burst) |',
      '|---|---|---|---|---|---|---|---|',
    );
    for (const r of b.sizes) {
      const p = r.peer;
      const pair = (a: number, c: number | undefined) =>
        `${f(a)} / ${f(c)} MiB${c ? ` (×${f(c / a, 1)})` : ''}`;
      lines.push(
        `| ${r.pods} | ${pair(r.rssAfterLoad, p?.rssAfterLoad)} | ${pair(r.rssDuringLoadPeak, p?.rssDuringLoadPeak)} | ${pair(r.rssDuringRelistPeak, p?.rssDuringRelistPeak)} | ${pair(r.rssAfterRestartPeak, p?.rssAfterRestartPeak)} | ${f(r.restartReadyzMs)} / ${f(p?.restartReadyzMs)} ms | ${f(r.cpuCoresDuringCreate * 100)} / ${f((r.peerCpuCoresDuringCreate ?? Number.NaN) * 100)} % | ${f(r.burst.eventLoopP99Ms, 1)} / ${f(r.burst.peerEventLoopP99Ms, 1)} ms |`,
      );
    }
  }
  lines.push('', '| target | goal | measured | |', '|---|---|---|---|');
  for (const t of operatorTargets(b)) {
    lines.push(
      `| ${t.name} | ${t.goal} | ${t.value} | ${t.met === undefined ? '–' : t.met ? 'met' : 'NOT MET'} |`,
    );
  }
  const cp = b.sizes.at(-1)?.controlPlaneRss;
  if (cp) {
    lines.push(
      '',
      `Control plane at the end: ${Object.entries(cp)
        .map(([k, v]) => `${k} ${f(v)} MiB`)
        .join(', ')}.`,
    );
  }
  return `${lines.join('\n')}\n`;
}
