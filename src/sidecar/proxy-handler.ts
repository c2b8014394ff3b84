// The undici dispatch handler of one proxied request: streams the origin's answer
// to the client, tracking the phase exactly: until undici starts writing the
// request (onRequestStart) every failure is a connection failure (531); after it,
// a failure before the response starts is the origin not answering (536). Once
// it has started, timeouts.streamIdle bounds each silence in the body. 1xx go
// through (response-head.ts); whose fault a failure is, blame.ts decides.
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
import { clientFault } from './blame.ts';
import { ClientGoneError } from './errors.ts';
import { forwardResponseHeaders } from './headers.ts';
import { type RequestContext, recordFailure, sendPlain } from './request-context.ts';
import { reasonPhrase, sendInformational, unsupportedTransferCoding } from './response-head.ts';

const rawHeadersOf = (controller: Dispatcher.DispatchController): (Buffer | string)[] =>
  (controller as unknown as { rawHeaders?: (Buffer | string)[] }).rawHeaders ?? [];

/** undici dispatch handler streaming the origin's answer to the client. */
export class ProxyHandler implements Dispatcher.DispatchHandler {
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
