// The cost of one status reconcile of one Origin, from the operator's own
// histogram: the Origin is touched (an annotation) ten times, 1.2 s apart, while
// nothing else changes, and the histogram's sum and count move by exactly those
// runs. Measured for an Origin in a namespace that never grows and one in a
// namespace that grows with the cluster.
import type { OperatorProcess } from '../../hack/run-operator.ts';
import { type KubeClient, resourcePath } from '../../src/kube/client.ts';
import { parseMetrics, sumOf } from './prom-text.ts';

const SECONDS = 'originguard_operator_reconcile_duration_seconds';

/** Mean ms of one status reconcile of namespace/name. */
export async function reconcileCost(
  admin: KubeClient,
  op: OperatorProcess,
  namespace: string,
  name: string,
): Promise<number> {
  const path = resourcePath({
    group: 'edge.originguard.dev',
    version: 'v1alpha1',
    plural: 'origins',
    namespace,
    name,
  });
  const read = async () => {
    const m = parseMetrics(await (await fetch(`http://127.0.0.1:${op.metricsPort}/metrics`)).text());
    const labels = { controller: 'status' };
    return { sum: sumOf(m, `${SECONDS}_sum`, labels), count: sumOf(m, `${SECONDS}_count`, labels) };
  };
  const a = await read();
  for (let i = 0; i < 10; i++) {
    await admin.patch(path, { metadata: { annotations: { 'bench/touch': String(Date.now()) } } }, 'merge');
    await new Promise((r) => setTimeout(r, 1200));
  }
  const b = await read();
  return b.count > a.count ? ((b.sum - a.sum) / (b.count - a.count)) * 1000 : Number.NaN;
}
