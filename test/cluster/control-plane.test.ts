// The test control plane behaves like a real cluster where originguard relies on
// it: pod-bound service-account tokens, controllers, garbage collection and a
// real version.
import { describe, expect, it } from 'vitest';
import {
  apply,
  kubectl,
  kubectlJson,
  kubectlOk,
  requestPodToken,
  requireControllerManager,
  useNamespace,
  waitFor,
} from './fixtures.ts';

interface Meta {
  name: string;
  uid: string;
  ownerReferences?: { kind: string; name: string; uid: string }[];
}
interface List<T> {
  items: T[];
}
interface Pod {
  metadata: Meta;
  status: { phase?: string };
}

function pendingPod(name: string, serviceAccount = 'default'): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      serviceAccountName: serviceAccount,
      containers: [{ name: 'app', image: 'registry.invalid/app:1' }],
    },
  });
}

describe('test control plane', () => {
  const ns = useNamespace('cp');

  it('issues pod-bound service-account tokens that authenticate and carry the pod name in user extras', async () => {
    await kubectlOk(['create', 'serviceaccount', 'edge'], { namespace: ns() });
    await apply(pendingPod('web-0', 'edge'), { namespace: ns() });
    const pod = await kubectlJson<Pod>(['get', 'pod', 'web-0'], { namespace: ns() });

    const token = await requestPodToken({
      namespace: ns(),
      serviceAccount: 'edge',
      podName: 'web-0',
      podUid: pod.metadata.uid,
    });
    const review = await kubectlJson<{
      status: { userInfo: { username: string; extra?: Record<string, string[]> } };
    }>(['auth', 'whoami'], { token });

    const user = review.status.userInfo;
    expect(user.username).toBe(`system:serviceaccount:${ns()}:edge`);
    expect(user.extra?.['authentication.kubernetes.io/pod-name']).toEqual(['web-0']);
    expect(user.extra?.['authentication.kubernetes.io/pod-uid']).toEqual([pod.metadata.uid]);
  });

  it('refuses a pod-bound token once its pod is deleted', async () => {
    await apply(pendingPod('gone'), { namespace: ns() });
    const pod = await kubectlJson<Pod>(['get', 'pod', 'gone'], { namespace: ns() });
    const token = await requestPodToken({
      namespace: ns(),
      serviceAccount: 'default',
      podName: 'gone',
      podUid: pod.metadata.uid,
    });
    await kubectlOk(['delete', 'pod', 'gone', '--grace-period=0', '--force', '--wait=true'], {
      namespace: ns(),
    });

    const r = await kubectl(['auth', 'whoami'], { token });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Unauthorized|must be logged in/);
  });

  it('creates the pods of a Deployment through its ReplicaSet; they stay Pending without nodes', async () => {
    requireControllerManager();
    await kubectlOk(['create', 'deployment', 'web', '--image=registry.invalid/web:1', '--replicas=2'], {
      namespace: ns(),
    });
    let pods: Pod[] = [];
    await waitFor(
      async () => {
        pods = (await kubectlJson<List<Pod>>(['get', 'pods', '-l', 'app=web'], { namespace: ns() })).items;
        return pods.length === 2;
      },
      { what: 'two pods of Deployment web' },
    );
    const rs = await kubectlJson<List<{ metadata: Meta }>>(['get', 'replicasets', '-l', 'app=web'], {
      namespace: ns(),
    });
    expect(rs.items).toHaveLength(1);
    const owner = rs.items[0]?.metadata;
    expect(owner?.ownerReferences?.[0]).toMatchObject({ kind: 'Deployment', name: 'web' });
    for (const pod of pods) {
      expect(pod.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'ReplicaSet', uid: owner?.uid });
      expect(pod.status.phase).toBe('Pending');
    }
  });

  it('garbage-collects an object when its owner is deleted', async () => {
    requireControllerManager();
    await kubectlOk(['create', 'configmap', 'owner'], { namespace: ns() });
    const owner = await kubectlJson<{ metadata: Meta }>(['get', 'configmap', 'owner'], { namespace: ns() });
    await apply(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: 'owned',
          ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata.uid }],
        },
      }),
      { namespace: ns() },
    );

    await kubectlOk(['delete', 'configmap', 'owner'], { namespace: ns() });

    await waitFor(
      async () =>
        (await kubectl(['get', 'configmap', 'owned'], { namespace: ns() })).stderr.includes('NotFound'),
      { what: 'ConfigMap owned to be garbage-collected' },
    );
  });

  it('deletes a Deployment together with its ReplicaSet and pods', async () => {
    requireControllerManager();
    await kubectlOk(['create', 'deployment', 'api', '--image=registry.invalid/api:1'], { namespace: ns() });
    await waitFor(
      async () => (await kubectlJson<List<Pod>>(['get', 'pods'], { namespace: ns() })).items.length === 1,
      { what: 'the pod of Deployment api' },
    );

    await kubectlOk(['delete', 'deployment', 'api', '--cascade=background'], { namespace: ns() });

    await waitFor(
      async () => {
        const rs = await kubectlJson<List<unknown>>(['get', 'replicasets'], { namespace: ns() });
        const pods = await kubectlJson<List<unknown>>(['get', 'pods'], { namespace: ns() });
        return rs.items.length === 0 && pods.items.length === 0;
      },
      { what: 'ReplicaSet and pods of Deployment api to be garbage-collected' },
    );
  });

  it('removes a deleted namespace and everything in it', async () => {
    requireControllerManager();
    const name = `${ns()}-doomed`;
    await kubectlOk(['create', 'namespace', name]);
    await kubectlOk(['create', 'configmap', 'inside'], { namespace: name });

    await kubectlOk(['delete', 'namespace', name, '--wait=false']);

    await waitFor(async () => (await kubectl(['get', 'namespace', name])).stderr.includes('NotFound'), {
      what: `namespace ${name} to be finalized`,
    });
  });

  it('reports a real Kubernetes release in /version, not the unstamped v0.0.0-master', async () => {
    const version = JSON.parse(await kubectlOk(['get', '--raw', '/version'])) as {
      gitVersion: string;
      major: string;
      minor: string;
    };
    const expected =
      process.env.ORIGINGUARD_K8S_VERSION ?? (process.env.KUBEBUILDER_ASSETS ? undefined : 'v1.36.3');
    if (expected !== undefined) expect(version.gitVersion).toBe(expected);
    const m = /^v(\d+)\.(\d+)\.\d+$/.exec(version.gitVersion);
    expect(m, `gitVersion ${version.gitVersion}`).not.toBeNull();
    expect(version.major).toBe(m?.[1]);
    expect(version.minor).toBe(m?.[2]);
  });
});
