// Two operator processes, as the chart's two replicas run: both serve the
// webhook with the one certificate from the shared Secret, one leads and writes
// status; kill the leader and the other takes over within the lease time; the
// serving certificate rotates before it expires and the webhook keeps answering.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OperatorProcess, startOperator } from '../../hack/run-operator.ts';
import { SIDECAR_CONTAINER } from '../../src/api/contract.ts';
import { reportLabels, reportName } from '../../src/api/report.ts';
import { freePort } from '../support/run-sidecar.ts';
import { servedSerial } from '../support/served-certificate.ts';
import {
  apply,
  applyCrds,
  applyLoopbackWebhook,
  createNamespace,
  deleteNamespace,
  kubeconfigPath,
  kubectl,
  kubectlJson,
  kubectlOk,
  waitFor,
} from './fixtures.ts';

const LEASE_MS = 4000;
const RETRY_MS = 500;
const id = randomBytes(3).toString('hex');
const WEBHOOK = `originguard-ha-${id}`;
const TEST_LABEL = 'originguard.test/ha';

interface Pod {
  metadata: { name: string; uid: string };
  spec: { initContainers?: { name: string }[] };
}

describe('two operator replicas', () => {
  let opNs = '';
  let ns = '';
  const replicas: OperatorProcess[] = [];

  beforeAll(async () => {
    await applyCrds();
    opNs = await createNamespace('og-ha-system');
    ns = await createNamespace('og-ha');
    await kubectlOk(['label', 'namespace', ns, `${TEST_LABEL}=${id}`]);
    const ports = [await freePort(), await freePort()] as const;
    // The API server calls the second replica, the one that survives the leader's death below.
    await applyLoopbackWebhook({
      name: WEBHOOK,
      port: ports[1] as number,
      operatorNamespace: opNs,
      label: { [TEST_LABEL]: id },
    });
    for (const webhookPort of ports) {
      const replica = await startOperator({
        kubeconfig: kubeconfigPath(),
        namespace: opNs,
        webhookPort,
        args: [
          `--watch-namespaces=${ns}`,
          `--webhook-configuration=${WEBHOOK}`,
          '--leader-elect',
          `--leader-elect-lease-duration=${LEASE_MS}ms`,
          '--leader-elect-renew-deadline=3s',
          `--leader-elect-retry-period=${RETRY_MS}ms`,
          // Short-lived on purpose: renewed with a third left, about 13 s in.
          '--webhook-cert-validity=20s',
        ],
      });
      replicas.push(replica);
      await replica.waitReady();
      // The first replica leads before the second starts, so the test knows which one to kill.
      if (replicas.length === 1) {
        await waitFor(async () => (await replica.metric('originguard_operator_leader')) === 1, {
          timeoutMs: 10_000,
          what: 'the first replica to lead',
        });
      }
    }
  }, 120_000);

  afterAll(async () => {
    for (const r of replicas) await r.stop('SIGKILL');
    await kubectl(['delete', 'mutatingwebhookconfiguration', WEBHOOK, '--ignore-not-found']);
    await deleteNamespace(ns);
    await deleteNamespace(opNs);
  });

  it('serves the webhook from both replicas with one shared certificate; one leads', async () => {
    const [a, b] = replicas as [OperatorProcess, OperatorProcess];
    expect(await servedSerial(a.webhookPort)).toBe(await servedSerial(b.webhookPort));
    expect(await a.metric('originguard_operator_leader')).toBe(1);
    expect(await b.metric('originguard_operator_leader')).toBe(0);
  });

  it('fails over to the other replica within the lease time when the leader dies, and keeps status true', async () => {
    const [a, b] = replicas as [OperatorProcess, OperatorProcess];
    await apply(`apiVersion: edge.originguard.dev/v1alpha1
kind: Origin
metadata: {name: shop, namespace: ${ns}}
spec:
  selector: {matchLabels: {app: edge}}
  listen: {port: 8080}
  upstream: {host: 127.0.0.1, port: 3000}
`);
    await kubectlOk(['run', 'edge-1', '--image=busybox', '--labels=app=edge', '--restart=Never'], {
      namespace: ns,
    });
    const pod = await kubectlJson<Pod>(['get', 'pod', 'edge-1'], { namespace: ns });
    expect(pod.spec.initContainers?.[0]?.name).toBe(SIDECAR_CONTAINER);

    await a.stop('SIGKILL');
    const t0 = Date.now();
    await waitFor(async () => (await b.metric('originguard_operator_leader')) === 1, {
      timeoutMs: 15_000,
      intervalMs: 100,
      what: 'the second replica to take the lease',
    });
    const tookMs = Date.now() - t0;
    process.stdout.write(
      `[operator-ha] leader killed; the other replica led after ${tookMs} ms (lease ${LEASE_MS} ms)\n`,
    );
    expect(tookMs).toBeLessThan(LEASE_MS + 2 * RETRY_MS + 1500);

    // The new leader reconciles: a report now shows in the Origin's status.
    const now = new Date().toISOString();
    await kubectlOk(['apply', '--server-side', '--field-manager=originguard-sidecar', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'edge.originguard.dev/v1alpha1',
        kind: 'OriginReport',
        metadata: {
          name: reportName('shop', 'edge-1'),
          namespace: ns,
          labels: reportLabels('shop', 'edge-1'),
          ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'edge-1', uid: pod.metadata.uid }],
        },
        status: {
          originName: 'shop',
          podName: 'edge-1',
          podUID: pod.metadata.uid,
          originGeneration: 1,
          health: 'Unreachable',
          cause: 'dns_error',
          phase: 'dns',
          hint: 'check the name',
          requests: 1,
          failures: 1,
          lastTransitionTime: now,
          heartbeatTime: now,
          sidecarVersion: '0.1.0',
        },
      }),
    });
    await waitFor(
      async () => {
        const out = await kubectlOk(['get', 'origin', 'shop', '-o', 'jsonpath={.status.cause}'], {
          namespace: ns,
        });
        return out.trim() === 'dns_error';
      },
      { timeoutMs: 10_000, what: 'the new leader to write the status' },
    );
  });

  it('rotates the serving certificate before it expires and the webhook keeps answering', async () => {
    const b = replicas[1] as OperatorProcess;
    const first = await servedSerial(b.webhookPort);
    await waitFor(async () => (await servedSerial(b.webhookPort)) !== first, {
      timeoutMs: 30_000,
      intervalMs: 500,
      what: 'the webhook to serve a renewed certificate',
    });
    await kubectlOk(['run', 'edge-2', '--image=busybox', '--labels=app=edge', '--restart=Never'], {
      namespace: ns,
    });
    const pod = await kubectlJson<Pod>(['get', 'pod', 'edge-2'], { namespace: ns });
    expect(pod.spec.initContainers?.[0]?.name).toBe(SIDECAR_CONTAINER);
  }, 60_000);
});
