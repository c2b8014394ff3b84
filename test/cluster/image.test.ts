// The operator from the container image built from the Dockerfile, run as the
// chart runs it (read-only root, only /tmp writable, uid 65532, no capabilities,
// no new privileges) against the test control plane with a mounted kubeconfig
// of its own least-privilege ServiceAccount: it becomes ready, the API server
// calls its webhook and gets the pod injected, it writes the Origin's status and
// publishes it as per-Origin metrics, and SIGTERM to PID 1 stops it cleanly.
// Skipped, saying why, where Podman cannot run (npm run image installs it; CI does).
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { freePort } from '../../hack/net.ts';
import { type OperatorProcess, startOperator } from '../../hack/run-operator.ts';
import { SIDECAR_CONTAINER } from '../../src/api/contract.ts';
import type { OriginStatus } from '../../src/api/status.ts';
import { IMAGE, imageUnavailable, POD_LIKE, PODMAN_ENV, podman } from '../support/image.ts';
import {
  apply,
  applyCrds,
  applyLoopbackWebhook,
  createNamespace,
  deleteNamespace,
  kubectl,
  kubectlJson,
  kubectlOk,
  operatorKubeconfig,
  originStatus,
  originYaml,
  podYaml,
  waitFor,
  writeReports,
} from './fixtures.ts';

const unavailable = await imageUnavailable();
if (unavailable !== undefined) console.warn(`[image] skipping the operator image tests: ${unavailable}`);

const id = randomBytes(3).toString('hex');
const WEBHOOK = `originguard-image-${id}`;
const OPERATOR_ROLE = `originguard-image-operator-${id}`;
const TEST_LABEL = 'originguard.test/image';

/** The kubeconfig with its CA inlined, readable by uid 65532, in a directory to mount at /config. */
async function containerKubeconfig(kubeconfig: string, dir: string): Promise<void> {
  const config = parseYaml(await readFile(kubeconfig, 'utf8')) as {
    clusters: { cluster: Record<string, string> }[];
  };
  for (const { cluster } of config.clusters) {
    const ca = cluster['certificate-authority'];
    if (ca === undefined) continue;
    cluster['certificate-authority-data'] = (await readFile(ca)).toString('base64');
    delete cluster['certificate-authority'];
  }
  await writeFile(join(dir, 'kubeconfig'), stringifyYaml(config));
  await chmod(dir, 0o755);
  await chmod(join(dir, 'kubeconfig'), 0o644);
}

describe.skipIf(unavailable !== undefined)(`image ${IMAGE}: the operator against the control plane`, () => {
  const name = `og-test-operator-${id}`;
  let opNs = '';
  let appNs = '';
  let dir = '';
  let operator: OperatorProcess | undefined;
  let startedAt = 0;

  beforeAll(async () => {
    await applyCrds();
    opNs = await createNamespace('og-image-system');
    appNs = await createNamespace('og-image-app');
    await kubectlOk(['label', 'namespace', appNs, `${TEST_LABEL}=${id}`]);
    const webhookPort = await freePort();
    await applyLoopbackWebhook({
      name: WEBHOOK,
      port: webhookPort,
      operatorNamespace: opNs,
      label: { [TEST_LABEL]: id },
    });
    dir = await mkdtemp(join(tmpdir(), 'og-image-operator-'));
    await containerKubeconfig(
      await operatorKubeconfig(opNs, { webhookConfiguration: WEBHOOK, clusterRole: OPERATOR_ROLE }),
      dir,
    );
    startedAt = Date.now();
    operator = await startOperator({
      kubeconfig: '/config/kubeconfig',
      namespace: opNs,
      webhookPort,
      command: ['podman', 'run', `--name=${name}`, ...POD_LIKE, `--volume=${dir}:/config:ro`, IMAGE],
      env: { CONTAINERS_CONF: PODMAN_ENV.CONTAINERS_CONF ?? '' },
      args: [
        `--watch-namespaces=${appNs}`,
        `--webhook-configuration=${WEBHOOK}`,
        '--leader-elect',
        '--status-interval=200ms',
      ],
    });
  }, 120_000);

  afterAll(async () => {
    await podman(['rm', '--force', '--time=0', name]).catch(() => undefined);
    await kubectl(['delete', 'mutatingwebhookconfiguration', WEBHOOK, '--ignore-not-found']);
    await kubectl(['delete', 'clusterrolebinding,clusterrole', OPERATOR_ROLE, '--ignore-not-found']);
    for (const ns of [opNs, appNs]) if (ns !== '') await deleteNamespace(ns);
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  const op = (): OperatorProcess => {
    if (operator === undefined) throw new Error('the operator container did not start');
    return operator;
  };

  it('becomes ready and fills the webhook caBundle', async () => {
    await op().waitReady(60_000);
    console.warn(`[image] operator container ready ${Date.now() - startedAt} ms after podman run`);
    await waitFor(
      async () =>
        (
          await kubectlOk([
            'get',
            'mutatingwebhookconfiguration',
            WEBHOOK,
            '-o',
            'jsonpath={.webhooks[0].clientConfig.caBundle}',
          ])
        ).trim() !== '',
      { timeoutMs: 20_000, what: 'the caBundle' },
    );
  }, 70_000);

  it('injects the sidecar into a pod an Origin selects', async () => {
    await apply(originYaml(appNs, 'shop', 'edge'));
    await kubectlOk(['create', '-f', '-'], { input: podYaml(appNs, 'edge-1', { app: 'edge' }) });
    const pod = await kubectlJson<{ spec: { initContainers?: { name: string }[] } }>(
      ['get', 'pod', 'edge-1'],
      {
        namespace: appNs,
      },
    );
    expect(
      pod.spec.initContainers?.map((c) => c.name),
      op().tail(),
    ).toEqual([SIDECAR_CONTAINER]);
  });

  it("writes the Origin's status from the pod's report and publishes it as metrics", async () => {
    const pod = await kubectlJson<{ metadata: { name: string; uid: string } }>(['get', 'pod', 'edge-1'], {
      namespace: appNs,
    });
    // What the injected sidecar writes when the origin refuses its connections.
    await writeReports(appNs, 'shop', [{ pod, health: 'Unreachable', cause: 'connection_refused' }]);
    let status: OriginStatus | undefined;
    await waitFor(
      async () => {
        status = await originStatus(appNs, 'shop');
        return status?.reachable === 'False';
      },
      { timeoutMs: 20_000, what: 'the Origin status to say unreachable' },
    );
    expect(status).toMatchObject({
      cause: 'connection_refused',
      pods: { selected: 1, injected: 1, failing: 1 },
    });
    const origin = `${appNs}/shop`;
    expect(await op().metric('originguard_operator_origin_reachable', { origin })).toBe(0);
    expect(
      await op().metric('originguard_operator_origin_cause', { origin, cause: 'connection_refused' }),
    ).toBe(1);
    expect(await op().metric('originguard_operator_origin_pods', { origin, state: 'injected' })).toBe(1);

    await kubectlOk(['delete', 'origin', 'shop'], { namespace: appNs });
    await waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${op().metricsPort}/metrics`);
        return !(await res.text()).includes(`origin="${origin}"`);
      },
      { timeoutMs: 10_000, what: "the deleted Origin's series to go" },
    );
  }, 40_000);

  it('on SIGTERM to PID 1, releases the lease and exits 0 within the grace period', async () => {
    const sent = Date.now();
    await podman(['kill', '--signal=SIGTERM', name]);
    expect(await op().exited, op().tail()).toBe(0);
    expect(Date.now() - sent).toBeLessThan(10_000);
    expect(op().logs.map((l) => l.msg)).toContain('stopping: finishing reconciles, releasing the lease');
  }, 20_000);

  it('wrote nothing outside /tmp', async () => {
    // /config is the kubeconfig volume's mount point; /etc holds the files the runtime mounts.
    expect((await podman(['diff', name])).split('\n').filter(Boolean).sort()).toEqual([
      'A /config',
      'C /etc',
    ]);
  });
});
