// The test control plane behaves like a real cluster where originguard relies on
// it: pod-bound service-account tokens, controllers, garbage collection and a
// real version.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it, onTestFinished } from 'vitest';
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

describe('admission control on the test control plane', () => {
  const ns = useNamespace('adm');

  it('enforces a ValidatingAdmissionPolicy that limits a pod-bound token to objects named after its pod', async () => {
    await kubectlOk(['create', 'serviceaccount', 'edge'], { namespace: ns() });
    await kubectlOk(['create', 'role', 'cm-writer', '--verb=create', '--resource=configmaps'], {
      namespace: ns(),
    });
    await kubectlOk(
      ['create', 'rolebinding', 'edge-cm-writer', '--role=cm-writer', `--serviceaccount=${ns()}:edge`],
      {
        namespace: ns(),
      },
    );
    await apply(pendingPod('web-0', 'edge'), { namespace: ns() });
    const pod = await kubectlJson<Pod>(['get', 'pod', 'web-0'], { namespace: ns() });
    const token = await requestPodToken({
      namespace: ns(),
      serviceAccount: 'edge',
      podName: 'web-0',
      podUid: pod.metadata.uid,
    });
    const name = `${ns()}-own-pod`;
    onTestFinished(async () => {
      await kubectl([
        'delete',
        'validatingadmissionpolicybinding,validatingadmissionpolicy',
        name,
        '--ignore-not-found',
      ]);
    });
    await apply(ownPodPolicy(name, ns()));

    // The policy takes effect once the apiserver has compiled it: retry with fresh names until refused.
    let refusal = '';
    let attempt = 0;
    await waitFor(
      async () => {
        const r = await kubectl(['create', 'configmap', `other-${attempt++}`], { namespace: ns(), token });
        refusal = r.stderr;
        return r.code !== 0;
      },
      { what: 'the ValidatingAdmissionPolicy to refuse a ConfigMap not named after the pod' },
    );
    expect(refusal).toContain('a pod may only write the ConfigMap named after itself');
    await kubectlOk(['create', 'configmap', 'web-0'], { namespace: ns(), token });
  });

  it('calls a validating admission webhook served on 127.0.0.1 and refuses what it denies', async () => {
    const tls = await selfSignedCert();
    const server = await startWebhook(tls, (object) =>
      object.metadata?.labels?.verdict === 'deny' ? 'denied by the test webhook' : undefined,
    );
    const name = `${ns()}-webhook`;
    onTestFinished(async () => {
      await kubectl(['delete', 'validatingwebhookconfiguration', name, '--ignore-not-found']);
      await new Promise((r) => server.close(r));
    });
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    await apply(webhookConfig(name, ns(), `https://127.0.0.1:${port}/validate`, tls.cert));

    const configMap = (name: string, verdict: string): string =>
      JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: { verdict } } });

    // The apiserver picks the configuration up from its informer: retry with fresh names until refused.
    let refusal = '';
    let attempt = 0;
    await waitFor(
      async () => {
        const r = await kubectl(['create', '-f', '-'], {
          namespace: ns(),
          input: configMap(`denied-${attempt++}`, 'deny'),
        });
        refusal = r.stderr;
        return r.code !== 0;
      },
      { what: 'the webhook to refuse a ConfigMap labelled verdict=deny' },
    );
    expect(refusal).toContain('denied by the test webhook');
    await kubectlOk(['create', '-f', '-'], { namespace: ns(), input: configMap('allowed', 'allow') });
  });
});

function ownPodPolicy(name: string, namespace: string): string {
  const podName = "request.userInfo.extra['authentication.kubernetes.io/pod-name']";
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingAdmissionPolicy',
        metadata: { name },
        spec: {
          failurePolicy: 'Fail',
          matchConstraints: {
            resourceRules: [
              {
                apiGroups: [''],
                apiVersions: ['v1'],
                operations: ['CREATE', 'UPDATE'],
                resources: ['configmaps'],
              },
            ],
          },
          matchConditions: [
            {
              name: 'pod-bound-token',
              expression: "'authentication.kubernetes.io/pod-name' in request.userInfo.extra",
            },
          ],
          validations: [
            {
              expression: `object.metadata.name == ${podName}[0]`,
              messageExpression:
                "'a pod may only write the ConfigMap named after itself, not ' + object.metadata.name",
            },
          ],
        },
      },
      {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingAdmissionPolicyBinding',
        metadata: { name },
        spec: {
          policyName: name,
          validationActions: ['Deny'],
          matchResources: {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
          },
        },
      },
    ],
  });
}

function webhookConfig(name: string, namespace: string, url: string, caPem: string): string {
  return JSON.stringify({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name },
    webhooks: [
      {
        name: 'configmaps.test.originguard.dev',
        clientConfig: { url, caBundle: Buffer.from(caPem).toString('base64') },
        rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['configmaps'] }],
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: 'Fail',
        timeoutSeconds: 5,
      },
    ],
  });
}

/** A self-signed serving certificate for 127.0.0.1, made with the openssl CLI (node:crypto cannot make X.509). */
async function selfSignedCert(): Promise<{ cert: string; key: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'originguard-webhook-'));
  try {
    await promisify(execFile)('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ]);
    return {
      cert: await readFile(join(dir, 'cert.pem'), 'utf8'),
      key: await readFile(join(dir, 'key.pem'), 'utf8'),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface AdmittedObject {
  metadata?: { labels?: Record<string, string> };
}

/** An AdmissionReview v1 server: `deny` returns a refusal message, or undefined to allow. */
function startWebhook(
  tls: { cert: string; key: string },
  deny: (object: AdmittedObject) => string | undefined,
): Promise<Server> {
  const server = createServer(tls, (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => {
      const review = JSON.parse(body) as { request: { uid: string; object: AdmittedObject } };
      const message = deny(review.request.object);
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          response: {
            uid: review.request.uid,
            allowed: message === undefined,
            ...(message === undefined ? {} : { status: { code: 403, message } }),
          },
        }),
      );
    });
  });
  return new Promise((res) => server.listen(0, '127.0.0.1', () => res(server)));
}
