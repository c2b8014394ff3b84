// `originguard sidecar --cluster` against a real kube-apiserver, without the
// operator: the install's RBAC and admission policy, a pod (Pending: there is no
// kubelet), the RoleBinding the operator would keep, and a token bound to that
// pod. The sidecar runs as its own process with the environment the webhook
// gives it, serves the Origins that select the pod, and writes its reports with
// its pod-bound token. (That a token cannot write another pod's report is
// identity.test.ts's.)
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { podEnv, writeLabels } from '../../hack/pod-files.ts';
import { SIDECAR_FIELD_MANAGER } from '../../src/api/contract.ts';
import type { OriginReport } from '../../src/api/report.ts';
import { reportName } from '../../src/api/report.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/kubeconfig.ts';
import { sidecarRoleBinding } from '../../src/operator/manifests.ts';
import { ApiProxy, type SidecarProcess, spawnClusterSidecar } from '../support/cluster-sidecar.ts';
import { type EchoResponse, startHttpOrigin } from '../support/origins.ts';
import { freePort, get } from '../support/run-sidecar.ts';
import {
  apply,
  applyCrds,
  kubeconfigPath,
  kubectl,
  kubectlOk,
  requestPodToken,
  requireControllerManager,
  useNamespace,
  waitFor,
} from './fixtures.ts';

const repo = new URL('../../', import.meta.url);
const POD = 'shop-edge-0';
let admin: KubeClient;

beforeAll(async () => {
  requireControllerManager(); // publishes kube-root-ca.crt, the CA a pod trusts
  await applyCrds();
  await kubectlOk(['apply', '--server-side', '--force-conflicts', '-f', new URL('deploy/', repo).pathname]);
  admin = new KubeClient(await loadKubeConfig({ kubeconfig: kubeconfigPath() }));
});
afterAll(() => admin?.close());

const running: SidecarProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const p of running.splice(0)) {
    p.child.kill('SIGKILL');
    // ORIGINGUARD_TEST_LOG=1 shows what each sidecar logged.
    if (process.env.ORIGINGUARD_TEST_LOG)
      process.stderr.write(`${p.logs.map((l) => JSON.stringify(l)).join('\n')}\n`);
  }
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

interface Pod {
  name: string;
  uid: string;
  namespace: string;
  dir: string;
}

/** A pod labelled app=shop-edge, its RoleBinding, and its projected volume's files (token, CA, labels). */
async function podWithToken(namespace: string): Promise<Pod> {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: POD, namespace, labels: { app: 'shop-edge' } },
    spec: {
      serviceAccountName: 'default',
      containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }],
    },
  };
  await apply(JSON.stringify(pod));
  const uid = (await kubectlOk(['get', 'pod', POD, '-o', 'jsonpath={.metadata.uid}'], { namespace })).trim();
  await apply(JSON.stringify(sidecarRoleBinding(namespace, ['default'])));
  const token = await requestPodToken({ namespace, serviceAccount: 'default', podName: POD, podUid: uid });
  await waitFor(
    async () =>
      (await kubectl(['auth', 'can-i', 'delete', 'originreports'], { token, namespace })).stdout.trim() ===
      'yes',
    { what: 'RBAC to grant the sidecar RoleBinding' },
  );
  let ca = '';
  await waitFor(
    async () => {
      const r = await kubectl(['get', 'configmap', 'kube-root-ca.crt', '-o', 'jsonpath={.data.ca\\.crt}'], {
        namespace,
      });
      ca = r.stdout;
      return r.code === 0 && ca.includes('BEGIN CERTIFICATE');
    },
    { what: 'the kube-root-ca.crt ConfigMap' },
  );
  const dir = await mkdtemp(join(tmpdir(), 'og-pod-'));
  dirs.push(dir);
  await writeFile(join(dir, 'token'), token);
  await writeFile(join(dir, 'ca.crt'), ca);
  await writeLabels(dir, { app: 'shop-edge' });
  return { name: POD, uid, namespace, dir };
}

async function startSidecar(pod: Pod, apiPort = Number(new URL(admin.server).port)): Promise<SidecarProcess> {
  const files = {
    podName: pod.name,
    namespace: pod.namespace,
    podUid: pod.uid,
    serviceAccount: 'default',
    dir: pod.dir,
  };
  const p = spawnClusterSidecar(podEnv(files, apiPort), await freePort(), ['--log-level=debug']);
  running.push(p);
  return p;
}

function origin(namespace: string, name: string, listen: number, upstream: number, spec: object = {}) {
  return JSON.stringify({
    apiVersion: 'edge.originguard.dev/v1alpha1',
    kind: 'Origin',
    metadata: { name, namespace },
    spec: {
      selector: { matchLabels: { app: 'shop-edge' } },
      listen: { port: listen, address: '127.0.0.1' },
      upstream: { host: '127.0.0.1', port: upstream },
      ...spec,
    },
  });
}

const reportPath = (ns: string, originName: string) =>
  `/apis/edge.originguard.dev/v1alpha1/namespaces/${ns}/originreports/${reportName(originName, POD)}`;
type StoredReport = OriginReport & { metadata: { managedFields?: { manager: string }[] } };
const getReport = (ns: string, originName = 'shop') => admin.get<StoredReport>(reportPath(ns, originName));

/** Polls the report every 50 ms until `check` holds; returns it and how long it took. */
async function reportWhen(
  ns: string,
  check: (r: StoredReport) => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<{ report: StoredReport; ms: number }> {
  const started = Date.now();
  let report: StoredReport | undefined;
  await waitFor(
    async () => {
      report = await getReport(ns);
      return report !== undefined && check(report);
    },
    { intervalMs: 50, timeoutMs, what: `report ${what}; last seen: ${JSON.stringify(report?.status)}` },
  );
  return { report: report as StoredReport, ms: Date.now() - started };
}

/** Waits until a request through the sidecar reaches `upstreamPort`'s origin. */
async function servedBy(listen: number, upstream: { requests: readonly unknown[] }, path = '/probe') {
  await waitFor(
    async () => {
      const before = upstream.requests.length;
      const r = await get(`http://127.0.0.1:${listen}${path}`).catch(() => undefined);
      return r?.status === 200 && upstream.requests.length > before;
    },
    { intervalMs: 50, timeoutMs: 10_000, what: `the sidecar on port ${listen} to serve the origin` },
  );
}

describe('originguard sidecar --cluster', () => {
  const ns = useNamespace('sidecar');

  it('serves a new Origin that selects its pod, and its report turns Unreachable within 1 s of a 531', async () => {
    const pod = await podWithToken(ns());
    await using upstream = await startHttpOrigin();
    const sc = await startSidecar(pod);
    await waitFor(async () => (await sc.admin('/readyz')).status === 200, {
      what: 'the sidecar to be ready',
    });
    const listen = await freePort();
    await apply(origin(ns(), 'shop', listen, upstream.port));
    await servedBy(listen, upstream);

    const uid = (
      await kubectlOk(['get', 'origin', 'shop', '-o', 'jsonpath={.metadata.uid}'], { namespace: ns() })
    ).trim();
    const { report } = await reportWhen(ns(), (r) => r.status.health === 'Reachable', 'Reachable');
    expect(report.status).toMatchObject({
      originName: 'shop',
      originUID: uid,
      podName: POD,
      podUID: pod.uid,
      originGeneration: 1,
      failures: 0,
    });
    expect(report.metadata.ownerReferences).toEqual([
      {
        apiVersion: 'v1',
        kind: 'Pod',
        name: POD,
        uid: pod.uid,
        controller: false,
        blockOwnerDeletion: false,
      },
    ]);
    expect(report.metadata.labels).toEqual({
      'edge.originguard.dev/origin': 'shop',
      'edge.originguard.dev/pod': POD,
    });
    expect(report.metadata.managedFields?.map((f) => f.manager)).toEqual([SIDECAR_FIELD_MANAGER]);

    await upstream.close();
    const answer = await get(`http://127.0.0.1:${listen}/down`);
    expect(answer.status).toBe(531);
    expect(answer.headers['proxy-status']).toContain('error=connection_refused');
    const down = await reportWhen(ns(), (r) => r.status.health === 'Unreachable', 'Unreachable', 5000);
    expect(down.ms).toBeLessThan(1000);
    expect(down.report.status).toMatchObject({
      cause: 'connection_refused',
      phase: 'connect',
      failures: 1,
      failuresByCause: { connection_refused: 1 },
      lastFailure: { cause: 'connection_refused', statusCode: 531, errno: 'ECONNREFUSED' },
    });
    expect(down.report.status.hint).toContain('Nothing accepts connections');
    const metrics = (await sc.admin('/metrics')).body;
    expect(metrics).toMatch(/originguard_report_writes_total\{result="success"\} [1-9]/);
    expect(metrics).toContain('originguard_kube_api_up 1');
  });

  it('applies an edit of the Origin without a restart or a dropped request, and the report follows its generation', async () => {
    const pod = await podWithToken(ns());
    await using a = await startHttpOrigin();
    await using b = await startHttpOrigin();
    const sc = await startSidecar(pod);
    const listen = await freePort();
    await apply(origin(ns(), 'shop', listen, a.port));
    await servedBy(listen, a);
    await reportWhen(ns(), (r) => r.status.originGeneration === 1, 'at generation 1');

    const inFlight = get(`http://127.0.0.1:${listen}/slow?delay=1500`);
    await new Promise((r) => setTimeout(r, 200));
    await apply(origin(ns(), 'shop', listen, b.port, { timeouts: { response: '20s' } }));
    await servedBy(listen, b, '/after');
    const slow = await inFlight;
    expect(slow.status).toBe(200);
    expect((JSON.parse(slow.body) as EchoResponse).url).toBe('/slow?delay=1500');
    await reportWhen(ns(), (r) => r.status.originGeneration === 2, 'at generation 2');
    expect(sc.child.exitCode).toBeNull();
    expect(
      sc.logs.filter(
        (l) => l.msg === 'sidecar started in cluster mode; waiting for the first list of Origins',
      ),
    ).toHaveLength(1);
  });

  it('stops serving an Origin that no longer selects the pod (labels changed) and deletes its report', async () => {
    const pod = await podWithToken(ns());
    await using upstream = await startHttpOrigin();
    await startSidecar(pod);
    const listen = await freePort();
    await apply(origin(ns(), 'shop', listen, upstream.port));
    await servedBy(listen, upstream);
    await reportWhen(ns(), () => true, 'written');

    // The kubelet rewrites the labels file; any Origin change makes the sidecar re-read it.
    await writeLabels(pod.dir, { app: 'shop-edge-canary' });
    await apply(
      origin(ns(), 'other', await freePort(), upstream.port, { selector: { matchLabels: { app: 'x' } } }),
    );
    await waitFor(
      async () => (await get(`http://127.0.0.1:${listen}/`).catch(() => undefined)) === undefined,
      {
        what: 'the listener to close',
      },
    );
    await waitFor(async () => (await getReport(ns())) === undefined, { what: 'the report to be deleted' });
  });

  it('deletes the report of a deleted Origin, and refuses a newer conflicting Origin while the older keeps serving', async () => {
    const pod = await podWithToken(ns());
    await using upstream = await startHttpOrigin();
    const sc = await startSidecar(pod);
    const listen = await freePort();
    await apply(origin(ns(), 'shop', listen, upstream.port));
    await servedBy(listen, upstream);
    await new Promise((r) => setTimeout(r, 1100)); // creationTimestamp has 1 s resolution
    await apply(origin(ns(), 'late', listen, upstream.port));
    await waitFor(async () => JSON.parse((await sc.admin('/status')).body).configErrors.length > 0, {
      what: 'the conflict on /status',
    });
    const status = JSON.parse((await sc.admin('/status')).body) as { configErrors: string[]; ready: boolean };
    expect(status.ready).toBe(true);
    expect(status.configErrors).toEqual([
      `${ns()}/late: spec.hosts: port ${listen} already has an Origin without hosts (${ns()}/shop); set hosts on one of them (${ns()}/late is newer: not served)`,
    ]);
    expect((await get(`http://127.0.0.1:${listen}/still`)).status).toBe(200);
    await reportWhen(ns(), () => true, 'of shop written');
    expect(await getReport(ns(), 'late')).toBeUndefined();

    await kubectlOk(['delete', 'origin', 'shop'], { namespace: ns() });
    await waitFor(async () => (await getReport(ns())) === undefined, { what: "shop's report to be deleted" });
    // The conflict is gone: the other Origin now serves the port and has its report.
    await waitFor(async () => (await getReport(ns(), 'late')) !== undefined, { what: "late's report" });
  });
});

describe('originguard sidecar --cluster without the API server', () => {
  const ns = useNamespace('sidecar');

  it('is not ready until it has listed the Origins once', async () => {
    const pod = await podWithToken(ns());
    const proxy = new ApiProxy(admin.server);
    await proxy.open();
    await proxy.close();
    const sc = await startSidecar(pod, proxy.port);
    await sc.waitForLog(/sidecar started in cluster mode/);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await sc.admin('/healthz')).status).toBe(200);
    expect((await sc.admin('/readyz')).status).toBe(503);
    expect((await sc.admin('/metrics')).body).toContain('originguard_kube_api_up 0');
    await proxy.open();
    try {
      await waitFor(async () => (await sc.admin('/readyz')).status === 200, {
        timeoutMs: 15_000,
        what: 'ready',
      });
    } finally {
      await proxy.close();
    }
  });

  it('keeps answering 531 while the API server is away, and writes the latest state and counters when it is back', async () => {
    const pod = await podWithToken(ns());
    const proxy = new ApiProxy(admin.server);
    await proxy.open();
    try {
      await using upstream = await startHttpOrigin();
      const sc = await startSidecar(pod, proxy.port);
      const listen = await freePort();
      await apply(origin(ns(), 'shop', listen, upstream.port));
      await servedBy(listen, upstream);
      await reportWhen(ns(), (r) => r.status.health === 'Reachable', 'Reachable');

      await proxy.close();
      await upstream.close();
      // Requests keep being answered through an outage of several write retries.
      for (let i = 0; i < 5; i++) {
        expect((await get(`http://127.0.0.1:${listen}/x${i}`)).status).toBe(531);
        await new Promise((r) => setTimeout(r, 600));
      }
      await waitFor(
        async () =>
          /originguard_report_writes_total\{result="error"\} [1-9]/.test((await sc.admin('/metrics')).body),
        {
          what: 'a failed report write',
        },
      );
      const metrics = (await sc.admin('/metrics')).body;
      expect(metrics).toContain('originguard_kube_api_up 0');
      expect((await getReport(ns()))?.status.health).toBe('Reachable');

      await proxy.open();
      const { report } = await reportWhen(
        ns(),
        (r) => r.status.health === 'Unreachable',
        'Unreachable after the outage',
        20_000,
      );
      const seen = JSON.parse((await sc.admin('/status')).body) as { origins: { requests: number }[] };
      expect(report.status).toMatchObject({
        cause: 'connection_refused',
        failures: 5,
        failuresByCause: { connection_refused: 5 },
        requests: seen.origins[0]?.requests,
      });
      await waitFor(async () => (await sc.admin('/metrics')).body.includes('originguard_kube_api_up 1'), {
        what: 'originguard_kube_api_up 1',
      });
    } finally {
      await proxy.close();
    }
  });
});
