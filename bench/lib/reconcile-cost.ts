// The cost of one status reconcile of one Origin, from the operator's own
// histogram: the Origin is touched (an annotation) and the histogram's sum moves
// by that one run's duration; runs that coincide with another reconcile are left
// out. The median of a dozen runs is robust to a garbage collection or a busy CPU
// landing on one of them. Measured for an Origin in a namespace that never grows
// and one in a namespace that grows with the cluster.

import { metricsAt, sumOf } from '../../hack/prom-text.ts';
import type { OperatorProcess } from '../../hack/run-operator.ts';
import { type KubeClient, resourcePath } from '../../src/kube/client.ts';

const SECONDS = 'originguard_operator_reconcile_duration_seconds';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Median ms of one status reconcile of namespace/name. */
export async function reconcileCost(
  admin: KubeClient,
  op: OperatorProcess,
  namespace: string,
  name: string,
  runs = 12,
): Promise<number> {
  const path = resourcePath({
    group: 'edge.originguard.dev',
    version: 'v1alpha1',
    plural: 'origins',
    namespace,
    name,
  });
  const read = async () => {
    const m = await metricsAt(op.metricsPort);
    const labels = { controller: 'status' };
    return { sum: sumOf(m, `${SECONDS}_sum`, labels), count: sumOf(m, `${SECONDS}_count`, labels) };
  };
  const durations: number[] = [];
  for (let i = 0; i < runs; i++) {
    const a = await read();
    await admin.patch(path, { metadata: { annotations: { 'bench/touch': String(Date.now()) } } }, 'merge');
    let b = a;
    for (let t = 0; t < 50 && b.count === a.count; t++) {
      await sleep(100);
      b = await read();
    }
    if (b.count - a.count === 1) durations.push((b.sum - a.sum) * 1000);
    // Runs of one Origin are at least --status-interval (1 s) apart.
    await sleep(1100);
  }
  durations.sort((x, y) => x - y);
  return durations[Math.floor(durations.length / 2)] ?? Number.NaN;
}
