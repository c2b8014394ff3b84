// `--webhook-cert-dir`: the webhook's certificate managed by someone else (a
// cert-manager Certificate mounted from its Secret; the CA injector keeping the
// caBundle). The operator serves the files, swaps in a renewed pair, and writes
// neither a Secret nor the caBundle.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OperatorProcess, startOperator } from '../../hack/run-operator.ts';
import { SIDECAR_CONTAINER } from '../../src/api/contract.ts';
import { type CertificatePair, generateCA, issueServingCertificate } from '../../src/operator/pki.ts';
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

const id = randomBytes(3).toString('hex');
const WEBHOOK = `originguard-certdir-${id}`;
const TEST_LABEL = 'originguard.test/certdir';
const HOUR = 3_600_000;

/** Writes the pair as a mounted Secret shows it: both files replaced at once. */
async function writePair(dir: string, pair: CertificatePair): Promise<void> {
  for (const [file, text] of [
    ['tls.crt', pair.cert],
    ['tls.key', pair.key],
  ] as const) {
    await writeFile(join(dir, `.${file}.new`), text, { mode: 0o600 });
    await rename(join(dir, `.${file}.new`), join(dir, file));
  }
}

describe('operator with --webhook-cert-dir (cert-manager mode)', () => {
  let opNs = '';
  let ns = '';
  let dir = '';
  let ca: CertificatePair;
  let operator: OperatorProcess;

  beforeAll(async () => {
    await applyCrds();
    opNs = await createNamespace('og-cd-system');
    ns = await createNamespace('og-cd');
    await kubectlOk(['label', 'namespace', ns, `${TEST_LABEL}=${id}`]);
    dir = await mkdtemp(join(tmpdir(), 'og-certdir-'));
    ca = await generateCA({
      validityMs: 24 * HOUR,
      now: Date.now(),
      commonName: 'stand-in for cert-manager',
    });
    await writePair(
      dir,
      await issueServingCertificate(ca, {
        dnsNames: ['localhost'],
        ipAddresses: ['127.0.0.1'],
        validityMs: HOUR,
        now: Date.now(),
      }),
    );
    const port = await freePort();
    // What cert-manager's CA injector would have written.
    await applyLoopbackWebhook({
      name: WEBHOOK,
      port,
      operatorNamespace: opNs,
      label: { [TEST_LABEL]: id },
      extra: { caBundle: Buffer.from(ca.cert).toString('base64') },
    });
    operator = await startOperator({
      kubeconfig: kubeconfigPath(),
      namespace: opNs,
      webhookPort: port,
      args: [`--watch-namespaces=${ns}`, `--webhook-configuration=${WEBHOOK}`, `--webhook-cert-dir=${dir}`],
    });
    await operator.waitReady();
  }, 60_000);

  afterAll(async () => {
    await operator?.stop('SIGKILL');
    await kubectl(['delete', 'mutatingwebhookconfiguration', WEBHOOK, '--ignore-not-found']);
    await deleteNamespace(ns);
    await deleteNamespace(opNs);
  });

  it('serves the mounted certificate, injects pods, and leaves the Secret and caBundle alone', async () => {
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
    const pod = await kubectlJson<{ spec: { initContainers?: { name: string }[] } }>(
      ['get', 'pod', 'edge-1'],
      {
        namespace: ns,
      },
    );
    expect(pod.spec.initContainers?.[0]?.name).toBe(SIDECAR_CONTAINER);
    const secrets = await kubectlOk(['get', 'secrets', '-o', 'name'], { namespace: opNs });
    expect(secrets).not.toContain('originguard-webhook-cert');
    const bundle = await kubectlOk([
      'get',
      'mutatingwebhookconfiguration',
      WEBHOOK,
      '-o',
      'jsonpath={.webhooks[0].clientConfig.caBundle}',
    ]);
    expect(Buffer.from(bundle, 'base64').toString()).toBe(ca.cert);
  });

  it('swaps in a renewed certificate from the files without a restart', async () => {
    const before = await servedSerial(operator.webhookPort);
    await writePair(
      dir,
      await issueServingCertificate(ca, {
        dnsNames: ['localhost'],
        ipAddresses: ['127.0.0.1'],
        validityMs: HOUR,
        now: Date.now(),
      }),
    );
    await waitFor(async () => (await servedSerial(operator.webhookPort)) !== before, {
      timeoutMs: 20_000,
      intervalMs: 500,
      what: 'the renewed certificate to be served',
    });
    await kubectlOk(['run', 'edge-2', '--image=busybox', '--labels=app=edge', '--restart=Never'], {
      namespace: ns,
    });
    const pod = await kubectlJson<{ spec: { initContainers?: { name: string }[] } }>(
      ['get', 'pod', 'edge-2'],
      {
        namespace: ns,
      },
    );
    expect(pod.spec.initContainers?.[0]?.name).toBe(SIDECAR_CONTAINER);
  }, 40_000);
});
