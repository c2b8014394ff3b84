// The admission webhook server over real TLS on loopback: what the API server (or
// anything else) gets back for good and bad AdmissionReviews, and certificate hot-swap.
import { Readable } from 'node:stream';
import pino from 'pino';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InjectionDecision } from '../../src/operator/injection.ts';
import {
  type CertificatePair,
  certificateInfo,
  generateCA,
  issueServingCertificate,
} from '../../src/operator/pki.ts';
import {
  type AdmissionRequest,
  MAX_REVIEW_BYTES,
  type ReviewOutcome,
  startWebhookServer,
  type WebhookServer,
} from '../../src/operator/webhook.ts';
import { servedSerial } from '../support/served-certificate.ts';

const PATCH = [{ op: 'add' as const, path: '/metadata/annotations', value: { a: 'b' } }];

let ca: CertificatePair;
let server: WebhookServer;
let agent: Agent;
const outcomes: ReviewOutcome[] = [];

function review(request: Partial<AdmissionRequest>, apiVersion = 'admission.k8s.io/v1'): string {
  return JSON.stringify({
    apiVersion,
    kind: 'AdmissionReview',
    request: {
      uid: 'b6a1c9e0-0000-4000-8000-000000000001',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      namespace: 'shop',
      operation: 'CREATE',
      object: { metadata: { generateName: 'web-', labels: { app: 'web' } }, spec: { containers: [] } },
      ...request,
    },
  });
}

async function post(body: string, opts: { path?: string; type?: string; method?: 'POST' | 'GET' } = {}) {
  const res = await request(`https://127.0.0.1:${server.port}${opts.path ?? '/mutate-pods?timeout=5s'}`, {
    method: opts.method ?? 'POST',
    body: opts.method === 'GET' ? null : body,
    headers: { 'content-type': opts.type ?? 'application/json' },
    dispatcher: agent,
  });
  const text = await res.body.text();
  return { status: res.statusCode, text, json: () => JSON.parse(text) };
}

beforeAll(async () => {
  const now = Date.now();
  ca = await generateCA({ validityMs: 3_600_000, now });
  const pair = await issueServingCertificate(ca, {
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    validityMs: 3_600_000,
    now,
  });
  server = await startWebhookServer({
    address: '127.0.0.1',
    port: 0,
    certificate: pair,
    logger: pino({ level: 'silent' }),
    decide: (req): InjectionDecision => {
      if (req.namespace === 'boom') throw new Error('decision bug');
      return req.namespace === 'shop'
        ? { inject: true, origins: ['web'], patch: PATCH }
        : { inject: false, reason: 'no-origin-selects' };
    },
    onReview: (o) => outcomes.push(o),
  });
  agent = new Agent({ connect: { ca: ca.cert }, pipelining: 0 });
});

afterAll(async () => {
  await agent?.close();
  await server?.close();
});

describe('the webhook server', () => {
  it('answers a pod CREATE with allowed, the request uid and the base64 JSON Patch', async () => {
    const res = await post(review({}));
    expect(res.status).toBe(200);
    const { apiVersion, kind, response } = res.json();
    expect({ apiVersion, kind }).toEqual({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
    expect(response).toMatchObject({
      uid: 'b6a1c9e0-0000-4000-8000-000000000001',
      allowed: true,
      patchType: 'JSONPatch',
    });
    expect(JSON.parse(Buffer.from(response.patch, 'base64').toString())).toEqual(PATCH);
    expect(outcomes.at(-1)).toMatchObject({ namespace: 'shop', result: 'injected', origins: ['web'] });
  });

  it('allows without a patch when the pod is not injected, and says why in the outcome', async () => {
    const { response } = (await post(review({ namespace: 'other' }))).json();
    expect(response).toEqual({ uid: 'b6a1c9e0-0000-4000-8000-000000000001', allowed: true });
    expect(outcomes.at(-1)?.result).toBe('no-origin-selects');
  });

  it.each([
    ['an UPDATE', { operation: 'UPDATE' as const }],
    ['another kind', { kind: { group: 'apps', version: 'v1', kind: 'Deployment' } }],
    ['a subresource', { subResource: 'ephemeralcontainers' }],
  ])('allows %s untouched without asking decide', async (_what, request) => {
    const { response } = (await post(review(request))).json();
    expect(response).toEqual({ uid: 'b6a1c9e0-0000-4000-8000-000000000001', allowed: true });
    expect(outcomes.at(-1)?.result).toBe('ignored');
  });

  it('never denies a pod, even when the decision throws', async () => {
    const { response } = (await post(review({ namespace: 'boom' }))).json();
    expect(response).toEqual({ uid: 'b6a1c9e0-0000-4000-8000-000000000001', allowed: true });
    expect(outcomes.at(-1)?.result).toBe('error');
  });

  it.each([
    ['malformed JSON', () => post('{"apiVersion":'), /not JSON/],
    [
      'a wrong content type',
      () => post(review({}), { type: 'text/plain' }),
      /content-type: must be application\/json/,
    ],
    [
      'admission.k8s.io/v1beta1',
      () => post(review({}, 'admission.k8s.io/v1beta1')),
      /admissionReviewVersions: \[v1\]/,
    ],
    [
      'a review without a request',
      () => post('{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}'),
      /uid, kind and operation/,
    ],
    ['a body over 4 MiB', () => post('x'.repeat(MAX_REVIEW_BYTES + 1)), /larger than 4194304 bytes/],
  ])('refuses %s with 400 and a message naming the problem', async (_what, send, message) => {
    const res = await send();
    expect(res.status).toBe(400);
    expect(res.text).toMatch(message);
  });

  it('refuses a chunked body once it passes 4 MiB, without reading the rest', async () => {
    async function* chunks() {
      for (let i = 0; i < 64; i++) yield Buffer.alloc(256 * 1024, 0x20);
    }
    const res = await request(`https://127.0.0.1:${server.port}/mutate-pods`, {
      method: 'POST',
      body: Readable.from(chunks()),
      headers: { 'content-type': 'application/json' },
      dispatcher: agent,
    }).catch((err: Error) => err);
    // The client may see the 400, or the connection closed under its upload.
    if (res instanceof Error) expect(res.message).toMatch(/closed|reset|EPIPE/i);
    else expect(res.statusCode).toBe(400);
  });

  it('answers 404 on another path and 405 to another method', async () => {
    expect((await post(review({}), { path: '/validate' })).status).toBe(404);
    expect((await post('', { method: 'GET' })).status).toBe(405);
  });

  it('presents a new certificate to new connections after setCertificate', async () => {
    const next = await issueServingCertificate(ca, {
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      validityMs: 3_600_000,
      now: Date.now(),
    });
    server.setCertificate(next);
    const serial = await servedSerial(server.port, ca.cert);
    expect(serial.toUpperCase()).toBe(certificateInfo(next.cert).serial.toUpperCase());
    expect((await post(review({}))).status).toBe(200);
  });
});
