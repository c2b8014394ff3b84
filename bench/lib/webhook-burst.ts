// A burst of pod creations through the webhook, measured three ways: the
// operator's own histogram (handler start to response written), a client of its
// own on the webhook port (webhook-probe.ts: adds the time a request waits in the
// operator, e.g. behind garbage collection), and the API server's histogram of
// its calls (adds the API server's side, on this machine sharing the same CPUs).
// Also the event-loop delay p99 of the operator (and of the peer) over the burst.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  histogramDelta,
  histogramOf,
  metricsAt,
  observations,
  parseMetrics,
  quantile,
  shareAtOrBelow,
  sumOf,
} from '../../hack/prom-text.ts';
import type { OperatorProcess } from '../../hack/run-operator.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import { createPods, type Layout, namespaceName, originName } from './cluster-load.ts';
import { percentile } from './http-client.ts';

const PROBE = fileURLToPath(new URL('./webhook-probe.ts', import.meta.url));
const OWN = 'originguard_operator_webhook_review_duration_seconds';
const API = 'apiserver_admission_webhook_admission_duration_seconds';
const LAG = 'originguard_operator_nodejs_eventloop_lag_p99_seconds';

export interface BurstResult {
  podsPerSec: number;
  /** The operator's histogram; p50/p99 interpolated within buckets, the share within 25 ms exact. */
  own: { reviews: number; p50Ms: number; p99Ms: number; shareWithin25Ms: number } | undefined;
  /** webhook-probe.ts: exact. */
  client: { requests: number; p50Ms: number; p99Ms: number; maxMs: number } | undefined;
  apiServer: { calls: number; p99Ms: number; shareWithin25Ms: number } | undefined;
  eventLoopP99Ms: number;
  peerEventLoopP99Ms: number | undefined;
}

const apiMetrics = async (admin: KubeClient) =>
  parseMetrics(await (await admin.send('GET', '/metrics')).text());

/** Creates pods [from, from + count) with `concurrency` in flight while the probe runs. */
export async function webhookBurst(o: {
  admin: KubeClient;
  layout: Layout;
  ours: OperatorProcess;
  peer: OperatorProcess | undefined;
  from: number;
  count: number;
  concurrency: number;
}): Promise<BurstResult> {
  const probe = spawn(
    process.execPath,
    [PROBE, String(o.ours.webhookPort), '5', namespaceName(0), originName(0)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let out = '';
  probe.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const probed = new Promise<number[]>((resolve) =>
    probe.once('close', () => resolve(out === '' ? [] : (JSON.parse(out) as number[]))),
  );
  // Reading the event-loop delay resets it: what the next read says covers the burst.
  const [before, apiBefore] = await Promise.all([metricsAt(o.ours.metricsPort), apiMetrics(o.admin)]);
  if (o.peer) await metricsAt(o.peer.metricsPort);
  const podsPerSec = await createPods(o.admin, o.layout, o.from, o.from + o.count, o.concurrency);
  probe.stdin.end();
  const [after, apiAfter, peerAfter] = await Promise.all([
    metricsAt(o.ours.metricsPort),
    apiMetrics(o.admin),
    o.peer ? metricsAt(o.peer.metricsPort) : undefined,
  ]);
  // The first request also paid for the TLS handshake.
  const times = (await probed).slice(1).sort((a, b) => a - b);
  const own = histogramDelta(histogramOf(before, OWN), histogramOf(after, OWN));
  const api = histogramDelta(
    histogramOf(apiBefore, API, { type: 'admit' }),
    histogramOf(apiAfter, API, { type: 'admit' }),
  );
  return {
    podsPerSec,
    own:
      observations(own) === 0
        ? undefined
        : {
            reviews: observations(own),
            p50Ms: quantile(own, 0.5) * 1000,
            p99Ms: quantile(own, 0.99) * 1000,
            shareWithin25Ms: shareAtOrBelow(own, 0.025),
          },
    client:
      times.length === 0
        ? undefined
        : {
            requests: times.length,
            p50Ms: percentile(times, 0.5),
            p99Ms: percentile(times, 0.99),
            maxMs: times.at(-1) ?? Number.NaN,
          },
    apiServer:
      observations(api) === 0
        ? undefined
        : {
            calls: observations(api),
            p99Ms: quantile(api, 0.99) * 1000,
            shareWithin25Ms: shareAtOrBelow(api, 0.025),
          },
    eventLoopP99Ms: sumOf(after, LAG) * 1000,
    peerEventLoopP99Ms: peerAfter ? sumOf(peerAfter, LAG) * 1000 : undefined,
  };
}
