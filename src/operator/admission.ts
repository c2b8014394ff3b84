// The injection webhook as the operator runs it, on every replica: the serving
// certificate from the shared Secret (hot-swapped when it rotates), and each pod
// CREATE decided from the Origins in the informer cache.
import type { Logger } from 'pino';
import type { KubeClient } from '../kube/client.ts';
import type { Informer } from '../kube/informer.ts';
import { sleep } from '../retry.ts';
import { CertificateFiles } from './cert-files.ts';
import { certificateInfo, WebhookCertificates } from './certificates.ts';
import { decideInjection, type InjectionDecision, type SidecarTemplate } from './injection.ts';
import type { OperatorMetrics } from './metrics.ts';
import type { CertificatePair } from './pki.ts';
import type { Origin } from './resources.ts';
import { type AdmissionRequest, startWebhookServer, type WebhookServer } from './webhook.ts';

export interface AdmissionOptions {
  client: KubeClient;
  logger: Logger;
  metrics: OperatorMetrics;
  origins: Informer<Origin>;
  operatorNamespace: string;
  bind: { host: string; port: number };
  webhookConfigName: string;
  secretName: string;
  dnsNames: readonly string[];
  ipAddresses: readonly string[];
  servingValidityMs: number;
  caValidityMs: number;
  excludedNamespaces: readonly string[];
  template: SidecarTemplate;
  /**
   * Serve tls.crt/tls.key from this directory (e.g. a cert-manager Secret) instead of
   * the operator's own CA; the caBundle is then someone else's job (cert-manager's CA injector).
   */
  certDir?: string | undefined;
}

export interface Admission {
  readonly ready: boolean;
  readonly port: number;
  close(): Promise<void>;
}

/** How long a review waits for the first Origin list before deciding (the API server's timeout is longer). */
const SYNC_WAIT_MS = 2000;

export async function startAdmission(opts: AdmissionOptions): Promise<Admission> {
  const { logger, metrics, origins } = opts;
  let server: WebhookServer | undefined;
  const onCertificate = (pair: CertificatePair) => {
    server?.setCertificate(pair);
    metrics.certificateExpiry.set(certificateExpiry(pair.cert));
  };
  const certificates: {
    start(): Promise<CertificatePair>;
    stop(): void;
    readonly current: CertificatePair | undefined;
  } =
    opts.certDir !== undefined
      ? new CertificateFiles({ dir: opts.certDir, logger, onCertificate })
      : new WebhookCertificates({
          client: opts.client,
          namespace: opts.operatorNamespace,
          secretName: opts.secretName,
          webhookConfigName: opts.webhookConfigName,
          dnsNames: opts.dnsNames,
          ipAddresses: opts.ipAddresses,
          servingValidityMs: opts.servingValidityMs,
          caValidityMs: opts.caValidityMs,
          logger,
          onCertificate,
        });
  const pair = await certificates.start();
  metrics.certificateExpiry.set(certificateExpiry(pair.cert));

  const decide = async (req: AdmissionRequest): Promise<InjectionDecision> => {
    // Right after start the cache may be empty: wait briefly rather than wrongly skip injection.
    if (!origins.synced) await Promise.race([origins.waitForSync(), sleep(SYNC_WAIT_MS)]);
    const namespace = req.namespace ?? '';
    return decideInjection({
      namespace,
      pod: req.object as Parameters<typeof decideInjection>[0]['pod'],
      origins: origins.list(namespace) as Parameters<typeof decideInjection>[0]['origins'],
      excludedNamespaces: opts.excludedNamespaces,
      template: opts.template,
    });
  };
  server = await startWebhookServer({
    address: opts.bind.host,
    port: opts.bind.port,
    certificate: pair,
    decide,
    logger,
    onReview: (outcome) => {
      metrics.webhookReviews.labels(outcome.result).inc();
      metrics.webhookReviewDuration.observe(outcome.durationMs / 1000);
    },
  });
  logger.info(
    { port: server.port, webhookConfiguration: opts.webhookConfigName },
    'injection webhook serving',
  );
  const started = server;
  return {
    get ready() {
      return certificates.current !== undefined;
    },
    port: started.port,
    async close() {
      certificates.stop();
      await started.close();
    },
  };
}

const certificateExpiry = (pem: string) => certificateInfo(pem).notAfter.getTime() / 1000;
