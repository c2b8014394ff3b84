// Errors of reaching an origin. The classifier (classify.ts) matches these codes
// to causes; the connector and the sidecar's request path throw them.
import type { Cause, Phase } from '../api/causes.ts';
import { OriginguardError } from '../errors.ts';
import type { Failure } from './failure.ts';

export const CONNECT_TIMEOUT = 'OG_CONNECT_TIMEOUT';
export const RESPONSE_TIMEOUT = 'OG_RESPONSE_TIMEOUT';
export const STREAM_IDLE_TIMEOUT = 'OG_STREAM_IDLE_TIMEOUT';
export const UPSTREAM_CONNECT = 'OG_UPSTREAM_CONNECT';
export const ATTEMPT_FAILED = 'OG_ATTEMPT_FAILED';
export const INVALID_RESPONSE = 'OG_INVALID_RESPONSE';
/** Failure code when no connection attempt could even be made (an Origin with nothing to try). */
export const NO_ATTEMPT = 'OG_NO_ATTEMPT';

/** One connection attempt took longer than the connect timeout (DNS, TCP or TLS). */
export class ConnectTimeoutError extends OriginguardError {
  readonly code = CONNECT_TIMEOUT;
  constructor(ms: number, phase: Phase) {
    super(
      `no ${phase === 'tls' ? 'TLS handshake' : phase === 'dns' ? 'DNS answer' : 'connection'} within ${ms}ms`,
    );
  }
}

/** The origin took the request but sent no response in time. */
export class ResponseTimeoutError extends OriginguardError {
  readonly code = RESPONSE_TIMEOUT;
  constructor(ms: number) {
    super(`no response from the origin within ${ms}ms`);
  }
}

/** A response body the origin had started went silent for longer than timeouts.streamIdle. */
export class StreamIdleTimeoutError extends OriginguardError {
  readonly code = STREAM_IDLE_TIMEOUT;
  constructor(ms: number) {
    super(`the origin sent nothing for ${ms}ms in a response it had started`);
  }
}

/** A response head undici parsed but the sidecar cannot forward faithfully (a transfer coding it does not decode, a header Node refuses to send). */
export class InvalidResponseError extends OriginguardError {
  readonly code = INVALID_RESPONSE;
  readonly problem: Cause;
  constructor(problem: Cause, message: string) {
    super(message);
    this.problem = problem;
  }
}

/**
 * One attempt to reach one address failed: the error seen and the phase the
 * attempt was in (connect or tls), carried instead of written onto a foreign error.
 */
export class AttemptError extends OriginguardError {
  readonly code = ATTEMPT_FAILED;
  readonly phase: Phase;
  override readonly cause: Error;
  constructor(phase: Phase, cause: Error) {
    super(`${phase}: ${cause.message}`, { cause });
    this.phase = phase;
    this.cause = cause;
  }
}

/** No address of any target accepted a connection: what undici receives, with every attempt classified. */
export class UpstreamConnectError extends OriginguardError {
  readonly code = UPSTREAM_CONNECT;
  readonly failure: Failure;
  constructor(failure: Failure) {
    super(`could not connect to the origin: ${failure.cause} (${failure.attempts.length} attempt(s))`);
    this.failure = failure;
  }
}

/**
 * A name that could not be resolved. `code` is c-ares's (ENOTFOUND, ENODATA,
 * ESERVFAIL, EREFUSED, ETIMEOUT...), the codes Node's dns module uses: the
 * classifier turns each into dns_error with its rcode, or dns_timeout.
 */
export class DnsError extends OriginguardError {
  readonly code: string;
  readonly hostname: string;
  constructor(code: string, hostname: string, message: string) {
    super(message);
    this.code = code;
    this.hostname = hostname;
  }
}
