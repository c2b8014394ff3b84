// The request path: check the request (request-checks.ts), route by Host, refuse
// what a reverse proxy must not forward, receive a small body (request-body.ts),
// then send the request to the origin through undici's dispatcher; the
// ProxyHandler (proxy-handler.ts) streams the answer back. A request to switch
// protocols (upgrade.ts) takes the same path to the origin.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CDN_LOOP, EJECTED } from './errors.ts';
import { forwardRequestHeaders } from './headers.ts';
import type { OriginRuntime } from './origin-runtime.ts';
import { ProxyHandler } from './proxy-handler.ts';
import { type PreparedBody, prepareBody } from './request-body.ts';
import {
  checkAgainstPolicy,
  checkRequest,
  localAnswer,
  type Refusal,
  type RequestHead,
} from './request-checks.ts';
import {
  type ForwardEnv,
  immediateFailure,
  type RequestContext,
  recordFailure,
  sendPlain,
  type UpgradeRequest,
} from './request-context.ts';
import { route } from './router.ts';

export type { FailureLog, ForwardEnv, UpgradeRequest } from './request-context.ts';
export { sendPlain } from './request-context.ts';

const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

/** Answers a refused request and counts it as the client's error. */
function refuseWith(env: ForwardEnv, res: ServerResponse, r: Refusal): void {
  env.clientError(r.reason);
  sendPlain(res, r.status, r.message, r.close === true ? { connection: 'close' } : {});
}

/**
 * The sidecar is the request's final recipient (OPTIONS *, or Max-Forwards: 0):
 * it answers for itself; the origin is not involved.
 */
function answerLocally(runtime: OriginRuntime, head: RequestHead, res: ServerResponse): void {
  const { contentType, body } = localAnswer(head);
  res.writeHead(200, {
    'content-length': Buffer.byteLength(body),
    ...(contentType === undefined ? {} : { 'content-type': contentType }),
  });
  res.end(body);
  runtime.metrics.answered(200);
}

/** A body over --max-request-body: 413, and the connection closes (the rest of the body is not read). */
const tooLarge = (max: number): Refusal => ({
  status: 413,
  reason: 'body_too_large',
  message: `Content Too Large: request body over ${max} bytes`,
  close: true,
});

/** Refuses an upgrade to protocols the Origin does not allow; returns the protocol to ask for otherwise. */
function upgradeProtocol(
  env: ForwardEnv,
  runtime: OriginRuntime,
  res: ServerResponse,
  upgrade: UpgradeRequest,
): string | undefined {
  const protocol = upgrade.select(runtime);
  if (protocol !== undefined) return protocol;
  env.clientError('upgrade');
  runtime.metrics.upgrade('not_allowed');
  sendPlain(
    res,
    501,
    `Not Implemented: protocol upgrade to "${upgrade.offered.slice(0, 64)}" is not allowed for this Origin (spec.upgrade.protocols)`,
  );
  return undefined;
}

/**
 * The checks before any origin is involved (request-checks.ts), routing by
 * Host, and the Origin's own policy: the Origin to forward to, or undefined
 * when the sidecar has answered the request itself.
 */
function admit(env: ForwardEnv, req: IncomingMessage, res: ServerResponse): OriginRuntime | undefined {
  const head: RequestHead = {
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    httpVersion: req.httpVersion,
    rawHeaders: req.rawHeaders,
  };
  const checked = checkRequest(head);
  if (checked !== undefined && checked !== 'options') {
    refuseWith(env, res, checked);
    return undefined;
  }
  const runtime = route(env.routes(), req.headers.host);
  if (runtime === undefined) {
    env.clientError('unknown_host');
    sendPlain(res, 421, 'Misdirected Request: no Origin on this port serves this Host');
    return undefined;
  }
  const policy = checked ?? checkAgainstPolicy(head, runtime.requestPolicy);
  if (policy === 'options' || policy === 'local') {
    answerLocally(runtime, head, res);
    return undefined;
  }
  if (policy !== undefined) {
    refuseWith(env, res, policy);
    return undefined;
  }
  if (Number(req.headers['content-length'] ?? 0) > env.maxBodyBytes) {
    refuseWith(env, res, tooLarge(env.maxBodyBytes));
    return undefined;
  }
  return runtime;
}

/**
 * Proxies one request. Never throws: every outcome is an answer to the client.
 * With `upgrade`, the origin is asked to switch protocols, and only its 101 opens a tunnel.
 */
export function forward(
  env: ForwardEnv,
  req: IncomingMessage,
  res: ServerResponse,
  upgrade?: UpgradeRequest,
): void {
  const started = performance.now();
  const incomingId = req.headers['x-request-id'];
  const requestId =
    typeof incomingId === 'string' && REQUEST_ID.test(incomingId) ? incomingId : env.nextRequestId();
  const runtime = admit(env, req, res);
  if (runtime === undefined) return;
  const protocol = upgrade === undefined ? undefined : upgradeProtocol(env, runtime, res, upgrade);
  if (upgrade !== undefined && protocol === undefined) return;

  const ctx: RequestContext = { env, req, res, runtime, requestId, started };
  if (upgrade !== undefined && protocol !== undefined) ctx.upgrade = { request: upgrade, protocol };
  runtime.health.onRequest();
  const fwd = forwardRequestHeaders(req.rawHeaders, {
    peer: req.socket.remoteAddress ?? '',
    trust: runtime.trust,
    proto: 'encrypted' in req.socket ? 'https' : 'http',
    ...(runtime.hostOverride === undefined ? {} : { hostOverride: runtime.hostOverride }),
    cdnId: runtime.cdnId,
    defaultHost: runtime.defaultHost,
    via: env.via,
    underscores: runtime.requestPolicy.underscoresInHeaders === 'Allow',
    method: req.method ?? 'GET',
  });
  if (fwd.loop) {
    recordFailure(ctx, immediateFailure('proxy_loop_detected', 'request', CDN_LOOP));
    return;
  }
  // Node leaves an upgrade request's body on the socket, for the protocol after the switch.
  const body =
    upgrade === undefined
      ? prepareBody(req, {
          bufferBytes: runtime.requestPolicy.bodyBufferBytes,
          maxBytes: env.maxBodyBytes,
          budget: env.bodyBudget,
        })
      : ({ kind: 'none' } as const);
  if (body instanceof Promise) void body.then((b) => dispatch(ctx, fwd.headers, b));
  else dispatch(ctx, fwd.headers, body);
}

/** Sends the request to the origin once its body is ready (received, or streaming). */
function dispatch(ctx: RequestContext, headers: string[], body: PreparedBody): void {
  const { env, req, res, runtime } = ctx;
  // The client left (or stopped) mid-body: there is no one to answer and nothing to send.
  if (body.kind === 'gone') return;
  if (body.kind === 'too-large') {
    refuseWith(env, res, tooLarge(env.maxBodyBytes));
    return;
  }
  const release = body.kind === 'none' ? undefined : body.release;
  const admission = runtime.outlier.admit();
  if (admission.kind === 'reject') {
    release?.();
    // Explained with the failure that ejected the origin.
    const underlying = runtime.health.lastConnectFailure;
    recordFailure(ctx, immediateFailure('destination_unavailable', 'connect', EJECTED, underlying));
    return;
  }
  const handler = new ProxyHandler(ctx, admission.kind === 'trial', release);
  res.once('close', () => handler.onClientClose());
  runtime.pool.dispatch(
    {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers,
      body: body.kind === 'none' ? null : body.body,
      ...(ctx.upgrade === undefined ? {} : { upgrade: ctx.upgrade.protocol }),
    },
    handler,
  );
}
