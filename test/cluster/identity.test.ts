// Identity and least privilege against a real kube-apiserver: the sidecar's
// pod-bound token, the RoleBinding the operator keeps, and the admission policy
// that lets a token write only its own pod's OriginReports. Uses the generated
// deploy/ manifests, the same the install applies. Pods stay Pending (there is no
// kubelet); tokens can be bound to them all the same.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SIDECAR_FIELD_MANAGER } from '../../src/api/contract.ts';
import type { OriginReport } from '../../src/api/report.ts';
import { reportName } from '../../src/api/report.ts';
import { sidecarRoleBinding } from '../../src/operator/manifests.ts';
import { unreachableReport } from '../support/status-samples.ts';
import {
  apply,
  applyCrds,
  type KubectlResult,
  kubectl,
  kubectlJson,
  kubectlOk,
  requestPodToken,
  useNamespace,
  waitFor,
} from './fixtures.ts';

const repo = new URL('../../', import.meta.url);
const POD_BOUND_MESSAGE =
  "OriginReports may only be written with a pod-bound service-account token (the sidecar's projected token)";

beforeAll(async () => {
  await applyCrds();
  // Server-side with force: other test files apply the same objects in parallel.
  await kubectlOk(['apply', '--server-side', '--force-conflicts', '-f', new URL('deploy/', repo).pathname]);
});

interface Pod {
  name: string;
  uid: string;
}

/** Creates a pod running as the default ServiceAccount (on `nodeName` if given) and returns its name and UID. */
async function createPod(namespace: string, name: string, nodeName?: string): Promise<Pod> {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { app: 'shop-edge' } },
    spec: {
      serviceAccountName: 'default',
      ...(nodeName === undefined ? {} : { nodeName }),
      containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }],
    },
  };
  await apply(JSON.stringify(pod));
  const uid = (await kubectlOk(['get', 'pod', name, '-o', 'jsonpath={.metadata.uid}'], { namespace })).trim();
  return { name, uid };
}

/** The report the sidecar of `about` writes, owned by `owner` (by default the same pod). */
function reportOf(namespace: string, about: Pod, owner: Pod = about): OriginReport {
  const report = unreachableReport(namespace, about.name, about.uid);
  report.metadata.ownerReferences = [{ apiVersion: 'v1', kind: 'Pod', name: owner.name, uid: owner.uid }];
  return report;
}

/** Writes a report the way the sidecar does: one server-side apply with its own field manager. */
function sidecarApply(report: OriginReport, token: string, ...flags: string[]): Promise<KubectlResult> {
  return kubectl(
    ['apply', '--server-side', `--field-manager=${SIDECAR_FIELD_MANAGER}`, ...flags, '-f', '-'],
    {
      input: JSON.stringify(report),
      token,
    },
  );
}

const canI = async (token: string, namespace: string, ...args: string[]): Promise<string> =>
  (await kubectl(['auth', 'can-i', ...args], { token, namespace })).stdout.trim();

/** Two pods, and a token bound to the first, as its sidecar's projected token would be. */
async function podsAndToken(namespace: string): Promise<{ a: Pod; b: Pod; token: string }> {
  const a = await createPod(namespace, 'shop-edge-a');
  const b = await createPod(namespace, 'shop-edge-b');
  const token = await requestPodToken({
    namespace,
    serviceAccount: 'default',
    podName: a.name,
    podUid: a.uid,
  });
  return { a, b, token };
}

/** Applies the RoleBinding the operator keeps, and waits until RBAC grants it. */
async function bindSidecarRole(namespace: string, token: string): Promise<void> {
  await apply(JSON.stringify(sidecarRoleBinding(namespace, ['default'])));
  await waitFor(async () => (await canI(token, namespace, 'patch', 'originreports')) === 'yes', {
    what: 'RBAC to grant the sidecar RoleBinding',
  });
}

/**
 * Waits until the admission policy is enforced (the API server loads and type-checks
 * policies asynchronously), probing with a server-side dry run so nothing is written.
 */
async function waitForPolicy(report: OriginReport, token: string): Promise<void> {
  await waitFor(
    async () =>
      (await sidecarApply(report, token, '--dry-run=server')).stderr.includes('ValidatingAdmissionPolicy'),
    { timeoutMs: 30_000, what: 'the OriginReport admission policy to be enforced' },
  );
}

describe("a sidecar's pod-bound token", () => {
  const ns = useNamespace('identity');

  it("writes its own pod's report with server-side apply, as the sidecar's field manager", async () => {
    const { a, token } = await podsAndToken(ns());
    await bindSidecarRole(ns(), token);
    const r = await sidecarApply(reportOf(ns(), a), token);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(
      `originreport.edge.originguard.dev/${reportName('shop', a.name)} serverside-applied`,
    );
    // A second write (an update of the same report) is allowed too.
    expect((await sidecarApply(reportOf(ns(), a), token)).code).toBe(0);
    const stored = await kubectlJson<OriginReport & { metadata: { managedFields: { manager: string }[] } }>(
      ['get', 'originreport', reportName('shop', a.name), '--show-managed-fields'],
      { namespace: ns() },
    );
    expect(stored.status).toMatchObject({ podName: a.name, podUID: a.uid, health: 'Unreachable' });
    expect(stored.metadata.managedFields.map((f) => f.manager)).toEqual([SIDECAR_FIELD_MANAGER]);
  });

  it("is refused another pod's report, with a message saying it is not the token's pod", async () => {
    const { a, b, token } = await podsAndToken(ns());
    await bindSidecarRole(ns(), token);
    await waitForPolicy(reportOf(ns(), b), token);
    const r = await sidecarApply(reportOf(ns(), b), token);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(
      `this report is about pod ${b.name} (uid ${b.uid}), not the token's pod ${a.name} (uid ${a.uid})`,
    );
    const gone = await kubectl(['get', 'originreport', reportName('shop', b.name)], { namespace: ns() });
    expect(gone.stderr).toContain('NotFound');
  });

  it("names its pod's node in its report, and is refused another node (the token carries the node)", async () => {
    await apply(JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'identity-node-a' } }));
    const a = await createPod(ns(), 'shop-edge-on-a', 'identity-node-a');
    const token = await requestPodToken({
      namespace: ns(),
      serviceAccount: 'default',
      podName: a.name,
      podUid: a.uid,
    });
    await bindSidecarRole(ns(), token);
    const on = (nodeName: string) => {
      const r = reportOf(ns(), a);
      r.status.nodeName = nodeName;
      return r;
    };
    await waitForPolicy(on('identity-node-b'), token);
    const lie = await sidecarApply(on('identity-node-b'), token);
    expect(lie.code).not.toBe(0);
    expect(lie.stderr).toContain(
      "status.nodeName must be the node of the token's pod, identity-node-a, got identity-node-b",
    );
    const truth = await sidecarApply(on('identity-node-a'), token);
    expect(truth.stderr).toBe('');
  });

  it('is refused a report about its pod that another pod owns', async () => {
    const { a, b, token } = await podsAndToken(ns());
    await bindSidecarRole(ns(), token);
    await waitForPolicy(reportOf(ns(), b), token);
    const r = await sidecarApply(reportOf(ns(), a, b), token);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(
      `metadata.ownerReferences must name the token's pod ${a.name} (uid ${a.uid}) and no other Pod`,
    );
    expect(r.stderr).toContain(`got Pod owners [${b.name} (uid ${b.uid})]`);
  });

  it("is refused its own report under another pod's report name, and taking over another pod's report", async () => {
    const { a, b, token } = await podsAndToken(ns());
    await bindSidecarRole(ns(), token);
    await waitForPolicy(reportOf(ns(), b), token);
    const squat = reportOf(ns(), a);
    squat.metadata.name = reportName('shop', b.name);
    const r = await sidecarApply(squat, token);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`metadata.name must be ${reportName('shop', a.name)}`);

    // B's own report exists (written by an admin here); A's token may not overwrite it.
    await apply(JSON.stringify(reportOf(ns(), b)));
    const takeover = await sidecarApply(squat, token, '--force-conflicts');
    expect(takeover.code).not.toBe(0);
    expect(takeover.stderr).toContain(
      `this report belongs to pod ${b.name} (uid ${b.uid}), not the token's pod ${a.name} (uid ${a.uid}): a sidecar may not take over another pod's report`,
    );
    const kept = await kubectlJson<OriginReport>(['get', 'originreport', reportName('shop', b.name)], {
      namespace: ns(),
    });
    expect(kept.status.podUID).toBe(b.uid);
  });

  it("deletes its own pod's report (an Origin stopped selecting it), but not another pod's", async () => {
    const { a, b, token } = await podsAndToken(ns());
    await bindSidecarRole(ns(), token);
    await waitForPolicy(reportOf(ns(), b), token);
    expect((await sidecarApply(reportOf(ns(), a), token)).code).toBe(0);
    await apply(JSON.stringify(reportOf(ns(), b)));
    const other = await kubectl(['delete', 'originreport', reportName('shop', b.name)], {
      token,
      namespace: ns(),
    });
    expect(other.code).not.toBe(0);
    expect(other.stderr).toContain(
      `this report is about pod ${b.name} (uid ${b.uid}), not the token's pod ${a.name} (uid ${a.uid})`,
    );
    const own = await kubectl(['delete', 'originreport', reportName('shop', a.name)], {
      token,
      namespace: ns(),
    });
    expect(own.stderr).toBe('');
    expect(own.code).toBe(0);
    const names = await kubectlOk(['get', 'originreports', '-o', 'name'], { namespace: ns() });
    expect(names.trim()).toBe(`originreport.edge.originguard.dev/${reportName('shop', b.name)}`);
  });

  it('is refused when the token is not bound to a pod, with the pod-bound message', async () => {
    const { a, token } = await podsAndToken(ns());
    await bindSidecarRole(ns(), token);
    await waitForPolicy(reportOf(ns(), { name: 'shop-edge-b', uid: 'none' }), token);
    // Same ServiceAccount, so RBAC allows it: only the admission policy tells the tokens apart.
    const unbound = (
      await kubectlOk(['create', 'token', 'default', '--duration=10m'], { namespace: ns() })
    ).trim();
    const r = await sidecarApply(reportOf(ns(), a), unbound);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(POD_BOUND_MESSAGE);
    expect(r.stderr).toContain(`system:serviceaccount:${ns()}:default used a token bound to no pod`);
  });

  it("leaves people and the operator's reads alone: an admin still writes and lists any report", async () => {
    const { a, b, token } = await podsAndToken(ns());
    await bindSidecarRole(ns(), token);
    await waitForPolicy(reportOf(ns(), b), token);
    await apply(JSON.stringify(reportOf(ns(), b)));
    expect((await sidecarApply(reportOf(ns(), a), token)).code).toBe(0);
    const names = await kubectlOk(['get', 'originreports', '-o', 'name'], { namespace: ns() });
    expect(names.trim().split('\n').sort()).toEqual(
      [a, b].map((p) => `originreport.edge.originguard.dev/${reportName('shop', p.name)}`).sort(),
    );
  });
});

describe('RBAC of the sidecar', () => {
  const ns = useNamespace('identity');

  it('grants nothing without the RoleBinding the operator keeps: the write is forbidden', async () => {
    const { a, token } = await podsAndToken(ns());
    const r = await sidecarApply(reportOf(ns(), a), token);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(
      `User "system:serviceaccount:${ns()}:default" cannot patch resource "originreports" in API group "edge.originguard.dev"`,
    );
  });

  it('lets the token read Origins and create, patch or delete reports in its namespace, and nothing else', async () => {
    const { token } = await podsAndToken(ns());
    await bindSidecarRole(ns(), token);
    const allowed = [
      ['get', 'origins'],
      ['list', 'origins'],
      ['watch', 'origins'],
      ['create', 'originreports'],
      ['patch', 'originreports'],
      ['delete', 'originreports'],
    ];
    const refused = [
      ['create', 'origins'],
      ['patch', 'origins'],
      ['delete', 'origins'],
      ['patch', 'origins', '--subresource=status'],
      ['get', 'originreports'],
      ['list', 'originreports'],
      ['update', 'originreports'],
      ['get', 'pods'],
      ['get', 'secrets'],
      ['create', 'rolebindings'],
    ];
    for (const args of allowed) expect(await canI(token, ns(), ...args), args.join(' ')).toBe('yes');
    for (const args of refused) expect(await canI(token, ns(), ...args), args.join(' ')).toBe('no');
    expect(await canI(token, 'default', 'patch', 'originreports')).toBe('no');
  });
});

describe("the operator's ClusterRole", () => {
  const ns = useNamespace('identity');
  let binding: string | undefined;
  afterEach(async () => {
    if (binding !== undefined)
      await kubectlOk(['delete', 'clusterrolebinding', binding, '--ignore-not-found']);
    binding = undefined;
  });

  it('binds the sidecar role without holding its rights, and writes no report itself', async () => {
    await kubectlOk(['create', 'serviceaccount', 'operator'], { namespace: ns() });
    binding = `${ns()}-operator`;
    const operator = `system:serviceaccount:${ns()}:operator`;
    await kubectlOk([
      'create',
      'clusterrolebinding',
      binding,
      '--clusterrole=originguard-operator',
      `--serviceaccount=${ns()}:operator`,
    ]);
    const as = (...args: string[]) => kubectl([...args, `--as=${operator}`], { namespace: ns() });
    await waitFor(async () => (await as('auth', 'can-i', 'list', 'origins')).stdout.trim() === 'yes', {
      what: "RBAC to grant the operator's ClusterRoleBinding",
    });

    const rb = await kubectl(
      ['apply', '--server-side', '--field-manager=originguard-operator', `--as=${operator}`, '-f', '-'],
      { input: JSON.stringify(sidecarRoleBinding(ns(), ['default'])) },
    );
    expect(rb.stderr).toBe('');
    expect((await as('auth', 'can-i', 'bind', 'clusterrole/admin')).stdout.trim()).toBe('no');
    expect((await as('auth', 'can-i', 'patch', 'originreports')).stdout.trim()).toBe('no');
    expect((await as('auth', 'can-i', 'patch', 'origins', '--subresource=status')).stdout.trim()).toBe('yes');
    expect((await as('auth', 'can-i', 'update', 'origins')).stdout.trim()).toBe('no');
    // One node or namespace by name (a pod's zone, a namespace's opt-in to the probe), never all of them.
    expect((await as('auth', 'can-i', 'get', 'nodes/node-a')).stdout.trim()).toBe('yes');
    expect((await as('auth', 'can-i', 'get', `namespaces/${ns()}`)).stdout.trim()).toBe('yes');
    for (const verb of ['list', 'watch', 'patch'])
      expect((await as('auth', 'can-i', verb, 'nodes')).stdout.trim(), `${verb} nodes`).toBe('no');
    expect((await as('auth', 'can-i', 'list', 'namespaces')).stdout.trim()).toBe('no');
    // The webhook configuration is readable by name only: lists need the name as a field selector.
    expect((await as('get', 'mutatingwebhookconfigurations')).stderr).toContain('forbidden');
    expect(
      (await as('get', 'mutatingwebhookconfigurations', '--field-selector=metadata.name=originguard')).code,
    ).toBe(0);
  });
});
