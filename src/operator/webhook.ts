// The mutating admission webhook's HTTPS server. It never denies a pod: every
// review is answered allowed, with the injection patch when decideInjection says
// so, because an injector outage or bug must not stop pod creation (Kyverno's and
// Istio's fail-closed outages). Certificates are hot-swapped as they rotate.
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Pod } from '../kube/objects.ts';
import { BadReviewError } from './errors.ts';
import type { InjectionDecision, SkipReason } from './injection.ts';
import type { CertificatePair } from './pki.ts';

export const MUTATE_PODS_PATH = '/mutate-pods';
/** Far above any real pod; a larger body is not a pod the API server sent. */
export const MAX_REVIEW_BYTES = 4 * 1024 * 1024;
const REVIEW_API_VERSION = 'admission.k8s.io/v1';

/** The admission.k8s.io/v1 AdmissionRequest fields the webhook reads. */
export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
  /** Set for namespaced objects, even when the pod itself carries no namespace yet. */
  namespace?: string;
  name?: string;
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  object?: unknown;
  dryRun?: boolean;
}

/** What became of one review; for metrics. */
export interface ReviewOutcome {
  uid: string;
  namespace: string;
  /** `injected`, a skip reason, `ignored` (not a pod CREATE) or `error` (decide threw: allowed unpatched). */
  result: 'injected' | SkipReason | 'ignored' | 'error';
  origins: readonly string[];
  /** From the request reaching the handler (headers read) to the response written: body, decision, patch. */
  durationMs: number;
}

export interface WebhookServerOptions {
  address: string;
  /** 0 picks a free port. */
  port: number;
  certificate: CertificatePair;
  decide: (request: AdmissionRequest) => InjectionDecision | Promise<InjectionDecision>;
  logger: Logger;
  onReview?: (outcome: ReviewOutcome) => void;
}

export interface WebhookServer {
  readonly port: number;
  /** Serves `pair` to new connections from now on. */
  setCertificate(pair: CertificatePair): void;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_REVIEW_BYTES) {
      reject(new BadReviewError(400, `request body: larger than ${MAX_REVIEW_BYTES} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REVIEW_BYTES) {
        reject(new BadReviewError(400, `request body: larger than ${MAX_REVIEW_BYTES} bytes`));
        req.pause();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseReview(req: IncomingMessage, body: Buffer): AdmissionRequest {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new BadReviewError(400, `content-type: must be application/json, got "${type}"`);
  }
  let review: { apiVersion?: unknown; kind?: unknown; request?: Partial<AdmissionRequest> };
  try {
    review = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new BadReviewError(400, `request body: not JSON (${(err as Error).message})`);
  }
  if (review === null || typeof review !== 'object')
    throw new BadReviewError(400, 'request body: not an object');
  if (review.apiVersion !== REVIEW_API_VERSION || review.kind !== 'AdmissionReview') {
    throw new BadReviewError(
      400,
      `apiVersion/kind: must be ${REVIEW_API_VERSION} AdmissionReview, got ${String(review.apiVersion)} ${String(review.kind)}; set admissionReviewVersions: [v1]`,
    );
  }
  const r = review.request;
  if (typeof r?.uid !== 'string' || typeof r.kind !== 'object' || typeof r.operation !== 'string') {
    throw new BadReviewError(400, 'request: must carry uid, kind and operation');
  }
  return r as AdmissionRequest;
}

const isPodCreate = (r: AdmissionRequest) =>
  r.operation === 'CREATE' &&
  r.kind.group === '' &&
  r.kind.kind === 'Pod' &&
  (r.subResource ?? '') === '' &&
  r.object !== null &&
  typeof r.object === 'object';

function respond(res: ServerResponse, status: number, body: string, type: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function review(
  opts: WebhookServerOptions,
  request: AdmissionRequest,
): Promise<{ response: object; outcome: Omit<ReviewOutcome, 'durationMs'> }> {
  const namespace = request.namespace ?? '';
  let decision: InjectionDecision | undefined;
  let result: ReviewOutcome['result'] = 'ignored';
  if (isPodCreate(request)) {
    try {
      decision = await opts.decide(request);
      result = decision.inject ? 'injected' : decision.reason;
    } catch (err) {
      // Never deny because of our own bug: the pod is created without the sidecar.
      result = 'error';
      opts.logger.error(
        { err, uid: request.uid, namespace },
        'injection decision failed; pod allowed unpatched',
      );
    }
  }
  const pod = (request.object ?? {}) as Pod;
  const podName = pod.metadata?.name ?? pod.metadata?.generateName ?? request.name ?? '';
  const origins = decision?.inject ? decision.origins : [];
  const fields = { uid: request.uid, namespace, pod: podName, result, origins };
  if (decision?.inject) opts.logger.info(fields, 'sidecar injected');
  else opts.logger.debug(fields, 'pod admitted without injection');
  const patch = decision?.inject
    ? { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(decision.patch)).toString('base64') }
    : {};
  return {
    response: {
      apiVersion: REVIEW_API_VERSION,
      kind: 'AdmissionReview',
      response: { uid: request.uid, allowed: true, ...patch },
    },
    outcome: { uid: request.uid, namespace, result, origins },
  };
}

async function handle(opts: WebhookServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now();
  const path = (req.url ?? '').split('?')[0];
  if (path !== MUTATE_PODS_PATH) {
    respond(res, 404, `not found: ${path}; the webhook serves POST ${MUTATE_PODS_PATH}\n`, 'text/plain');
    return;
  }
  if (req.method !== 'POST') {
    res.setHeader('allow', 'POST');
    respond(res, 405, `method ${req.method}: ${MUTATE_PODS_PATH} takes POST\n`, 'text/plain');
    return;
  }
  try {
    const request = parseReview(req, await readBody(req));
    const { response, outcome } = await review(opts, request);
    respond(res, 200, JSON.stringify(response), 'application/json');
    opts.onReview?.({ ...outcome, durationMs: performance.now() - started });
  } catch (err) {
    if (!(err instanceof BadReviewError)) throw err;
    opts.logger.warn({ status: err.status, reason: err.message }, 'admission review refused');
    // Unread body left behind: close rather than parse it as the next request.
    res.setHeader('connection', 'close');
    respond(res, err.status, `${err.message}\n`, 'text/plain');
  }
}

export async function startWebhookServer(opts: WebhookServerOptions): Promise<WebhookServer> {
  const server = https.createServer(
    {
      cert: opts.certificate.cert,
      key: opts.certificate.key,
      minVersion: 'TLSv1.2',
      // The API server's webhook timeout is at most 30 s; nothing legitimate is slower.
      requestTimeout: 30_000,
      headersTimeout: 10_000,
    },
    (req, res) => {
      handle(opts, req, res).catch((err: unknown) => {
        opts.logger.error({ err }, 'admission review failed');
        if (!res.headersSent) respond(res, 500, 'internal error\n', 'text/plain');
        else res.destroy();
      });
    },
  );
  server.on('tlsClientError', (err) => opts.logger.debug({ err }, 'webhook TLS handshake failed'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: opts.address, port: opts.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  opts.logger.info({ address: opts.address, port }, 'webhook server listening');
  return {
    port,
    setCertificate(pair: CertificatePair): void {
      server.setSecureContext({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' });
    },
    close(): Promise<void> {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
