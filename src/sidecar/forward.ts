// The request path: route by Host, refuse what a reverse proxy must not forward,
// then stream the request to the origin through undici's dispatcher and the
// response back, tracking the phase exactly: until undici starts writing the
// request (onRequestStart) every failure is a connection failure (531); after it,
// a failure before the response starts is the origin not answering (536). Once
// it has started, timeouts.streamIdle bounds each silence in the body. A
// request to switch protocols (upgrade.ts) takes the same path to the origin.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Duplex, Transform } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Phase } from '../api/causes.ts';
import { classifyError, isConnectPhase } from '../upstream/classify.ts';
import { ResponseTimeoutError, StreamIdleTimeoutError, UpstreamConnectError } from '../upstream/errors.ts';
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

/** The body to stream to the origin: none, the request itself, or a chunked one counted against the limit. */
function requestBody(env: ForwardEnv, req: IncomingMessage): IncomingMessage | Transform | null {
  const hasBody =
    req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (!hasBody) return null;
  return req.headers['content-length'] === undefined ? limitBody(req, env.maxBodyBytes) : req;
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
  const runtime = route(env.routes(), req.headers.host);
  if (runtime === undefined) {
    env.clientError('unknown_host');
    sendPlain(res, 421, 'Misdirected Request: no Origin on this port serves this Host');
    return;
  }
  const url = req.url ?? '/';
  if (refuse(env, req, res, url)) return;
  const protocol = upgrade === undefined ? undefined : upgradeProtocol(env, runtime, res, upgrade);
  if (upgrade !== undefined && protocol === undefined) return;

  const ctx: RequestContext = { env, req, res, runtime, requestId, started };
  if (upgrade !== undefined && protocol !== undefined) ctx.upgrade = { request: upgrade, protocol };
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

  const body = requestBody(env, req);
  const handler = new ProxyHandler(ctx, admission.kind === 'trial');
  res.once('close', () => handler.onClientClose());
  runtime.pool.dispatch(
    {
      method: req.method ?? 'GET',
      path: url,
      headers: fwd.headers,
      body,
      ...(protocol === undefined ? {} : { upgrade: protocol }),
    },
    handler,
  );
}

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
    const { res, runtime, env } = this.#ctx;
    const raw = (controller as unknown as { rawHeaders?: (Buffer | string)[] }).rawHeaders ?? [];
    res.writeHead(statusCode, statusMessage || undefined, forwardResponseHeaders(raw, env.via));
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
    const raw = (controller as unknown as { rawHeaders?: (Buffer | string)[] }).rawHeaders ?? [];
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
    this.#finished = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#idleTimer);
    this.#ctx.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#finished = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#idleTimer);
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
