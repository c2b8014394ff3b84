// The webhook's own CA and serving certificate, kept in a Secret and rotated well
// before expiry, with the MutatingWebhookConfiguration's caBundle kept equal to
// the CA. Learned from Istio's WebhookCertPatcher and its failures (istio #14517:
// a caBundle that expired unnoticed; Pepr: a one-year certificate never rotated).
// Every replica runs this: they converge on one Secret through optimistic
// concurrency, so no leader is needed and every replica can serve the webhook.
import type { Logger } from 'pino';
import { type KubeClient, resourcePath } from '../kube/client.ts';
import { isConflict } from '../kube/errors.ts';
import type { JsonPatchOperation } from '../kube/objects.ts';
import { backoffDelay, sleep } from '../retry.ts';
import { WebhookCertificateError } from './errors.ts';
import { MANAGED_BY, MANAGED_BY_LABEL } from './names.ts';
import { type CertificatePair, certificateInfo, nextPki, type PkiPolicy, type StoredPki } from './pki.ts';

export {
  type CertificateInfo,
  type CertificatePair,
  certificateInfo,
  generateCA,
  issueServingCertificate,
  renewalDue,
  serviceDnsNames,
} from './pki.ts';

const YEAR = 365 * 24 * 3_600_000;

const SECRET_KEYS = { caBundle: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key' } as const;
const FIELDS = Object.keys(SECRET_KEYS) as (keyof StoredPki)[];

interface Secret {
  metadata: { name: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> };
  type?: string;
  data?: Record<string, string>;
}

interface WebhookConfiguration {
  webhooks?: { name: string; clientConfig: { caBundle?: string } }[];
}

function fromSecret(secret: Secret): StoredPki {
  const read = (f: keyof StoredPki) => Buffer.from(secret.data?.[SECRET_KEYS[f]] ?? '', 'base64').toString();
  return Object.fromEntries(FIELDS.map((f) => [f, read(f)])) as unknown as StoredPki;
}

function secretData(pki: StoredPki): Record<string, string> {
  return Object.fromEntries(FIELDS.map((f) => [SECRET_KEYS[f], Buffer.from(pki[f]).toString('base64')]));
}

export interface WebhookCertificatesOptions {
  client: KubeClient;
  namespace: string;
  secretName: string;
  /** MutatingWebhookConfiguration whose webhooks get ca.crt as caBundle (created by the installer). */
  webhookConfigName: string;
  /** Names the API server reaches the webhook by, e.g. serviceDnsNames(service, namespace). */
  dnsNames: readonly string[];
  ipAddresses?: readonly string[];
  /** Default 1 year. */
  servingValidityMs?: number;
  /** Default 10 years. */
  caValidityMs?: number;
  /** Default min(1 min, serving validity / 10). */
  checkIntervalMs?: number;
  logger: Logger;
  /** Called whenever the serving certificate changes (and once at start), to hot-swap it. */
  onCertificate?: (pair: CertificatePair) => void;
  /** Clock, for tests. */
  now?: () => number;
}

export class WebhookCertificates {
  readonly #opts: WebhookCertificatesOptions;
  readonly #policy: PkiPolicy;
  readonly #client: KubeClient;
  readonly #intervalMs: number;
  #current: CertificatePair | undefined;
  #caBundle = '';
  #warnedMissingConfig = false;
  #timer: NodeJS.Timeout | undefined;
  #abort = new AbortController();
  #inflight: Promise<CertificatePair> | undefined;

  constructor(opts: WebhookCertificatesOptions) {
    this.#opts = opts;
    const servingValidityMs = opts.servingValidityMs ?? YEAR;
    this.#policy = {
      dnsNames: opts.dnsNames,
      ipAddresses: opts.ipAddresses ?? [],
      servingValidityMs,
      caValidityMs: opts.caValidityMs ?? 10 * YEAR,
      renewFraction: 1 / 3,
    };
    this.#intervalMs = opts.checkIntervalMs ?? Math.min(60_000, servingValidityMs / 10);
    this.#client = opts.client;
  }

  /** The serving pair in use, once a sync succeeded. */
  get current(): CertificatePair | undefined {
    return this.#current;
  }

  /** ca.crt of the Secret, once a sync succeeded. */
  get caBundle(): string {
    return this.#caBundle;
  }

  /** Makes the Secret current (creating or rotating), then the caBundle; returns the serving pair. */
  sync(): Promise<CertificatePair> {
    // One at a time, so a slow older sync cannot hand out a certificate older than a newer one did.
    this.#inflight ??= this.#sync().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #sync(): Promise<CertificatePair> {
    const pki = await this.#syncSecret();
    this.#caBundle = pki.caBundle;
    await this.#syncCaBundle(pki.caBundle);
    if (this.#current?.cert !== pki.cert) {
      this.#current = { cert: pki.cert, key: pki.key };
      this.#opts.onCertificate?.(this.#current);
    }
    return this.#current;
  }

  /**
   * Syncs until it succeeds (retrying with backoff while the API server is away),
   * then keeps syncing every check interval until stop().
   */
  async start(): Promise<CertificatePair> {
    this.#abort = new AbortController();
    const signal = this.#abort.signal;
    for (let failures = 1; ; failures++) {
      try {
        const pair = await this.sync();
        this.#schedule();
        return pair;
      } catch (err) {
        this.#opts.logger.warn({ err }, 'webhook certificate: sync failed; retrying');
        await sleep(backoffDelay(failures, { baseMs: 500, maxMs: this.#intervalMs }), signal);
        if (signal.aborted)
          throw new WebhookCertificateError('stopped before the first certificate was loaded');
      }
    }
  }

  stop(): void {
    this.#abort.abort();
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (this.#abort.signal.aborted) return;
    this.#timer = setTimeout(() => void this.#tick(), this.#intervalMs);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    try {
      await this.sync();
    } catch (err) {
      // The certificate in use stays valid for a long while after renewal is due: retry next tick.
      this.#opts.logger.warn({ err }, 'webhook certificate: sync failed; retrying');
    } finally {
      this.#schedule();
    }
  }

  async #syncSecret(): Promise<StoredPki> {
    const { namespace, secretName: name, logger } = this.#opts;
    // Each lost race means another replica wrote a fresh PKI, which the next round adopts.
    for (let attempt = 0; attempt < 5; attempt++) {
      const secret = await this.#readSecret();
      const stored = secret === undefined ? undefined : fromSecret(secret);
      const next = await nextPki(stored, this.#policy, this.#now());
      // nextPki answers undefined only for a stored PKI that can stay.
      if (next === undefined) return stored as StoredPki;
      try {
        if (secret === undefined) {
          await this.#client.create(
            resourcePath({ group: '', version: 'v1', plural: 'secrets', namespace }),
            {
              apiVersion: 'v1',
              kind: 'Secret',
              metadata: { name, namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } },
              type: 'Opaque',
              data: secretData(next),
            },
          );
        } else {
          await this.#client.replace(this.#secretPath(), { ...secret, data: secretData(next) });
        }
      } catch (err) {
        if (!isConflict(err)) throw err;
        logger.debug({ secret: `${namespace}/${name}` }, 'webhook certificate: another replica wrote first');
        continue;
      }
      const info = certificateInfo(next.cert);
      logger.info(
        { secret: `${namespace}/${name}`, serial: info.serial, notAfter: info.notAfter.toISOString() },
        secret === undefined ? 'webhook certificate created' : 'webhook certificate rotated',
      );
      return next;
    }
    throw new WebhookCertificateError(
      `Secret ${namespace}/${name}: lost the race to write it 5 times in a row`,
    );
  }

  #secretPath(): string {
    const { namespace, secretName: name } = this.#opts;
    return resourcePath({ group: '', version: 'v1', plural: 'secrets', namespace, name });
  }

  #readSecret(): Promise<Secret | undefined> {
    return this.#client.get<Secret>(this.#secretPath());
  }

  async #syncCaBundle(bundle: string): Promise<void> {
    const name = this.#opts.webhookConfigName;
    const path = resourcePath({
      group: 'admissionregistration.k8s.io',
      version: 'v1',
      plural: 'mutatingwebhookconfigurations',
      name,
    });
    const config = await this.#client.get<WebhookConfiguration>(path);
    if (config === undefined) {
      // The installer creates it; until then there is nothing to keep in sync.
      if (!this.#warnedMissingConfig) {
        this.#opts.logger.warn({ webhookConfiguration: name }, 'webhook configuration not found; will retry');
        this.#warnedMissingConfig = true;
      }
      return;
    }
    this.#warnedMissingConfig = false;
    const want = Buffer.from(bundle, 'utf8').toString('base64');
    const ops: JsonPatchOperation[] = [];
    for (const [i, webhook] of (config.webhooks ?? []).entries()) {
      if (webhook.clientConfig.caBundle === want) continue;
      // The test guards against the installer reordering the webhooks meanwhile.
      ops.push({ op: 'test', path: `/webhooks/${i}/name`, value: webhook.name });
      ops.push({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: want });
    }
    if (ops.length === 0) return;
    await this.#client.patch(path, ops, 'json');
    this.#opts.logger.info(
      { webhookConfiguration: name, webhooks: ops.length / 2 },
      'webhook caBundle updated',
    );
  }

  #now(): number {
    return this.#opts.now?.() ?? Date.now();
  }
}
