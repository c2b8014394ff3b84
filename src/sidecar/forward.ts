// The request path: route by Host, refuse what a reverse proxy must not forward,
// then stream the request to the origin through undici's dispatcher and the
// response back, tracking the phase exactly: until undici starts writing the
// request (onRequestStart) every failure is a connection failure (531); after it,
// a failure before the response starts is the origin not answering (536).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Phase } from '../api/causes.ts';
import { classifyError, isConnectPhase } from '../upstream/classify.ts';
import { ResponseTimeoutError, UpstreamConnectError } from '../upstream/errors.ts';
import type { Failure, RawError } from '../upstream/failure.ts';
import { buildErrorResponse } from './error-response.ts';
import { BodyTooLargeError, CDN_LOOP, ClientGoneError, EJECTED } from './errors.ts';
import { forwardRequestHeaders, forwardResponseHeaders } from './headers.ts';
import type { OriginRuntime } from './origin-runtime.ts';
import { type PortRoutes, route } from './router.ts';

export type FailureLog = (entry: Record<string, unknown>, msg: string) => void;

export interface ForwardEnv {
  readonly routes: () => PortRoutes<OriginRuntime> | undefined;
  readonly maxBodyBytes: number;
  readonly via: string;
  readonly logFailure: FailureLog;
  readonly clientError: (reason: string) => void;
  readonly nextRequestId: () => string;
}

const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

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

/** Counts a streamed request body and fails it past the limit (413 if nothing was answered yet). */
function limitBody(req: IncomingMessage, max: number): Transform {
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > max) cb(new BodyTooLargeError(max));
      else cb(null, chunk);
    },
  });
  req.pipe(counter);
  return counter;
}

/**
 * Refuses what a reverse proxy must not forward. Returns true if the request was
 * answered. (CONNECT never gets here: the listener answers it.)
 */
function refuse(env: ForwardEnv, req: IncomingMessage, res: ServerResponse, url: string): boolean {
  if (!url.startsWith('/') && !(url === '*' && req.method === 'OPTIONS')) {
    env.clientError('absolute_form');
    sendPlain(
      res,
      400,
      'Bad Request: absolute-form request targets are refused: originguard only forwards to its declared origin',
    );
    return true;
  }
  if (req.headers.upgrade !== undefined) {
    env.clientError('upgrade');
    sendPlain(
      res,
      501,
      `Not Implemented: protocol upgrade to "${String(req.headers.upgrade).slice(0, 32)}" is not supported`,
    );
    return true;
  }
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
  // A fast-failed request counts under the cause that got the origin ejected.
  rt.metrics.failed((failure.underlying ?? failure).cause, failure.phase);
  // A loop is this proxy chain's configuration, not the origin's health.
  if (failure.cause !== 'proxy_loop_detected') {
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

/** Proxies one request. Never throws: every outcome is an answer to the client. */
export function forward(env: ForwardEnv, req: IncomingMessage, res: ServerResponse): void {
  const started = performance.now();
  const incomingId = req.headers['x-request-id'];
  const requestId =
    typeof incomingId === 'string' && REQUEST_ID.test(incomingId) ? incomingId : env.nextRequestId();
  const runtime = route(env.routes(), req.headers.host);
  if (runtime === undefined) {
    env.clientError('unknown_host');
    sendPlain(res, 421, 'Misdirected Request: no Origin on this port serves this Host');
    return;
  }
  const url = req.url ?? '/';
  if (refuse(env, req, res, url)) return;

  const ctx: RequestContext = { env, req, res, runtime, requestId, started };
  runtime.health.onRequest();
  const fwd = forwardRequestHeaders(req.rawHeaders, {
    clientAddress: req.socket.remoteAddress ?? 'unknown',
    proto: 'encrypted' in req.socket ? 'https' : 'http',
    ...(runtime.hostOverride === undefined ? {} : { hostOverride: runtime.hostOverride }),
    cdnId: runtime.cdnId,
    defaultHost: runtime.defaultHost,
    via: env.via,
  });
  if (fwd.loop) {
    recordFailure(ctx, immediateFailure('proxy_loop_detected', 'request', CDN_LOOP));
    return;
  }

  const admission = runtime.outlier.admit();
  if (admission.kind === 'reject') {
    // Explained with the failure that ejected the origin.
    const underlying = runtime.health.lastConnectFailure;
    recordFailure(ctx, immediateFailure('destination_unavailable', 'connect', EJECTED, underlying));
    return;
  }

  const hasBody =
    req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  const body = hasBody
    ? req.headers['content-length'] === undefined
      ? limitBody(req, env.maxBodyBytes)
      : req
    : null;
  const handler = new ProxyHandler(ctx, admission.kind === 'trial');
  res.once('close', () => handler.onClientClose());
  runtime.pool.dispatch({ method: req.method ?? 'GET', path: url, headers: fwd.headers, body }, handler);
}

/** undici dispatch handler streaming the origin's answer to the client. */
class ProxyHandler implements Dispatcher.DispatchHandler {
  #phase: Phase = 'connect';
  #controller: Dispatcher.DispatchController | undefined;
  #timer: NodeJS.Timeout | undefined;
  #clientGone = false;
  #finished = false;
  readonly #ctx: RequestContext;
  readonly #trial: boolean;

  constructor(ctx: RequestContext, trial: boolean) {
    this.#ctx = ctx;
    this.#trial = trial;
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
    _headers: Record<string, string | string[]>,
    statusMessage?: string,
  ): void {
    if (statusCode < 200) return;
    clearTimeout(this.#timer);
    this.#phase = 'response';
    const { res, runtime, env, started } = this.#ctx;
    const raw = (controller as unknown as { rawHeaders?: (Buffer | string)[] }).rawHeaders ?? [];
    res.writeHead(statusCode, statusMessage || undefined, forwardResponseHeaders(raw, env.via));
    runtime.metrics.requestDuration.observe((performance.now() - started) / 1000);
    runtime.metrics.answered(statusCode);
    runtime.health.onReachable();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const res = this.#ctx.res;
    if (!res.write(chunk)) {
      controller.pause();
      res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.#finished = true;
    clearTimeout(this.#timer);
    this.#ctx.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#finished = true;
    clearTimeout(this.#timer);
    const { runtime } = this.#ctx;
    if (this.#clientGone || err instanceof ClientGoneError) {
      if (this.#trial && this.#phase === 'connect') runtime.outlier.onTrialAbandoned();
      return;
    }
    if (err instanceof BodyTooLargeError) {
      this.#ctx.env.clientError('body_too_large');
      sendPlain(this.#ctx.res, 413, 'Content Too Large: request body over the limit', {
        connection: 'close',
      });
      return;
    }
    const failure = this.#classify(err);
    if (isConnectPhase(failure.phase) && failure.cause !== 'proxy_internal_error') {
      runtime.outlier.onConnectFailure(this.#trial, failure.cause);
    }
    recordFailure(this.#ctx, failure);
  }

  #classify(err: Error): Failure {
    if (err instanceof UpstreamConnectError) return err.failure;
    const elapsedMs = performance.now() - this.#ctx.started;
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
