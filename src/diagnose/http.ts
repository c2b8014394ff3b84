// Checklist step 4, HTTP: one GET over a connection made as the sidecar makes it
// (the one the TCP or TLS step kept, else connectAddress, certificate
// verification as configured), with the Host the
// sidecar would send and the sidecar's exact response timeout: no response head
// within it is http_response_timeout, a 536. Failures are classified by the
// phase they happen in, as the proxy classifies them.
import type net from 'node:net';
import type { Dispatcher } from 'undici';
import Client from 'undici/lib/dispatcher/client.js';
import type { Phase } from '../api/causes.ts';
import { connectAddress } from '../upstream/connector.ts';
import { ResponseTimeoutError } from '../upstream/errors.ts';
import { hostPort } from '../upstream/host-port.ts';
import type { ResolvedAddress } from '../upstream/resolver.ts';
import { PRODUCT_VERSION } from '../version.ts';
import { failedStep } from './connect.ts';
import type { Plan, TargetPlan } from './plan.ts';
import type { HttpDetail, Step } from './schema.ts';

/** The body is read to measure the whole response, up to this much. */
const MAX_BODY_BYTES = 1024 * 1024;

class BodyCapReached extends Error {}

interface Outcome {
  readonly error?: Error;
  readonly phase: Phase;
  readonly status: number | null;
  readonly statusText: string;
  readonly ttfbMs: number | null;
  readonly bytes: number;
  readonly truncated: boolean;
}

/** Follows one request through undici's phases, with the sidecar's own response timer. */
class ProbeHandler implements Dispatcher.DispatchHandler {
  #phase: Phase = 'connect';
  #controller: Dispatcher.DispatchController | undefined;
  #timer: NodeJS.Timeout | undefined;
  #sentAt = 0;
  #status: number | null = null;
  #statusText = '';
  #ttfbMs: number | null = null;
  #bytes = 0;
  readonly #responseTimeoutMs: number;
  readonly #done: (outcome: Outcome) => void;

  constructor(responseTimeoutMs: number, done: (outcome: Outcome) => void) {
    this.#responseTimeoutMs = responseTimeoutMs;
    this.#done = done;
  }

  #finish(extra: { error?: Error; truncated?: boolean }): void {
    clearTimeout(this.#timer);
    this.#done({
      phase: this.#phase,
      status: this.#status,
      statusText: this.#statusText,
      ttfbMs: this.#ttfbMs,
      bytes: this.#bytes,
      truncated: extra.truncated ?? false,
      ...(extra.error === undefined ? {} : { error: extra.error }),
    });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    this.#phase = 'request';
  }

  onRequestSent(): void {
    this.#sentAt = performance.now();
    const ms = this.#responseTimeoutMs;
    this.#timer = setTimeout(() => this.#controller?.abort(new ResponseTimeoutError(ms)), ms);
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    _headers: unknown,
    statusMessage?: string,
  ): void {
    if (statusCode < 200) return;
    clearTimeout(this.#timer);
    this.#phase = 'response';
    this.#status = statusCode;
    this.#statusText = statusMessage ?? '';
    this.#ttfbMs = performance.now() - this.#sentAt;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#bytes += chunk.length;
    if (this.#bytes >= MAX_BODY_BYTES) controller.abort(new BodyCapReached());
  }

  onResponseEnd(): void {
    this.#finish({});
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (err instanceof BodyCapReached) this.#finish({ truncated: true });
    else this.#finish({ error: err });
  }
}

const isClosed = (err: Error | undefined): boolean => {
  const code = (err as { code?: string } | undefined)?.code;
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE';
};

/** Step 4: the request, over the connection kept by the TCP or TLS step, else a new one to `address` of `target`. */
export async function probeHttp(
  plan: Plan,
  target: TargetPlan,
  index: number,
  address: ResolvedAddress,
  userAgent = `originguard-diagnose/${PRODUCT_VERSION}`,
  opened?: net.Socket,
): Promise<Step> {
  const tls = target.tls;
  let socket = opened;
  const client = new Client('http://upstream.originguard.invalid', {
    connect: (_opts, callback) => {
      // The connection the TCP or TLS step made (and kept) carries the request, if the
      // origin has not closed it meanwhile (the other addresses may have taken a timeout).
      if (
        socket !== undefined &&
        !socket.destroyed &&
        socket.readyState === 'open' &&
        socket.readableLength === 0
      ) {
        const s = socket;
        socket = undefined;
        // undici expects its connector to answer asynchronously.
        setImmediate(() => callback(null, s));
        return;
      }
      connectAddress(
        address,
        {
          host: target.host,
          port: target.port,
          extraAddresses: [],
          ...(tls === undefined
            ? {}
            : {
                tls: {
                  ...(tls.servername === undefined ? {} : { servername: tls.servername }),
                  ...(tls.ca === undefined ? {} : { ca: tls.ca }),
                  rejectUnauthorized: !tls.insecure,
                },
              }),
        },
        plan.connectTimeoutMs,
      ).then(
        (socket) => callback(null, socket),
        (err: Error) => callback(err, null),
      );
    },
    headersTimeout: 0,
    bodyTimeout: plan.responseTimeoutMs,
    pipelining: 1,
  });
  const started = performance.now();
  const outcome = await new Promise<Outcome>((resolve) => {
    const headers = {
      host: plan.hostHeader,
      'user-agent': userAgent,
      accept: '*/*',
    };
    client.dispatch(
      { method: 'GET', path: plan.path, headers },
      new ProbeHandler(plan.responseTimeoutMs, resolve),
    );
  });
  await client.destroy().catch(() => undefined);
  const reused = opened !== undefined && socket === undefined;
  socket?.destroy();
  // A kept connection the origin closed while it waited says nothing: ask once more on a new one.
  if (reused && outcome.status === null && outcome.phase === 'request' && isClosed(outcome.error)) {
    return probeHttp(plan, target, index, address, userAgent);
  }
  const elapsedMs = performance.now() - started;
  const http: HttpDetail = {
    method: 'GET',
    path: plan.path,
    host: plan.hostHeader,
    status: outcome.status,
    ttfbMs: outcome.ttfbMs,
    bytes: outcome.bytes,
    truncated: outcome.truncated,
  };
  const base = {
    phase: 'http' as const,
    target: index,
    address: hostPort(address.address, target.port),
    elapsedMs,
  };
  if (outcome.error !== undefined) return { ...failedStep(outcome.error, outcome.phase, base), http };
  const ttfb = Math.round(outcome.ttfbMs ?? 0);
  const body = `${outcome.bytes} bytes${outcome.truncated ? ' (stopped reading at 1 MiB)' : ''}`;
  return {
    ...base,
    ok: true,
    cause: null,
    failedIn: null,
    code: null,
    detail:
      `${outcome.status} ${outcome.statusText}`.trim() +
      `, first byte after ${ttfb} ms, ${body} in ${Math.round(elapsedMs)} ms`,
    http,
  };
}
