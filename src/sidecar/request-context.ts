// What a proxied request carries through its path, and the sidecar's own answers
// to it: sendPlain for what it refuses, recordFailure for the one place a failed
// request is accounted for (the answer, metrics, health, the log line).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Phase } from '../api/causes.ts';
import { isConnectPhase } from '../upstream/classify.ts';
import type { Failure } from '../upstream/failure.ts';
import { hostPort } from '../upstream/host-port.ts';
import { isOriginFailure } from './blame.ts';
import { buildErrorResponse } from './error-response.ts';
import type { OriginRuntime } from './origin-runtime.ts';
import type { BodyBudget } from './request-body.ts';
import type { PortRoutes } from './router.ts';

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
export interface RequestContext {
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

/**
 * The one place a failed request is accounted for: the answer (or, once the
 * origin's status line is out, a cut connection), metrics, health, the log line.
 */
export function recordFailure(ctx: RequestContext, failure: Failure): void {
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
        (a) => `${hostPort(a.address, a.port)} ${a.phase} ${a.cause} ${a.code} ${Math.round(a.elapsedMs)}ms`,
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
export const immediateFailure = (
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
