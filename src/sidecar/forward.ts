// The request path: route by Host, refuse what a reverse proxy must not forward,
// then stream the request to the origin through undici's dispatcher and the
// response back, tracking the phase exactly: until undici starts writing the
// request (onRequestStart) every failure is a connection failure (531); after it,
// a failure before the response starts is the origin not answering (536).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Phase } from '../api/causes.ts';
import { classifyError, type Failure, isConnectPhase, type RawError } from './classify.ts';
import { UpstreamConnectError } from './connector.ts';
import { buildErrorResponse } from './error-response.ts';
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

class ResponseTimeoutError extends Error {
  readonly code = 'OG_RESPONSE_TIMEOUT';
  constructor(ms: number) {
    super(`no response from the origin within ${ms}ms`);
  }
}

class ClientGoneError extends Error {
  readonly code = 'OG_CLIENT_GONE';
}

class BodyTooLargeError extends Error {
  readonly code = 'OG_BODY_TOO_LARGE';
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

function sendFailure(
  res: ServerResponse,
  req: IncomingMessage,
  runtime: OriginRuntime,
  failure: Failure,
  requestId: string,
): number {
  const answer = buildErrorResponse(failure, req.headers.accept, { ...runtime.errorOptions, requestId });
  if (res.headersSent) {
    res.destroy();
    return answer.statusCode;
  }
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
      if (seen > max) cb(new BodyTooLargeError(`request body larger than ${max} bytes`));
      else cb(null, chunk);
    },
  });
  req.pipe(counter);
  return counter;
}

/** Refuses what a reverse proxy must not forward. Returns true if the request was answered. */
function refuse(env: ForwardEnv, req: IncomingMessage, res: ServerResponse, url: string): boolean {
  if (req.method === 'CONNECT') {
    env.clientError('connect_method');
    sendPlain(res, 405, 'Method Not Allowed: originguard is a reverse proxy, not a forward proxy', {
      allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS',
    });
    return true;
  }
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

/** Answers at once while the origin is ejected, explaining with the failure that ejected it. */
function failFast(
  req: IncomingMessage,
  res: ServerResponse,
  runtime: OriginRuntime,
  requestId: string,
): void {
  const underlying = runtime.health.lastConnectFailure;
  const failure: Failure = {
    cause: 'destination_unavailable',
    phase: 'connect',
    code: 'OG_EJECTED',
    attempts: [],
    elapsedMs: 0,
    ...(underlying === undefined ? {} : { underlying }),
  };
  const status = sendFailure(res, req, runtime, failure, requestId);
  runtime.health.onFailure(failure, status, true);
  runtime.metrics.answered(status);
  runtime.metrics.failed(underlying?.cause ?? failure.cause, 'connect');
}

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
    const failure: Failure = {
      cause: 'proxy_loop_detected',
      phase: 'request',
      code: 'CDN_LOOP',
      attempts: [],
      elapsedMs: 0,
    };
    const status = sendFailure(res, req, runtime, failure, requestId);
    runtime.metrics.answered(status);
    runtime.metrics.failed(failure.cause, failure.phase);
    env.logFailure(
      { origin: runtime.key, requestId, cause: failure.cause, status },
      'request loop detected (CDN-Loop)',
    );
    return;
  }

  const admission = runtime.outlier.admit();
  if (admission.kind === 'reject') {
    failFast(req, res, runtime, requestId);
    return;
  }

  const hasBody =
    req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  const body = hasBody
    ? req.headers['content-length'] === undefined
      ? limitBody(req, env.maxBodyBytes)
      : req
    : null;
  const handler = new ProxyHandler(env, req, res, runtime, requestId, started, admission.kind === 'trial');
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
  readonly #env: ForwardEnv;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #runtime: OriginRuntime;
  readonly #requestId: string;
  readonly #started: number;
  readonly #trial: boolean;

  constructor(
    env: ForwardEnv,
    req: IncomingMessage,
    res: ServerResponse,
    runtime: OriginRuntime,
    requestId: string,
    started: number,
    trial: boolean,
  ) {
    this.#env = env;
    this.#req = req;
    this.#res = res;
    this.#runtime = runtime;
    this.#requestId = requestId;
    this.#started = started;
    this.#trial = trial;
  }

  onClientClose(): void {
    if (this.#finished) return;
    this.#clientGone = true;
    this.#controller?.abort(new ClientGoneError('client closed the connection'));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    this.#phase = 'request';
    // A connection is established: whatever happens next, the origin was reachable.
    this.#runtime.outlier.onSuccess();
    if (this.#runtime.health.ejected) this.#setEjected(false);
    if (this.#clientGone) controller.abort(new ClientGoneError('client closed the connection'));
  }

  onRequestSent(): void {
    const ms = this.#runtime.responseTimeoutMs;
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
    const res = this.#res;
    const raw = (controller as unknown as { rawHeaders?: (Buffer | string)[] }).rawHeaders ?? [];
    res.writeHead(statusCode, statusMessage || undefined, forwardResponseHeaders(raw, this.#env.via));
    this.#runtime.metrics.requestDuration.observe((performance.now() - this.#started) / 1000);
    this.#runtime.metrics.answered(statusCode);
    this.#runtime.health.onReachable();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#res.write(chunk)) {
      controller.pause();
      this.#res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.#finished = true;
    clearTimeout(this.#timer);
    this.#res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#finished = true;
    clearTimeout(this.#timer);
    if (this.#clientGone || err instanceof ClientGoneError) {
      if (this.#trial && this.#phase === 'connect') this.#runtime.outlier.onTrialAbandoned();
      return;
    }
    if (err instanceof BodyTooLargeError) {
      this.#env.clientError('body_too_large');
      sendPlain(this.#res, 413, 'Content Too Large: request body over the limit', { connection: 'close' });
      return;
    }
    const failure = this.#classify(err);
    const connectPhase = isConnectPhase(failure.phase);
    if (connectPhase && failure.cause !== 'proxy_internal_error') {
      if (this.#runtime.outlier.onConnectFailure(this.#trial)) this.#setEjected(true);
    }
    const rt = this.#runtime;
    let statusCode: number;
    if (this.#res.headersSent) {
      // The origin's status line is already out (and counted): all we can do is cut the body.
      statusCode = this.#res.statusCode;
      this.#res.destroy();
    } else {
      statusCode = sendFailure(this.#res, this.#req, rt, failure, this.#requestId);
      rt.metrics.answered(statusCode);
      rt.metrics.requestDuration.observe((performance.now() - this.#started) / 1000);
    }
    rt.metrics.failed(failure.cause, failure.phase);
    rt.health.onFailure(failure, statusCode, connectPhase);
    this.#env.logFailure(
      {
        origin: rt.key,
        requestId: this.#requestId,
        status: statusCode,
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
        elapsedMs: Math.round(performance.now() - this.#started),
        method: this.#req.method,
        path: this.#req.url,
      },
      `upstream ${failure.cause}`,
    );
  }

  #classify(err: Error): Failure {
    if (err instanceof UpstreamConnectError) return err.failure;
    const elapsedMs = performance.now() - this.#started;
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

  #setEjected(ejected: boolean): void {
    this.#runtime.health.ejected = ejected;
    this.#runtime.metrics.setEjected(ejected);
    if (ejected) {
      this.#env.logFailure(
        { origin: this.#runtime.key, cause: this.#runtime.health.lastConnectFailure?.cause },
        'origin ejected: failing fast while probing',
      );
    }
  }
}
