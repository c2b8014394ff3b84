// The request path: check the request (request-checks.ts), route by Host, refuse
// what a reverse proxy must not forward, receive a small body (request-body.ts),
// then send the request to the origin through undici's dispatcher and stream the
// response back, tracking the phase exactly: until undici starts writing the
// request (onRequestStart) every failure is a connection failure (531); after it,
// a failure before the response starts is the origin not answering (536). Once
// it has started, timeouts.streamIdle bounds each silence in the body. A
// request to switch protocols (upgrade.ts) takes the same path to the origin.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Phase } from '../api/causes.ts';
import { classifyError, isConnectPhase } from '../upstream/classify.ts';
import {
  InvalidResponseError,
  ResponseTimeoutError,
  StreamIdleTimeoutError,
  UpstreamConnectError,
} from '../upstream/errors.ts';
import type { Failure, RawError } from '../upstream/failure.ts';
import { clientFault, isOriginFailure } from './blame.ts';
import { buildErrorResponse } from './error-response.ts';
import { CDN_LOOP, ClientGoneError, EJECTED } from './errors.ts';
import { forwardRequestHeaders, forwardResponseHeaders } from './headers.ts';
import type { OriginRuntime } from './origin-runtime.ts';
import { type BodyBudget, type PreparedBody, prepareBody } from './request-body.ts';
import {
  checkAgainstPolicy,
  checkRequest,
  localAnswer,
  type Refusal,
  type RequestHead,
} from './request-checks.ts';
import { reasonPhrase, sendInformational, unsupportedTransferCoding } from './response-head.ts';
import { type PortRoutes, route } from './router.ts';

export type FailureLog = (entry: Record<string, unknown>, msg: string) => void;

export interface ForwardEnv {
  readonly routes: () => PortRoutes<OriginRuntime> | undefined;
  readonly maxBodyBytes: number;
  /** Memory for request bodies received before forwarding, shared by every Origin of the sidecar. */
  readonly bodyBudget: BodyBudget;
  readonly via: string;
  readonly logFailure: FailureLog;
  readonly clientError: (reason: string) => void;
  readonly nextRequestId: () => string;
}

const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

/** A request that asks to switch protocols (Upgrade): what forward() needs from upgrade.ts. */
export interface UpgradeRequest {
  /** The Upgrade value to ask the origin for, from the client's offer and the Origin's policy; undefined: refuse. */
  readonly select: (runtime: OriginRuntime) => string | undefined;
  /** The client's Upgrade header, for the refusal's message. */
  readonly offered: string;
  /**
   * The origin answered 101 with these raw headers: the tunnel takes the
   * origin's socket from here. A failure means the switch was not acceptable.
   */
  readonly onSwitch: (
    runtime: OriginRuntime,
    requested: string,
    rawHeaders: readonly (Buffer | string)[],
    origin: Duplex,
  ) => Failure | undefined;
}

/** Answers a request the proxy refuses before any origin is involved. */
export function sendPlain(
  res: ServerResponse,
  status: number,
  message: string,
  extra: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${status} ${message}\n`;
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...extra,
  });
  res.end(body);
}

/** One proxied request: what each step of its path needs. */
interface RequestContext {
  readonly env: ForwardEnv;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly runtime: OriginRuntime;
  readonly requestId: string;
  /** performance.now() when the request arrived. */
  readonly started: number;
  upgrade?: { readonly request: UpgradeRequest; readonly protocol: string };
}

/** Answers the client with the failure's status, Proxy-Status and negotiated body. */
function sendFailure({ req, res, runtime, requestId }: RequestContext, failure: Failure): number {
  const answer = buildErrorResponse(failure, req.headers.accept, { ...runtime.errorOptions, requestId });
  res.writeHead(answer.statusCode, answer.statusMessage, {
    ...answer.headers,
    'content-length': Buffer.byteLength(answer.body),
  });
  res.end(req.method === 'HEAD' ? undefined : answer.body);
  return answer.statusCode;
}

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

/**
 * Refuses what a reverse proxy must not forward to this Origin. Returns true if
 * the request was answered. (CONNECT never gets here: the listener answers it.)
 */
function refuse(env: ForwardEnv, req: IncomingMessage, res: ServerResponse): boolean {
  if (Number(req.headers['content-length'] ?? 0) > env.maxBodyBytes) {
    env.clientError('body_too_large');
    sendPlain(res, 413, `Content Too Large: request body over ${env.maxBodyBytes} bytes`, {
      connection: 'close',
    });
    return true;
  }
  return false;
}

/**
 * The one place a failed request is accounted for: the answer (or, once the
 * origin's status line is out, a cut connection), metrics, health, the log line.
 */
function recordFailure(ctx: RequestContext, failure: Failure): void {
  const { res, runtime: rt } = ctx;
  if (ctx.upgrade !== undefined) rt.metrics.upgrade('failed');
  let status: number;
  if (res.headersSent) {
    // The origin's status line is already out (and counted): all we can do is cut the body.
    status = res.statusCode;
    res.destroy();
  } else {
    status = sendFailure(ctx, failure);
    rt.metrics.answered(status);
    rt.metrics.requestDuration.observe((performance.now() - ctx.started) / 1000);
  }
  // The request's own CDN-Loop header says it loops, and a client can write one: a client error.
  if (failure.cause === 'proxy_loop_detected') ctx.env.clientError('loop_detected');
  // A fast-failed request counts under the cause that got the origin ejected.
  else rt.metrics.failed((failure.underlying ?? failure).cause, failure.phase);
  if (isOriginFailure(failure.cause)) {
    rt.health.onFailure(failure, status, isConnectPhase(failure.phase));
  }
  // While ejected, the ejection was logged once; each fast-failed request is not.
  if (failure.cause !== 'destination_unavailable') logFailure(ctx, failure, status);
}

function logFailure(ctx: RequestContext, failure: Failure, status: number): void {
  ctx.env.logFailure(
    {
      origin: ctx.runtime.key,
      requestId: ctx.requestId,
      status,
      cause: failure.cause,
      phase: failure.phase,
      code: failure.code,
      errno: failure.errno,
      rcode: failure.rcode,
      alertId: failure.alertId,
      address: failure.address,
      attempts: failure.attempts.map(
        (a) => `${a.address}:${a.port} ${a.phase} ${a.cause} ${a.code} ${Math.round(a.elapsedMs)}ms`,
      ),
      elapsedMs: Math.round(performance.now() - ctx.started),
      method: ctx.req.method,
      path: ctx.req.url,
    },
    failure.cause === 'proxy_loop_detected'
      ? 'request loop detected (CDN-Loop)'
      : `upstream ${failure.cause}`,
  );
}

/** A failure decided before any connection is tried (ejected origin, loop). */
const immediateFailure = (
  cause: Failure['cause'],
  phase: Phase,
  code: string,
  underlying?: Failure,
): Failure => ({
  cause,
  phase,
  code,
  attempts: [],
  elapsedMs: 0,
  ...(underlying === undefined ? {} : { underlying }),
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
  return refuse(env, req, res) ? undefined : runtime;
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
    env.clientError('body_too_large');
    sendPlain(res, 413, `Content Too Large: request body over ${env.maxBodyBytes} bytes`, {
      connection: 'close',
    });
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

const rawHeadersOf = (controller: Dispatcher.DispatchController): (Buffer | string)[] =>
  (controller as unknown as { rawHeaders?: (Buffer | string)[] }).rawHeaders ?? [];

/** undici dispatch handler streaming the origin's answer to the client. */
class ProxyHandler implements Dispatcher.DispatchHandler {
  #phase: Phase = 'connect';
  #controller: Dispatcher.DispatchController | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Stream idle: armed once the response started; the last chunk's time decides when it fires. */
  #idleTimer: NodeJS.Timeout | undefined;
  #lastChunk = 0;
  /** Waiting for the client to read: a silence then is the client's, not the origin's. */
  #paused = false;
  #clientGone = false;
  #finished = false;
  readonly #ctx: RequestContext;
  readonly #trial: boolean;
  readonly #release: (() => void) | undefined;

  constructor(ctx: RequestContext, trial: boolean, release: (() => void) | undefined) {
    this.#ctx = ctx;
    this.#trial = trial;
    this.#release = release;
  }

  onClientClose(): void {
    if (this.#finished) return;
    this.#clientGone = true;
    this.#controller?.abort(new ClientGoneError());
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    this.#phase = 'request';
    // A connection is established: whatever happens next, the origin was reachable.
    this.#ctx.runtime.outlier.onSuccess();
    if (this.#clientGone) controller.abort(new ClientGoneError());
  }

  onRequestSent(): void {
    const ms = this.#ctx.runtime.responseTimeoutMs;
    this.#timer = setTimeout(() => this.#controller?.abort(new ResponseTimeoutError(ms)), ms);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[]>,
    statusMessage?: string,
  ): void {
    const { req, res, runtime, env } = this.#ctx;
    const raw = rawHeadersOf(controller);
    if (statusCode < 200) {
      sendInformational(req, res, statusCode, forwardResponseHeaders(raw, env.via));
      return;
    }
    clearTimeout(this.#timer);
    this.#phase = 'response';
    const coding = unsupportedTransferCoding(headers['transfer-encoding']);
    if (coding !== undefined) {
      throw new InvalidResponseError('http_response_transfer_coding', `transfer coding "${coding}"`);
    }
    try {
      res.writeHead(statusCode, reasonPhrase(statusMessage), forwardResponseHeaders(raw, env.via));
    } catch (err) {
      // Node refuses to send a header llhttp let through: nothing has reached the client yet.
      throw new InvalidResponseError('http_protocol_error', (err as Error).message);
    }
    // The origin declined the upgrade: its answer goes to the client, whose connection stays HTTP.
    if (this.#ctx.upgrade !== undefined) runtime.metrics.upgrade('origin_refused');
    this.#answered(statusCode);
    this.#lastChunk = performance.now();
    this.#armIdle(runtime.streamIdleMs);
  }

  onRequestUpgrade(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    _headers: Record<string, string | string[]>,
    socket: Duplex,
  ): void {
    this.#finished = true;
    clearTimeout(this.#timer);
    this.#phase = 'response';
    const { runtime, upgrade } = this.#ctx;
    const raw = rawHeadersOf(controller);
    // undici only calls this for a request sent with `upgrade`, so `upgrade` is set.
    const failure = upgrade?.request.onSwitch(runtime, upgrade.protocol, raw, socket);
    if (failure !== undefined) {
      socket.destroy();
      runtime.health.onReachable();
      recordFailure(this.#ctx, failure);
      return;
    }
    runtime.metrics.upgrade('switched');
    this.#answered(statusCode);
  }

  /** The origin answered (a response or a 101): accounted once. */
  #answered(statusCode: number): void {
    const { runtime, started } = this.#ctx;
    runtime.metrics.requestDuration.observe((performance.now() - started) / 1000);
    runtime.metrics.answered(statusCode);
    runtime.health.onReachable();
  }

  /** Fires streamIdleMs after the last chunk (re-armed lazily, so a chunk costs no timer work). */
  #armIdle(ms: number): void {
    const left = this.#lastChunk + ms - performance.now();
    this.#idleTimer = setTimeout(
      () => {
        if (this.#finished) return;
        if (this.#lastChunk + ms - performance.now() > 1) this.#armIdle(ms);
        else if (this.#paused) {
          // The client stopped reading: end its stream, counted as nothing of the origin's.
          this.#ctx.res.destroy();
          this.#controller?.abort(new ClientGoneError());
        } else this.#controller?.abort(new StreamIdleTimeoutError(ms));
      },
      Math.max(1, left),
    );
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const res = this.#ctx.res;
    this.#lastChunk = performance.now();
    if (!res.write(chunk) && !this.#paused) {
      this.#paused = true;
      controller.pause();
      res.once('drain', () => {
        this.#paused = false;
        this.#lastChunk = performance.now();
        controller.resume();
      });
    }
  }

  onResponseEnd(): void {
    this.#finish();
    this.#ctx.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, err: Error): void {
    this.#finish();
    const { runtime, env, res } = this.#ctx;
    const fault = clientFault(err, this.#phase, this.#clientGone);
    if (fault !== undefined) {
      // Nothing the client did says anything about the origin.
      if (this.#trial && this.#phase === 'connect') runtime.outlier.onTrialAbandoned();
      if (fault.kind === 'gone') {
        res.destroy();
        return;
      }
      env.clientError(fault.reason);
      sendPlain(res, fault.status, fault.message, { connection: 'close' });
      return;
    }
    const failure = this.#classify(err);
    if (isConnectPhase(failure.phase) && failure.cause !== 'proxy_internal_error') {
      runtime.outlier.onConnectFailure(this.#trial, failure.cause);
    }
    recordFailure(this.#ctx, failure);
  }

  #finish(): void {
    this.#finished = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#idleTimer);
    this.#release?.();
  }

  #classify(err: Error): Failure {
    if (err instanceof UpstreamConnectError) return err.failure;
    const elapsedMs = performance.now() - this.#ctx.started;
    if (err instanceof InvalidResponseError) {
      return { cause: err.problem, phase: 'response', code: err.code, attempts: [], elapsedMs };
    }
    if (this.#phase === 'connect') {
      // Not from our connector: the pool was closed or undici refused the request.
      return {
        cause: 'proxy_internal_error',
        phase: 'connect',
        code: (err as RawError).code?.toString() ?? err.name,
        attempts: [],
        elapsedMs,
      };
    }
    const c = classifyError(err as RawError, this.#phase);
    return { ...c, phase: this.#phase, attempts: [], elapsedMs };
  }
}
