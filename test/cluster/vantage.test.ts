// Knowing the cause before the first user does, and from where, on a control
// plane of its own: the operator installed as a process with its own identity,
// pods created through the API and injected, their sidecars run from the
// injected pod specs (hack/pod-runner.ts), fake nodes through the API. No
// request is sent through a sidecar here: the sidecars' active checks and the
// operator's own probe find everything.
//
// The disagreement between vantage points is a real network rule: an nft rule
// drops the packets that the sidecars' user (the injected runAsUser) sends to the
// origin's port, while the operator (root) reaches it.
import { execFile } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlane, startControlPlane } from '../../hack/control-plane.ts';
import { ensureNamespace, installLocally, type LocalInstall } from '../../hack/local-install.ts';
import { type Pod, type PodContainer, runPodContainer } from '../../hack/pod-runner.ts';
import { SIDECAR_CONTAINER } from '../../src/api/contract.ts';
import type { OriginReport } from '../../src/api/report.ts';
import type { OriginStatus } from '../../src/api/status.ts';
import { EXIT } from '../../src/diagnose/diagnosis.ts';
import type { OperatorAnswer } from '../../src/diagnose/from-operator.ts';
import { dropFromUser, nftAvailable } from '../support/nft-drop.ts';
import { closedPort, type HttpOriginHandle, startHttpOrigin } from '../support/origins.ts';
import { freePort } from '../support/run-sidecar.ts';
import { type KubectlOptions, kubectlJson, kubectlOk, printedRows, waitFor } from './fixtures.ts';

const NS = 'vantage';
const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
/** The injected sidecar's runAsUser; a second user stands for pods the rule does not touch. */
const SIDECAR_UID = 65532;
const OTHER_UID = 65533;

let cp: ControlPlane;
let install: LocalInstall | undefined;
const sidecars: PodContainer[] = [];
const origins: HttpOriginHandle[] = [];

const opts = (more: KubectlOptions = {}): KubectlOptions => ({
  kubeconfig: cp.kubeconfig,
  namespace: NS,
  ...more,
});
const apply = (o: unknown) => kubectlOk(['apply', '-f', '-'], opts({ input: JSON.stringify(o) }));
const statusOf = async (name: string) =>
  (await kubectlJson<{ status?: OriginStatus }>(['get', 'origin', name], opts())).status;

const logs = () =>
  `${sidecars.map((s) => `--- ${s.env.ORIGINGUARD_POD_NAME} ---\n${s.tail(15)}`).join('\n')}\n--- operator ---\n${install?.operator.tail(30) ?? ''}`;

async function statusUntil(
  name: string,
  what: string,
  check: (s: OriginStatus) => boolean,
  timeoutMs: number,
) {
  let last: OriginStatus | undefined;
  const t0 = Date.now();
  try {
    await waitFor(
      async () => {
        last = await statusOf(name);
        return last !== undefined && check(last);
      },
      { timeoutMs, intervalMs: 200, what },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\nlast status: ${JSON.stringify(last, null, 1)}\n${logs()}`);
  }
  return Date.now() - t0;
}

function origin(name: string, port: number) {
  return {
    apiVersion: 'edge.originguard.dev/v1alpha1',
    kind: 'Origin',
    metadata: { name, namespace: NS },
    spec: {
      selector: { matchLabels: { app: name } },
      listen: { port: 8080, address: '127.0.0.1' },
      upstream: { host: '127.0.0.1', port },
      healthCheck: { interval: '1s', timeout: '500ms' },
    },
  };
}

/** Creates the pod (injected by the webhook), and runs its sidecar as the kubelet would, as `uid`. */
async function podWithSidecar(
  name: string,
  app: string,
  node: string | undefined,
  uid: number,
): Promise<PodContainer> {
  const manifest = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: { app } },
    spec: {
      ...(node === undefined ? {} : { nodeName: node }),
      containers: [{ name: 'app', image: 'registry.example/shop:1' }],
    },
  };
  await kubectlOk(['create', '-f', '-'], opts({ input: JSON.stringify(manifest) }));
  const pod = await kubectlJson<Pod>(['get', 'pod', name], opts());
  const sidecar = await runPodContainer(pod, SIDECAR_CONTAINER, {
    kube: { kubeconfig: cp.kubeconfig },
    adminPort: await freePort(),
    // Each pod has its own IP; here each sidecar its own loopback address for its listeners.
    env: { ORIGINGUARD_LISTEN_ADDRESS: `127.0.0.${10 + sidecars.length}` },
    runAs: { uid, gid: uid },
  });
  sidecars.push(sidecar);
  await sidecar.waitReady(20_000);
  return sidecar;
}

/** The printed row of `kubectl get origin NAME -o wide`, column → value. */
async function wideRow(name: string): Promise<Record<string, string>> {
  return printedRows(await kubectlOk(['get', 'origin', name, '-o', 'wide'], opts()))[0] ?? {};
}

/** `originguard diagnose origin/NAME --from-operator -o json`, as a user runs it. */
function fromOperator(
  name: string,
): Promise<{ code: number; answer: OperatorAnswer | undefined; stderr: string }> {
  const args = [
    CLI,
    'diagnose',
    `origin/${name}`,
    '--from-operator',
    '-n',
    NS,
    '--kubeconfig',
    cp.kubeconfig,
    '-o',
    'json',
  ];
  return new Promise((resolve) => {
    execFile(process.execPath, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({
        code,
        answer: stdout.trim() === '' ? undefined : (JSON.parse(stdout) as OperatorAnswer),
        stderr,
      });
    });
  });
}

const reports = (app: string) =>
  kubectlJson<{ items: OriginReport[] }>(
    ['get', 'originreports', '-l', `edge.originguard.dev/origin=${app}`],
    opts(),
  );

/** A loopback address in the operator's denied networks. */
const DENIED = '127.0.0.66';

beforeAll(async () => {
  cp = await startControlPlane();
  install = await installLocally(cp, {
    // Origins here live on loopback, which the operator refuses by default (it is the pod's own);
    // DENIED stands in for a network it must not probe (the link-local default is unit-tested):
    // were the refusal broken, the probe would reach only loopback.
    operatorArgs: [
      `--origin-probe-denied-networks=169.254.0.0/16,fe80::/10,${DENIED}/32`,
      '--origin-probe-min-interval=1s',
      '--origin-probe-refresh=10s',
    ],
  });
  await ensureNamespace(cp, NS);
  for (const [node, zone] of [
    ['node-a', 'zone-a'],
    ['node-b', 'zone-b'],
  ] as const) {
    await kubectlOk(['apply', '-f', '-'], {
      kubeconfig: cp.kubeconfig,
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: node, labels: { 'topology.kubernetes.io/zone': zone } },
      }),
    });
  }
}, 180_000);

afterAll(async () => {
  const steps = [...sidecars.map((s) => s.stop()), install?.stop(), ...origins.map((o) => o.close())];
  await Promise.allSettled(steps);
  await cp?.stop();
});

describe('active checks, the operator vantage point and triangulation, end to end', () => {
  it('shows an idle origin Unreachable with its cause and no traffic, then Reachable once it is back, with no traffic', async () => {
    const port = await closedPort();
    await apply(origin('idle', port));
    const sidecar = await podWithSidecar('idle-0', 'idle', undefined, SIDECAR_UID);
    await statusUntil(
      'idle',
      'Reachable=False connection_refused from the checks',
      (s) => s.reachable === 'False' && s.cause === 'connection_refused' && s.lastFailure?.source === 'Probe',
      15_000,
    );
    const [report] = (await reports('idle')).items;
    expect(report?.status).toMatchObject({
      health: 'Unreachable',
      source: 'Probe',
      requests: 0,
      failures: 0,
    });
    expect(report?.status.healthCheck).toMatchObject({ lastResult: 'Failure', cause: 'connection_refused' });
    // The operator fails too: the origin itself.
    await statusUntil('idle', 'scope Origin', (s) => s.triangulation?.scope === 'Origin', 15_000);
    expect((await statusOf('idle'))?.operatorProbe).toMatchObject({
      reason: 'PodsFailing',
      result: 'Unreachable',
      cause: 'connection_refused',
    });

    const up = await startHttpOrigin({ port });
    origins.push(up);
    await statusUntil('idle', 'Reachable=True without traffic', (s) => s.reachable === 'True', 15_000);
    const after = (await reports('idle')).items[0]?.status;
    expect(after).toMatchObject({ health: 'Reachable', source: 'Probe', requests: 0 });
    // Connect-only checks send no request: the origin saw none, from anyone.
    expect(up.requests).toEqual([]);
    await sidecar.stop();
  });

  const nft = nftAvailable();
  it.skipIf(!nft.ok)(
    "names the path from the pods when a network rule drops the sidecars' traffic but not the operator's",
    async () => {
      const up = await startHttpOrigin();
      origins.push(up);
      const rule = dropFromUser(SIDECAR_UID, up.port);
      try {
        await apply(origin('path', up.port));
        await podWithSidecar('path-0', 'path', 'node-a', SIDECAR_UID);
        await podWithSidecar('path-1', 'path', 'node-b', SIDECAR_UID);
        await statusUntil(
          'path',
          'scope PodPath',
          (s) =>
            s.reachable === 'False' &&
            s.cause === 'connection_timeout' &&
            s.triangulation?.scope === 'PodPath',
          20_000,
        );
        const s = await statusOf('path');
        expect(s?.operatorProbe).toMatchObject({ result: 'Reachable', reason: 'PodsFailing' });
        expect(s?.triangulation?.summary).toMatch(
          /^All 2 pods fail \(connection_timeout\) while the operator reaches the origin: the path from those pods/,
        );
        expect(await wideRow('path')).toMatchObject({
          REACHABLE: 'False',
          CAUSE: 'connection_timeout',
          SCOPE: 'PodPath',
        });
      } finally {
        rule.remove();
      }
    },
  );
  if (!nft.ok) console.warn(`[vantage] skipped the vantage-disagreement test: ${nft.reason}`);

  it('answers diagnose --from-operator by connecting to the declared upstream only: a Host header and a redirect lead nowhere else', async () => {
    // A trap on another loopback address, named by the Host header and the redirect: nothing may connect to it.
    let trapped = 0;
    const trap = net.createServer((s) => {
      trapped++;
      s.destroy();
    });
    await new Promise<void>((resolve) => trap.listen(0, '127.0.0.3', resolve));
    const trapAddress = `127.0.0.3:${(trap.address() as net.AddressInfo).port}`;
    const seen: { host: string; agent: string }[] = [];
    const redirector = http.createServer((req, res) => {
      seen.push({ host: req.headers.host ?? '', agent: req.headers['user-agent'] ?? '' });
      res.writeHead(302, { location: `http://${trapAddress}/` });
      res.end();
    });
    await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
    try {
      const trick = origin('trick', (redirector.address() as net.AddressInfo).port);
      Object.assign(trick.spec.upstream, { hostHeader: trapAddress });
      Object.assign(trick.spec.healthCheck, { path: '/admin' });
      await apply(trick);
      const { code, answer, stderr } = await fromOperator('trick');
      expect(stderr).toBe('');
      expect(code).toBe(EXIT.reachable);
      expect(answer?.probe).toMatchObject({ reason: 'Requested', result: 'Reachable' });
      expect(seen).toEqual([
        { host: trapAddress, agent: expect.stringMatching(/^originguard-operator-probe\//) },
      ]);
      expect(trapped).toBe(0);

      // An upstream in a denied network (by default: a cloud's metadata service) is never probed.
      await apply(origin('metadata', 80));
      await kubectlOk(
        [
          'patch',
          'origin',
          'metadata',
          '--type=merge',
          '-p',
          JSON.stringify({ spec: { upstream: { host: DENIED } } }),
        ],
        opts(),
      );
      const refused = await fromOperator('metadata');
      expect(refused.code).toBe(EXIT.inconclusive);
      expect(refused.answer?.probe).toMatchObject({ result: 'NotProbed', steps: [] });
      expect(refused.answer?.probe.summary).toContain(
        `${DENIED}:80 (in a network the operator does not probe`,
      );
    } finally {
      await new Promise((resolve) => redirector.close(resolve));
      await new Promise((resolve) => trap.close(resolve));
    }
  });

  it.skipIf(!nft.ok)('names the node when only the pods on it fail, all of them', async () => {
    const up = await startHttpOrigin();
    origins.push(up);
    // node-a's sidecars run as the user the rule drops; node-b's as another.
    const rule = dropFromUser(SIDECAR_UID, up.port);
    try {
      await apply(origin('nodes', up.port));
      await podWithSidecar('nodes-a-0', 'nodes', 'node-a', SIDECAR_UID);
      await podWithSidecar('nodes-a-1', 'nodes', 'node-a', SIDECAR_UID);
      await podWithSidecar('nodes-b-0', 'nodes', 'node-b', OTHER_UID);
      await podWithSidecar('nodes-b-1', 'nodes', 'node-b', OTHER_UID);
      await statusUntil(
        'nodes',
        'scope Nodes',
        (s) => s.triangulation?.scope === 'Nodes' && s.pods?.failing === 2 && s.pods.reachable === 2,
        20_000,
      );
      const s = await statusOf('nodes');
      expect(s?.triangulation?.summary).toMatch(/^2\/4 pods fail \(connection_timeout\), all on node node-a/);
      expect(s?.triangulation?.nodes).toEqual([
        { name: 'node-a', zone: 'zone-a', pods: 2, failing: 2 },
        { name: 'node-b', zone: 'zone-b', pods: 2, failing: 0 },
      ]);
      // Reachable stays True (2 of 4 reach it); the scope says where it fails.
      expect(await wideRow('nodes')).toMatchObject({ REACHABLE: 'True', SCOPE: 'Nodes' });
      const byPod = Object.fromEntries(
        (await reports('nodes')).items.map((r) => [r.status.podName, r.status.nodeName]),
      );
      expect(byPod).toEqual({
        'nodes-a-0': 'node-a',
        'nodes-a-1': 'node-a',
        'nodes-b-0': 'node-b',
        'nodes-b-1': 'node-b',
      });
    } finally {
      rule.remove();
    }
  });
});
