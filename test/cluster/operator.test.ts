// `originguard operator` as a separate process against the real control plane:
// the API server calls its webhook over TLS on pod creation, it provisions the
// sidecars' RoleBinding, it aggregates OriginReports into Origin status with
// Events, it coalesces status writes, and pod creation survives its absence.
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OperatorProcess, startOperator } from '../../hack/run-operator.ts';
import {
  INJECT_ANNOTATION,
  INJECTED_ANNOTATION,
  SIDECAR_CONTAINER,
  TOKEN_VOLUME,
} from '../../src/api/contract.ts';
import type { OriginStatus } from '../../src/api/status.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { Informer } from '../../src/kube/informer.ts';
import { loadKubeConfig } from '../../src/kube/kubeconfig.ts';
import { SIDECAR_ROLE_BINDING } from '../../src/operator/names.ts';
import { freePort } from '../support/run-sidecar.ts';
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
  operatorKubeconfig,
  originStatus,
  originYaml,
  podYaml,
  requireControllerManager,
  waitFor,
  writeReports,
} from './fixtures.ts';

interface Container {
  name: string;
  restartPolicy?: string;
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  volumeMounts?: { name: string; mountPath: string }[];
}
interface Pod {
  metadata: { name: string; uid: string; annotations?: Record<string, string> };
  spec: { containers: Container[]; initContainers?: Container[]; volumes?: { name: string }[] };
}

const id = randomBytes(3).toString('hex');
const WEBHOOK = `originguard-test-${id}`;
const TEST_LABEL = 'originguard.test/operator';
const OPERATOR_ROLE = `originguard-operator-${id}`;

const sidecarOf = (pod: Pod) =>
  [...(pod.spec.initContainers ?? []), ...pod.spec.containers].filter((c) => c.name === SIDECAR_CONTAINER);

const condition = (s: OriginStatus | undefined, type: string) => s?.conditions?.find((c) => c.type === type);

describe('operator, running with its own least-privilege RBAC', () => {
  // The operator watches only these namespaces, so it never touches other test files' Origins.
  const namespaces: string[] = [];
  let opNs = '';
  let operator: OperatorProcess;
  const ns = (i: number) => namespaces[i] as string;

  beforeAll(async () => {
    await applyCrds();
    opNs = await createNamespace('og-system');
    for (let i = 0; i < 6; i++) {
      const name = await createNamespace('og-op');
      await kubectlOk(['label', 'namespace', name, `${TEST_LABEL}=${id}`]);
      namespaces.push(name);
    }
    const webhookPort = await freePort();
    await applyLoopbackWebhook({
      name: WEBHOOK,
      port: webhookPort,
      operatorNamespace: opNs,
      label: { [TEST_LABEL]: id },
    });
    operator = await startOperator({
      // The operator's own ServiceAccount with exactly the RBAC the install grants it,
      // so every test below also proves that RBAC is enough.
      kubeconfig: await operatorKubeconfig(opNs, {
        webhookConfiguration: WEBHOOK,
        clusterRole: OPERATOR_ROLE,
      }),
      namespace: opNs,
      webhookPort,
      args: [`--watch-namespaces=${namespaces.join(',')}`, `--webhook-configuration=${WEBHOOK}`],
    });
    await operator.waitReady();
  }, 120_000);

  afterAll(async () => {
    await operator?.stop('SIGKILL');
    await kubectl(['delete', 'mutatingwebhookconfiguration', WEBHOOK, '--ignore-not-found']);
    await kubectl(['delete', 'clusterrolebinding,clusterrole', OPERATOR_ROLE, '--ignore-not-found']);
    for (const n of [...namespaces, opNs]) await deleteNamespace(n);
  });

  it('keeps the webhook caBundle filled with its own CA', async () => {
    const bundle = (
      await kubectlOk([
        'get',
        'mutatingwebhookconfiguration',
        WEBHOOK,
        '-o',
        'jsonpath={.webhooks[0].clientConfig.caBundle}',
      ])
    ).trim();
    expect(Buffer.from(bundle, 'base64').toString()).toContain('BEGIN CERTIFICATE');
  });

  it('injects the sidecar into a pod an Origin selects when kubectl creates it', async () => {
    await apply(originYaml(ns(0), 'shop', 'edge'));
    await kubectlOk(['create', '-f', '-'], { input: podYaml(ns(0), 'edge-1', { app: 'edge' }) });
    const pod = await kubectlJson<Pod>(['get', 'pod', 'edge-1'], { namespace: ns(0) });
    const [sidecar, ...more] = sidecarOf(pod);
    expect(more).toEqual([]);
    expect(pod.spec.initContainers?.[0]?.name).toBe(SIDECAR_CONTAINER);
    expect(sidecar?.restartPolicy).toBe('Always');
    expect(sidecar?.env?.find((e) => e.name === 'ORIGINGUARD_POD_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe(
      'metadata.name',
    );
    // The pod-bound token is mounted into the sidecar only, never the app.
    expect(sidecar?.volumeMounts?.map((m) => m.name)).toContain(TOKEN_VOLUME);
    expect(pod.spec.containers[0]?.volumeMounts?.map((m) => m.name) ?? []).not.toContain(TOKEN_VOLUME);
    expect(pod.metadata.annotations?.[INJECTED_ANNOTATION]).toBeDefined();
  });

  it('injects the pods a Deployment creates', async () => {
    requireControllerManager();
    await apply(originYaml(ns(0), 'api', 'api'));
    await apply(`apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: ${ns(0)}}
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: app, image: busybox}]}
`);
    let pods: Pod[] = [];
    await waitFor(
      async () => {
        pods = (await kubectlJson<{ items: Pod[] }>(['get', 'pods', '-l', 'app=api'], { namespace: ns(0) }))
          .items;
        return pods.length === 2;
      },
      { what: 'the Deployment to create 2 pods' },
    );
    for (const pod of pods) expect(sidecarOf(pod)).toHaveLength(1);
  });

  it('leaves opted-out, unselected and operator-namespace pods untouched', async () => {
    await apply(originYaml(ns(0), 'shop', 'edge'));
    await apply(originYaml(opNs, 'shop', 'edge'));
    await kubectlOk(['create', '-f', '-'], {
      input: podYaml(ns(0), 'opted-out', { app: 'edge' }, `, annotations: {${INJECT_ANNOTATION}: "false"}`),
    });
    await kubectlOk(['create', '-f', '-'], { input: podYaml(ns(0), 'other', { app: 'other' }) });
    await kubectlOk(['create', '-f', '-'], { input: podYaml(opNs, 'in-operator-ns', { app: 'edge' }) });
    for (const [namespace, name] of [
      [ns(0), 'opted-out'],
      [ns(0), 'other'],
      [opNs, 'in-operator-ns'],
    ] as const) {
      const pod = await kubectlJson<Pod>(['get', 'pod', name], { namespace });
      expect(sidecarOf(pod), `${namespace}/${name}`).toEqual([]);
      expect(pod.spec.initContainers ?? []).toEqual([]);
      expect(pod.spec.volumes?.map((v) => v.name) ?? []).not.toContain(TOKEN_VOLUME);
    }
  });

  it("binds the sidecar role in a namespace while it has Origins, to the selected pods' service accounts", async () => {
    const namespace = ns(1);
    const binding = () => kubectl(['get', 'rolebinding', SIDECAR_ROLE_BINDING, '-o', 'json'], { namespace });
    expect((await binding()).code).not.toBe(0);
    await kubectlOk(['create', 'serviceaccount', 'edge-sa'], { namespace });
    await kubectlOk(['create', '-f', '-'], {
      input: podYaml(namespace, 'edge-1', { app: 'edge' }).replace(
        'spec:\n',
        'spec:\n  serviceAccountName: edge-sa\n',
      ),
    });
    await apply(originYaml(namespace, 'shop', 'edge'));
    await waitFor(
      async () => {
        const r = await binding();
        if (r.code !== 0) return false;
        const subjects = (JSON.parse(r.stdout) as { subjects?: { name: string }[] }).subjects ?? [];
        return subjects.map((s) => s.name).join() === 'edge-sa';
      },
      { timeoutMs: 15_000, what: 'the sidecar RoleBinding for edge-sa' },
    );
    await kubectlOk(['delete', 'origin', 'shop'], { namespace });
    await waitFor(async () => (await binding()).code !== 0, {
      timeoutMs: 15_000,
      what: 'the RoleBinding to go with the last Origin',
    });
  });

  it('aggregates reports into status, conditions, counts and events', async () => {
    const namespace = ns(2);
    await apply(originYaml(namespace, 'shop', 'edge'));
    for (const name of ['edge-a', 'edge-b', 'edge-c']) {
      await kubectlOk(['create', '-f', '-'], { input: podYaml(namespace, name, { app: 'edge' }) });
    }
    await kubectlOk(['create', '-f', '-'], {
      input: podYaml(
        namespace,
        'edge-plain',
        { app: 'edge' },
        `, annotations: {${INJECT_ANNOTATION}: "false"}`,
      ),
    });
    const pods = (
      await kubectlJson<{ items: Pod[] }>(['get', 'pods', '-l', 'app=edge'], { namespace })
    ).items.filter((p) => p.metadata.name !== 'edge-plain');
    expect(pods).toHaveLength(3);

    // All pods reach the origin: Ready, except that one selected pod runs without the sidecar.
    await writeReports(
      namespace,
      'shop',
      pods.map((pod) => ({ pod, health: 'Reachable' as const })),
    );
    await waitFor(async () => (await originStatus(namespace, 'shop'))?.pods?.reachable === 3, {
      timeoutMs: 10_000,
      what: 'status to count 3 reachable pods',
    });
    let status = await originStatus(namespace, 'shop');
    expect(status?.reachable).toBe('True');
    expect(status?.pods).toMatchObject({ selected: 4, injected: 3, current: 3, reachable: 3, failing: 0 });
    expect(status?.notInjected?.count).toBe(1);
    expect(status?.notInjected?.samplePods).toEqual(['edge-plain']);
    expect(condition(status, 'Degraded')?.status).toBe('True');
    expect(condition(status, 'Ready')?.observedGeneration).toBe(1);

    // Every sidecar now fails with connection_refused: not reachable, that cause and its hint.
    await writeReports(
      namespace,
      'shop',
      pods.map((pod) => ({ pod, health: 'Unreachable' as const })),
    );
    await waitFor(async () => (await originStatus(namespace, 'shop'))?.reachable === 'False', {
      timeoutMs: 10_000,
      what: 'status to turn unreachable',
    });
    status = await originStatus(namespace, 'shop');
    expect(status?.cause).toBe('connection_refused');
    expect(status?.hint).toMatch(/origin/i);
    expect(status?.podsSummary).toBe('0/4');
    expect(status?.causes?.[0]).toMatchObject({ cause: 'connection_refused', pods: 3 });
    expect(condition(status, 'Reachable')).toMatchObject({ status: 'False', reason: 'ConnectionRefused' });
    expect(condition(status, 'Ready')?.status).toBe('False');
    expect(status?.lastFailure?.pod).toMatch(/^edge-[abc]$/);

    // What a user sees.
    const table = await kubectlOk(['get', 'origins', 'shop'], { namespace });
    expect(table).toMatch(/shop\s+127\.0\.0\.1\s+3000\s+False\s+connection_refused\s+0\/4/);
    const wide = await kubectlOk(['get', 'origins', 'shop', '-o', 'wide'], { namespace });
    expect(wide).toContain(status?.hint?.slice(0, 40));

    // Recovery of two pods, a different cause on the third.
    const [a, b, c] = pods as [Pod, Pod, Pod];
    await writeReports(namespace, 'shop', [
      { pod: a, health: 'Reachable' },
      { pod: b, health: 'Reachable' },
      { pod: c, health: 'Unreachable', cause: 'connection_timeout' },
    ]);
    await waitFor(async () => (await originStatus(namespace, 'shop'))?.pods?.reachable === 2, {
      timeoutMs: 10_000,
      what: 'status to count 2 reachable pods',
    });
    status = await originStatus(namespace, 'shop');
    expect(status?.causes?.map((x) => x.cause)).toEqual(['connection_timeout']);
    expect(condition(status, 'Degraded')?.status).toBe('True');

    const events = await kubectlJson<{
      items: { reason: string; type: string; regarding: { name: string } }[];
    }>(['get', 'events.events.k8s.io', '--field-selector', 'regarding.name=shop'], { namespace });
    const reasons = events.items.map((e) => e.reason);
    expect(reasons).toContain('OriginUnreachable');
    expect(reasons).toContain('OriginReachable');
    expect(reasons).toContain('PodsNotInjected');
  });

  it('turns 200 reports changing at once into a bounded number of status writes', async () => {
    const namespace = ns(3);
    const n = 200;
    await apply(originYaml(namespace, 'shop', 'edge'));
    const podList = {
      apiVersion: 'v1',
      kind: 'List',
      items: Array.from({ length: n }, (_, i) => ({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `edge-${i}`, namespace, labels: { app: 'edge' } },
        spec: { containers: [{ name: 'app', image: 'busybox' }] },
      })),
    };
    await kubectlOk(['create', '-f', '-'], { input: JSON.stringify(podList), timeoutMs: 120_000 });
    const pods = (await kubectlJson<{ items: Pod[] }>(['get', 'pods', '-l', 'app=edge'], { namespace }))
      .items;
    expect(pods).toHaveLength(n);
    await writeReports(
      namespace,
      'shop',
      pods.map((pod) => ({ pod, health: 'Reachable' as const })),
    );
    await waitFor(async () => (await originStatus(namespace, 'shop'))?.pods?.reachable === n, {
      timeoutMs: 20_000,
      what: `status to count ${n} reachable pods`,
    });
    await new Promise((r) => setTimeout(r, 1500));

    const before = await operator.metric('originguard_operator_status_writes_total');
    const t0 = Date.now();
    await writeReports(
      namespace,
      'shop',
      pods.map((pod) => ({ pod, health: 'Unreachable' as const })),
    );
    await waitFor(async () => (await originStatus(namespace, 'shop'))?.pods?.failing === n, {
      timeoutMs: 30_000,
      what: `status to count ${n} failing pods`,
    });
    const settled = Date.now() - t0;
    await new Promise((r) => setTimeout(r, 2000));
    const writes = (await operator.metric('originguard_operator_status_writes_total')) - before;
    const seconds = (Date.now() - t0) / 1000;
    process.stdout.write(
      `[operator] ${n} report changes over ${(settled / 1000).toFixed(1)} s → ${writes} status writes\n`,
    );
    // About one write per second while reports keep changing, then nothing: never one per report.
    expect(writes).toBeGreaterThanOrEqual(1);
    expect(writes).toBeLessThanOrEqual(Math.ceil(seconds) + 2);
  }, 180_000);

  it("watches pods only where Origins are, and counts a namespace's earlier pods from its first status on", async () => {
    const namespace = ns(5);
    for (const name of ['edge-a', 'edge-b', 'edge-c']) {
      await kubectlOk(['create', '-f', '-'], { input: podYaml(namespace, name, { app: 'edge' }) });
    }
    await kubectlOk(['create', '-f', '-'], { input: podYaml(namespace, 'other', { app: 'other' }) });
    const cached = () => operator.metric('originguard_operator_cached_objects', { resource: 'pods' });
    const watched = () => operator.metric('originguard_operator_pod_watch_namespaces');
    const [cachedBefore, watchedBefore] = [await cached(), await watched()];
    // Every status the operator writes, as a watcher sees it.
    const statuses: (OriginStatus | undefined)[] = [];
    const client = new KubeClient(await loadKubeConfig({ kubeconfig: kubeconfigPath() }));
    const origins = new Informer<{ metadata: { name: string }; status?: OriginStatus }>(client, {
      name: 'test-origins',
      paths: [`/apis/edge.originguard.dev/v1alpha1/namespaces/${namespace}/origins`],
      logger: pino({ level: 'silent' }),
    });
    origins.on('update', (o) => statuses.push(o.status));
    origins.start();
    try {
      await origins.waitForSync();
      await apply(originYaml(namespace, 'shop', 'edge'));
      await waitFor(async () => (await originStatus(namespace, 'shop'))?.pods?.selected === 3, {
        timeoutMs: 15_000,
        what: 'the status to count the 3 pods created before the Origin',
      });
      // The watcher has seen that status too, so every status written before it as well.
      await waitFor(async () => statuses.some((s) => s?.pods?.selected === 3), {
        timeoutMs: 10_000,
        what: 'the watcher to see the status that counts 3 pods',
      });
      // Never a status from a namespace whose pods were not listed yet (it would say none is selected).
      expect(statuses.filter((s) => s !== undefined).map((s) => s?.pods?.selected)).not.toContain(0);
      expect(await cached()).toBe(cachedBefore + 4);
      expect(await watched()).toBe(watchedBefore + 1);
      await kubectlOk(['delete', 'origin', 'shop'], { namespace });
      await waitFor(async () => (await cached()) === cachedBefore, {
        timeoutMs: 15_000,
        what: "the namespace's pods to leave the cache with its last Origin",
      });
      expect(await watched()).toBe(watchedBefore);
    } finally {
      await origins.stop();
    }
  });

  it('never blocks pod creation: with the operator stopped, pods are created without the sidecar', async () => {
    const namespace = ns(4);
    await apply(originYaml(namespace, 'shop', 'edge'));
    const code = await operator.stop('SIGTERM');
    expect(code).toBe(0);
    const t0 = Date.now();
    await kubectlOk(['create', '-f', '-'], { input: podYaml(namespace, 'edge-1', { app: 'edge' }) });
    expect(Date.now() - t0).toBeLessThan(15_000);
    const pod = await kubectlJson<Pod>(['get', 'pod', 'edge-1'], { namespace });
    expect(sidecarOf(pod)).toEqual([]);
  });
});

describe('operator metrics', () => {
  let namespace = '';
  let opNs = '';
  let operator: OperatorProcess | undefined;

  beforeAll(async () => {
    await applyCrds();
    opNs = await createNamespace('og-system');
    namespace = await createNamespace('og-metrics');
  });

  afterAll(async () => {
    await operator?.stop('SIGKILL');
    await kubectl(['delete', 'clusterrolebinding,clusterrole', OPERATOR_ROLE, '--ignore-not-found']);
    for (const n of [namespace, opNs]) await deleteNamespace(n);
  });

  it('reports each work queue its own depth on /metrics', async () => {
    // A long status interval keeps an Origin's second status run waiting in its queue.
    operator = await startOperator({
      kubeconfig: await operatorKubeconfig(opNs, {
        webhookConfiguration: WEBHOOK,
        clusterRole: OPERATOR_ROLE,
      }),
      namespace: opNs,
      webhook: false,
      args: [`--watch-namespaces=${namespace}`, '--status-interval=60s'],
    });
    await operator.waitReady();
    await apply(originYaml(namespace, 'shop', 'edge'));
    await waitFor(async () => (await originStatus(namespace, 'shop')) !== undefined, {
      timeoutMs: 15_000,
      what: 'the first status write',
    });
    // A spec change queues the Origin's status again (held by the interval), and a new
    // selected pod queues the namespace's RBAC, which runs within about a second.
    await apply(originYaml(namespace, 'shop', 'edge').replace('port: 3000', 'port: 3001'));
    await kubectlOk(['create', '-f', '-'], { input: podYaml(namespace, 'edge-1', { app: 'edge' }) });
    const depth = (controller: string) =>
      (operator as OperatorProcess).metric('originguard_operator_queue_depth', { controller });
    await waitFor(async () => (await depth('status')) === 1 && (await depth('rbac')) === 0, {
      timeoutMs: 15_000,
      what: 'status queue depth 1 and rbac queue depth 0',
    });
    // Held, not drained by the RBAC runs that came and went meanwhile.
    await new Promise((r) => setTimeout(r, 2000));
    expect(await depth('status')).toBe(1);
    expect(await depth('rbac')).toBe(0);
  }, 60_000);
});
