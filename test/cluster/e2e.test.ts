// The whole story as a user lives it, on a control plane of its own (it stops
// and restarts the API server): install originguard (crds/, deploy/, the
// operator as a process with its own RBAC and webhook), declare an Origin,
// create a pod and get it back injected, run the injected sidecar as the
// kubelet would (hack/pod-runner.ts), then break the origin in each way a user
// meets and check what curl and kubectl show. The tests run in order; each
// builds on the state the previous one left.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlane, startControlPlane } from '../../hack/control-plane.ts';
import { ensureNamespace, installLocally, type LocalInstall } from '../../hack/local-install.ts';
import { type Pod, type PodContainer, runPodContainer } from '../../hack/pod-runner.ts';
import { SIDECAR_CONTAINER } from '../../src/api/contract.ts';
import type { OriginStatus } from '../../src/api/status.ts';
import { type FullAcceptQueueHandle, startFullAcceptQueue } from '../support/accept-queue.ts';
import { type DnsServerHandle, startDnsServer } from '../support/dns-server.ts';
import { type HttpOriginHandle, startHttpOrigin } from '../support/origins.ts';
import { type Answer, freePort, get, proxyStatus } from '../support/run-sidecar.ts';
import { type KubectlOptions, kubectlJson, kubectlOk, printedRows, waitFor } from './fixtures.ts';

const NS = 'shop';
const ORIGIN = 'shop';
const POD = 'edge-0';
const UNRESOLVABLE = 'shop-origin.e2e.test';

let cp: ControlPlane;
let install: LocalInstall | undefined;
let origin: HttpOriginHandle | undefined;
let originPort = 0;
let dns: DnsServerHandle;
let acceptQueue: FullAcceptQueueHandle | undefined;
let sidecar: PodContainer | undefined;
let listenPort = 0;
/** How long each observation took, printed with ORIGINGUARD_E2E_TIMINGS=1. */
const timings: Record<string, number> = {};

const opts = (more: KubectlOptions = {}): KubectlOptions => ({
  kubeconfig: cp.kubeconfig,
  namespace: NS,
  ...more,
});
const kubectl = (args: string[]) => kubectlOk(args, opts());
const status = async () =>
  (await kubectlJson<{ status?: OriginStatus }>(['get', 'origin', ORIGIN], opts())).status;
const request = (path = '/'): Promise<Answer> => get(`http://127.0.0.1:${listenPort}${path}`);
/** Requests through the sidecar until an answer passes `check` (an edit reaches the sidecar through its watch). */
async function requestUntil(what: string, check: (a: Answer) => boolean, timeoutMs = 5_000): Promise<Answer> {
  let last: Answer | undefined;
  await waitFor(
    async () => {
      last = await request();
      return check(last);
    },
    { timeoutMs, intervalMs: 50, what },
  );
  return last as Answer;
}
const patchOrigin = (spec: Record<string, unknown>) =>
  kubectl(['patch', 'origin', ORIGIN, '--type=merge', '-p', JSON.stringify({ spec })]);

function originManifest(): string {
  return JSON.stringify({
    apiVersion: 'edge.originguard.dev/v1alpha1',
    kind: 'Origin',
    metadata: { name: ORIGIN, namespace: NS },
    spec: {
      selector: { matchLabels: { app: 'shop-edge' } },
      listen: { port: listenPort, address: '127.0.0.1' },
      upstream: { host: '127.0.0.1', port: originPort },
      timeouts: { connect: '2s' },
    },
  });
}

/** Waits until the Origin's status passes `check`; returns the ms it took. */
async function statusUntil(
  what: string,
  check: (s: OriginStatus) => boolean,
  timeoutMs: number,
): Promise<number> {
  const t0 = Date.now();
  let last: OriginStatus | undefined;
  try {
    await waitFor(
      async () => {
        assertRunning();
        last = await status();
        return last !== undefined && check(last);
      },
      { timeoutMs, intervalMs: 100, what },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\nlast status: ${JSON.stringify(last, null, 1)}\n${logs()}`);
  }
  return Date.now() - t0;
}

/** Fails at once, with its output, when the sidecar or the operator has exited (crashed). */
function assertRunning(): void {
  for (const [name, child] of [
    ['sidecar', sidecar?.child],
    ['operator', install?.operator.child],
  ] as const) {
    if (child !== undefined && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`the ${name} exited (${child.exitCode ?? child.signalCode})\n${logs()}`);
    }
  }
}

const logs = () =>
  `--- sidecar ---\n${sidecar?.tail(30) ?? ''}\n--- operator ---\n${install?.operator.tail(30) ?? ''}`;

/** The row of `kubectl get origins` (with `-o wide` if asked) as column → value. */
async function printedRow(wide = false): Promise<Record<string, string>> {
  return printedRows(await kubectl(['get', 'origins', ...(wide ? ['-o', 'wide'] : [])]))[0] ?? {};
}

async function startOrigin(): Promise<void> {
  origin = await startHttpOrigin(originPort === 0 ? {} : { port: originPort });
  originPort = origin.port;
}

/** Brings the origin back and waits for a 200 through the sidecar and Reachable in the status. */
async function expectRecovery(): Promise<void> {
  await waitFor(async () => (await request()).status === 200, { timeoutMs: 10_000, what: 'a 200 again' });
  await statusUntil('Reachable=True', (s) => s.reachable === 'True' && (s.cause ?? '') === '', 10_000);
}

/** After a failing request: within 2 s the status says why, names the pod, and kubectl prints it. */
async function expectUnreachable(cause: string): Promise<void> {
  timings[`status ${cause}`] = await statusUntil(
    `Reachable=False cause ${cause}`,
    (s) =>
      s.reachable === 'False' &&
      s.cause === cause &&
      s.causes?.[0]?.samplePods.includes(POD) === true &&
      s.lastFailure?.pod === POD,
    2_000,
  );
  const row = await printedRow();
  expect(row).toMatchObject({ NAME: ORIGIN, REACHABLE: 'False', CAUSE: cause, PODS: '0/1' });
  const wide = await printedRow(true);
  expect(wide.HINT).toBe((await status())?.hint);
  expect(wide.HINT?.length).toBeGreaterThan(10);
}

beforeAll(async () => {
  cp = await startControlPlane();
  if (!cp.controllerManager)
    throw new Error('the e2e test needs kube-controller-manager (GC, ServiceAccounts)');
  install = await installLocally(cp);
  await ensureNamespace(cp, NS);
  dns = await startDnsServer({}, { fallback: { kind: 'nxdomain' } });
  await startOrigin();
  listenPort = await freePort();
  await kubectlOk(['apply', '-f', '-'], opts({ input: originManifest() }));
}, 120_000);

afterAll(async () => {
  if (process.env.ORIGINGUARD_E2E_TIMINGS) console.error('[e2e] timings (ms):', timings);
  // Each step on its own, so one failure does not leave the control plane running.
  const steps = [sidecar?.stop(), install?.stop(), origin?.close(), dns?.close(), acceptQueue?.close()];
  const failed = (await Promise.allSettled(steps)).filter((r) => r.status === 'rejected');
  await cp?.stop();
  if (failed.length > 0) throw (failed[0] as PromiseRejectedResult).reason;
});

describe('originguard end to end on its own control plane', () => {
  it('injects the sidecar into a pod the Origin selects, and that sidecar starts and gets ready', async () => {
    const manifest = { apiVersion: 'v1', kind: 'Pod', metadata: { name: POD, labels: { app: 'shop-edge' } } };
    const spec = { containers: [{ name: 'app', image: 'registry.example/shop:1' }] };
    await kubectlOk(['create', '-f', '-'], opts({ input: JSON.stringify({ ...manifest, spec }) }));
    const pod = await kubectlJson<Pod>(['get', 'pod', POD], opts());
    expect(pod.spec.initContainers?.[0]?.name).toBe(SIDECAR_CONTAINER);
    const t0 = Date.now();
    sidecar = await runPodContainer(pod, SIDECAR_CONTAINER, {
      kube: { kubeconfig: cp.kubeconfig },
      adminPort: await freePort(),
      // Stands in for the pod's resolv.conf: the only DNS server the sidecar asks is the test's.
      env: { ORIGINGUARD_DNS_SERVER: dns.address },
    });
    await sidecar.waitReady(20_000);
    timings['sidecar ready'] = Date.now() - t0;
  });

  it('proxies requests to the origin while it is up, and the Origin shows Reachable', async () => {
    const answer = await request('/products');
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ method: 'GET', url: '/products' });
    await statusUntil('Reachable=True 1/1', (s) => s.reachable === 'True' && s.podsSummary === '1/1', 10_000);
  });

  it('answers 531 connection_refused when the origin stops; kubectl shows the cause, hint, pod and an Event', async () => {
    await origin?.close();
    const answer = await request();
    expect(answer.status).toBe(531);
    expect(proxyStatus(answer).error).toBe('connection_refused');
    await expectUnreachable('connection_refused');
    const events = await kubectlJson<{
      items: { reason: string; note: string; regarding: { name: string } }[];
    }>(['get', 'events.events.k8s.io', '--field-selector', 'reason=OriginUnreachable'], opts());
    expect(events.items.find((e) => e.regarding.name === ORIGIN)?.note).toContain('connection_refused');
    // 127.0.0.1 is the pod's own loopback: the operator never probes it from its pod.
    await statusUntil(
      'the operator not probing loopback',
      (s) => s.operatorProbe?.result === 'NotProbed',
      5_000,
    );
    const s = await status();
    expect(s?.operatorProbe?.summary).toContain(
      `127.0.0.1:${originPort} (in a network the operator does not probe`,
    );
    expect(s?.triangulation).toMatchObject({ scope: 'AllPods' });
  });

  it('shows the origin reachable again once it is back', async () => {
    await startOrigin();
    await expectRecovery();
  });

  it('answers 531 dns_error NXDOMAIN when the upstream name does not resolve, and shows it', async () => {
    await patchOrigin({ upstream: { host: UNRESOLVABLE, port: originPort } });
    const answer = await requestUntil('a 531', (a) => a.status === 531);
    expect(proxyStatus(answer)).toMatchObject({ error: 'dns_error', rcode: 'NXDOMAIN' });
    expect(dns.queryCount()).toBeGreaterThan(0);
    await expectUnreachable('dns_error');
    await patchOrigin({ upstream: { host: '127.0.0.1', port: originPort } });
    await expectRecovery();
  });

  it('answers 531 connection_timeout after the connect timeout, and applies an edited timeout at once', async () => {
    acceptQueue = await startFullAcceptQueue();
    await patchOrigin({
      upstream: { host: '127.0.0.1', port: acceptQueue.port },
      timeouts: { connect: '300ms' },
    });
    const answer = await requestUntil('a 531', (a) => a.status === 531);
    expect(proxyStatus(answer).error).toBe('connection_timeout');
    expect(answer.ms).toBeGreaterThanOrEqual(290);
    expect(answer.ms).toBeLessThan(1_000);
    await expectUnreachable('connection_timeout');

    await patchOrigin({ timeouts: { connect: '1200ms' } });
    const slower = await requestUntil('a 1.2 s connect timeout', (a) => a.ms >= 1_190, 10_000);
    expect(slower.status).toBe(531);
    expect(slower.ms).toBeLessThan(2_000);
    // Every sidecar runs the new spec: the status counts it current.
    const generation = Number(
      await kubectl(['get', 'origin', ORIGIN, '-o', 'jsonpath={.metadata.generation}']),
    );
    await statusUntil('observedGeneration current', (s) => s.observedGeneration === generation, 5_000);
    await patchOrigin({ upstream: { host: '127.0.0.1', port: originPort }, timeouts: { connect: '2s' } });
    await expectRecovery();
  });

  it('keeps answering 531 while the API server is down, and the status is right once it is back', async () => {
    await cp.apiServer.stop();
    await origin?.close();
    const codes: number[] = [];
    for (let i = 0; i < 8; i++) {
      codes.push((await request()).status);
      await new Promise((r) => setTimeout(r, 400));
    }
    expect(codes).toEqual(Array(8).fill(531));
    const t0 = Date.now();
    await cp.apiServer.start();
    timings['API server restart'] = Date.now() - t0;
    timings['status after restart'] = await statusUntil(
      'connection_refused after the restart',
      (s) =>
        s.reachable === 'False' &&
        s.cause === 'connection_refused' &&
        s.podsSummary === '0/1' &&
        s.pods?.selected === 1 &&
        s.pods.injected === 1 &&
        s.pods.failing === 1 &&
        s.pods.reachable === 0,
      30_000,
    );
    await startOrigin();
    await expectRecovery();
  });

  it("removes the pod's OriginReports with the pod (garbage collection through the ownerReference)", async () => {
    const reports = () =>
      kubectlJson<{ items: { metadata: { ownerReferences?: { name: string }[] } }[] }>(
        ['get', 'originreports'],
        opts(),
      );
    expect((await reports()).items.map((r) => r.metadata.ownerReferences?.[0]?.name)).toEqual([POD]);
    // As the kubelet does on deletion: the container is stopped, then the pod goes.
    expect(await sidecar?.stop()).toBe(0);
    sidecar = undefined;
    await kubectl(['delete', 'pod', POD, '--wait=true']);
    const t0 = Date.now();
    await waitFor(async () => (await reports()).items.length === 0, {
      timeoutMs: 20_000,
      what: 'reports gone',
    });
    timings['reports collected'] = Date.now() - t0;
  });
});
