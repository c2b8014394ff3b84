// The injection webhook against a real kube-apiserver: the webhook server and its
// certificate manager run in this process on 127.0.0.1, a MutatingWebhookConfiguration
// points the API server at them, and pods are created with kubectl as a user would.
// The webhook only sees namespaces labelled for this file, so parallel test files
// are unaffected.
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  INJECT_ANNOTATION,
  INJECTED_ANNOTATION,
  SIDECAR_CONTAINER,
  TOKEN_VOLUME,
} from '../../src/api/contract.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/kubeconfig.ts';
import {
  type CertificatePair,
  certificateInfo,
  WebhookCertificates,
  type WebhookCertificatesOptions,
} from '../../src/operator/certificates.ts';
import {
  DEFAULT_SIDECAR_TEMPLATE,
  decideInjection,
  type InjectableOrigin,
} from '../../src/operator/injection.ts';
import { SYSTEM_NAMESPACES } from '../../src/operator/names.ts';
import { startWebhookServer, type WebhookServer } from '../../src/operator/webhook.ts';
import { servedSerial } from '../support/served-certificate.ts';
import {
  apply,
  createNamespace,
  deleteNamespace,
  kubeconfigPath,
  kubectl,
  kubectlJson,
  kubectlOk,
  waitFor,
} from './fixtures.ts';

// biome-ignore lint/suspicious/noExplicitAny: pods and webhook configurations are read as plain JSON
type Json = any;

const repo = new URL('../../', import.meta.url);
const id = randomBytes(4).toString('hex');
const TEST_LABEL = 'webhook-test.originguard.dev/run';
const CONFIG_NAME = `originguard-webhook-test-${id}`;
const SECRET = 'originguard-webhook-tls';
const logger = pino({ level: process.env.ORIGINGUARD_TEST_LOG ?? 'silent' });

let operatorNs = '';
let appNs = '';
let origins: InjectableOrigin[] = [];
let client: KubeClient;
let certs: WebhookCertificates;
let server: WebhookServer | undefined;
let template = DEFAULT_SIDECAR_TEMPLATE;

function certificates(over: Partial<WebhookCertificatesOptions> = {}): WebhookCertificates {
  return new WebhookCertificates({
    client,
    namespace: operatorNs,
    secretName: SECRET,
    webhookConfigName: CONFIG_NAME,
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    // Short enough to rotate within the test: due at a third left, about 13 s in.
    servingValidityMs: 20_000,
    checkIntervalMs: 1_000,
    logger,
    ...over,
  });
}

function webhookConfiguration(port: number): string {
  return JSON.stringify({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: CONFIG_NAME },
    webhooks: [
      {
        name: 'pods.webhook-test.originguard.dev',
        clientConfig: { url: `https://127.0.0.1:${port}/mutate-pods` },
        rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }],
        failurePolicy: 'Ignore',
        timeoutSeconds: 5,
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        namespaceSelector: { matchLabels: { [TEST_LABEL]: id } },
      },
    ],
  });
}

function pod(labels: Record<string, string>, annotations: Record<string, string> = {}): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'web-', labels, annotations },
    spec: { containers: [{ name: 'app', image: 'registry.invalid/web:1' }] },
  });
}

/** Creates a pod with kubectl and returns it as the API server stored it. */
async function createPod(manifest: string, dryRun = false): Promise<Json> {
  const args = ['create', '-f', '-', '-o', 'json', ...(dryRun ? ['--dry-run=server'] : [])];
  return JSON.parse(await kubectlOk(args, { namespace: appNs, input: manifest }));
}

const injected = (p: Json) => (p.spec.initContainers ?? []).some((c: Json) => c.name === SIDECAR_CONTAINER);

beforeAll(async () => {
  await kubectlOk(['apply', '--server-side', '--force-conflicts', '-f', new URL('crds/', repo).pathname]);
  await kubectlOk([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/origins.edge.originguard.dev',
  ]);
  [operatorNs, appNs] = await Promise.all([createNamespace('whk-sys'), createNamespace('whk-app')]);
  await kubectlOk(['label', 'namespace', appNs, `${TEST_LABEL}=${id}`]);
  await apply(
    JSON.stringify({
      apiVersion: 'edge.originguard.dev/v1alpha1',
      kind: 'Origin',
      metadata: { name: 'web', namespace: appNs },
      spec: {
        selector: { matchLabels: { app: 'web' } },
        listen: { port: 8080 },
        upstream: { host: '127.0.0.1', port: 3000 },
      },
    }),
  );
  origins = (await kubectlJson<{ items: InjectableOrigin[] }>(['get', 'origins'], { namespace: appNs }))
    .items;

  client = new KubeClient(await loadKubeConfig({ kubeconfig: kubeconfigPath() }));
  certs = certificates({ onCertificate: (pair: CertificatePair) => server?.setCertificate(pair) });
  const pair = await certs.start();
  server = await startWebhookServer({
    address: '127.0.0.1',
    port: 0,
    certificate: pair,
    logger,
    decide: (req) =>
      decideInjection({
        namespace: req.namespace ?? '',
        pod: req.object as Json,
        origins,
        excludedNamespaces: [...SYSTEM_NAMESPACES, operatorNs],
        template,
      }),
  });
  await apply(webhookConfiguration(server.port));
  await certs.sync();
  // The API server picks up webhook configurations asynchronously.
  await waitFor(async () => injected(await createPod(pod({ app: 'web' }), true)), {
    timeoutMs: 20_000,
    what: 'the API server to call the webhook',
  });
});

afterAll(async () => {
  certs?.stop();
  await server?.close();
  await kubectl(['delete', 'mutatingwebhookconfiguration', CONFIG_NAME, '--ignore-not-found']);
  await Promise.all([operatorNs, appNs].filter((n) => n !== '').map((n) => deleteNamespace(n)));
});

describe('the injection webhook, called by the API server', () => {
  it('injects a selected pod: first init container, restartPolicy Always, token mounted only there', async () => {
    const p = await createPod(pod({ app: 'web' }));
    const [sidecar] = p.spec.initContainers;
    expect(sidecar.name).toBe(SIDECAR_CONTAINER);
    expect(sidecar.restartPolicy).toBe('Always');
    expect(sidecar.volumeMounts.map((m: Json) => m.name)).toContain(TOKEN_VOLUME);
    expect(p.spec.volumes.find((v: Json) => v.name === TOKEN_VOLUME).projected.sources[0]).toEqual({
      serviceAccountToken: {
        path: 'token',
        expirationSeconds: DEFAULT_SIDECAR_TEMPLATE.tokenExpirationSeconds,
      },
    });
    for (const c of p.spec.containers) {
      expect((c.volumeMounts ?? []).map((m: Json) => m.name)).not.toContain(TOKEN_VOLUME);
    }
    expect(p.metadata.annotations[INJECTED_ANNOTATION]).toBe(DEFAULT_SIDECAR_TEMPLATE.version);
  });

  it('keeps the init containers, volumes and annotations a pod already has', async () => {
    const manifest = JSON.parse(pod({ app: 'web' }, { team: 'edge' }));
    manifest.spec.initContainers = [{ name: 'migrate', image: 'registry.invalid/migrate:1' }];
    manifest.spec.volumes = [{ name: 'data', emptyDir: {} }];
    const p = await createPod(JSON.stringify(manifest));
    expect(p.spec.initContainers.map((c: Json) => c.name)).toEqual([SIDECAR_CONTAINER, 'migrate']);
    expect(p.spec.volumes.map((v: Json) => v.name)).toEqual(expect.arrayContaining(['data', TOKEN_VOLUME]));
    expect(p.metadata.annotations).toMatchObject({ team: 'edge', [INJECTED_ANNOTATION]: template.version });
  });

  it('injects a plain container, accepted by the API server, in container mode', async () => {
    template = { ...DEFAULT_SIDECAR_TEMPLATE, mode: 'container' };
    try {
      const p = await createPod(pod({ app: 'web' }));
      expect(p.spec.containers.map((c: Json) => c.name)).toEqual(['app', SIDECAR_CONTAINER]);
      expect(p.spec.initContainers).toBeUndefined();
    } finally {
      template = DEFAULT_SIDECAR_TEMPLATE;
    }
  });

  it('has the caBundle of the webhook configuration filled in with the CA in the Secret', async () => {
    const config = await kubectlJson<Json>(['get', 'mutatingwebhookconfiguration', CONFIG_NAME]);
    const secret = await kubectlJson<Json>(['get', 'secret', SECRET], { namespace: operatorNs });
    expect(secret.type).toBe('Opaque');
    expect(Object.keys(secret.data).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    expect(config.webhooks[0].clientConfig.caBundle).toBe(secret.data['ca.crt']);
    expect(Buffer.from(secret.data['ca.crt'], 'base64').toString()).toBe(certs.caBundle);
  });

  it('leaves an opted-out pod and a pod no Origin selects untouched', async () => {
    const optedOut = await createPod(pod({ app: 'web' }, { [INJECT_ANNOTATION]: 'false' }));
    const unselected = await createPod(pod({ app: 'db' }));
    for (const p of [optedOut, unselected]) {
      expect(p.spec.initContainers).toBeUndefined();
      expect(p.spec.containers.map((c: Json) => c.name)).toEqual(['app']);
      expect(p.metadata.annotations?.[INJECTED_ANNOTATION]).toBeUndefined();
    }
  });

  it('rotates the serving certificate before expiry; the server presents the new one and pods are still injected', async () => {
    const port = server?.port ?? 0;
    const before = certificateInfo(certs.current?.cert ?? '').serial;
    await waitFor(async () => certificateInfo(certs.current?.cert ?? '').serial !== before, {
      timeoutMs: 30_000,
      intervalMs: 500,
      what: 'the serving certificate to rotate',
    });
    const after = certificateInfo(certs.current?.cert ?? '').serial;
    expect((await servedSerial(port)).toUpperCase()).toBe(after.toUpperCase());
    expect(injected(await createPod(pod({ app: 'web' })))).toBe(true);
  });

  it('converges two replicas on one certificate, created and rotated concurrently', async () => {
    let skewMs = 0;
    const replica = () =>
      certificates({
        secretName: `race-${id}`,
        webhookConfigName: `absent-${id}`,
        now: () => Date.now() + skewMs,
      });
    const [a, b] = [replica(), replica()];
    const [first, second] = await Promise.all([a.sync(), b.sync()]);
    expect(second.cert).toBe(first.cert);
    skewMs = 15_000; // both see the certificate due at once
    const [ra, rb] = await Promise.all([a.sync(), b.sync()]);
    expect(rb.cert).toBe(ra.cert);
    expect(certificateInfo(ra.cert).serial).not.toBe(certificateInfo(first.cert).serial);
    const secret = await kubectlJson<Json>(['get', 'secret', `race-${id}`], { namespace: operatorNs });
    expect(Buffer.from(secret.data['tls.crt'], 'base64').toString()).toBe(ra.cert);
  });

  it('lets pods be created while the webhook is down (failurePolicy Ignore)', async () => {
    await server?.close();
    server = undefined;
    const p = await createPod(pod({ app: 'web' }));
    expect(p.metadata.uid).toBeTruthy();
    expect(injected(p)).toBe(false);
  });
});
