// Pure classification of upstream failures into RFC 9209 causes. The phase of
// the attempt (known exactly, see connector.ts and forward.ts) decides 531 vs
// 536; the error code only refines the cause within that phase.
import { CAUSES, type Cause, type Phase } from '../api/causes.ts';
import type { StatusProfile } from '../api/origin.ts';
import { CONNECT_TIMEOUT, NO_ATTEMPT, RESPONSE_TIMEOUT, STREAM_IDLE_TIMEOUT } from './errors.ts';
import type { Attempt, Classified, Failure, RawError } from './failure.ts';

const DNS_RCODES = new Map<string, { cause: Cause; rcode?: string }>(
  Object.entries({
    ENOTFOUND: { cause: 'dns_error', rcode: 'NXDOMAIN' },
    ENODATA: { cause: 'dns_error', rcode: 'NOERROR' },
    ESERVFAIL: { cause: 'dns_error', rcode: 'SERVFAIL' },
    EREFUSED: { cause: 'dns_error', rcode: 'REFUSED' },
    EFORMERR: { cause: 'dns_error', rcode: 'FORMERR' },
    ENOTIMP: { cause: 'dns_error', rcode: 'NOTIMP' },
    EBADRESP: { cause: 'dns_error' },
    EBADNAME: { cause: 'dns_error' },
    ECONNREFUSED: { cause: 'dns_error' },
    ETIMEOUT: { cause: 'dns_timeout' },
    ETIMEDOUT: { cause: 'dns_timeout' },
  } satisfies Record<string, { cause: Cause; rcode?: string }>),
);

const CONNECT_CODES = new Map<string, Cause>(
  Object.entries({
    ECONNREFUSED: 'connection_refused',
    ETIMEDOUT: 'connection_timeout',
    UND_ERR_CONNECT_TIMEOUT: 'connection_timeout',
    [CONNECT_TIMEOUT]: 'connection_timeout',
    EHOSTUNREACH: 'destination_ip_unroutable',
    ENETUNREACH: 'destination_ip_unroutable',
    EINVAL: 'destination_ip_unroutable',
    EADDRNOTAVAIL: 'destination_ip_unroutable',
    EACCES: 'destination_ip_prohibited',
    EPERM: 'destination_ip_prohibited',
    ENOPROTOOPT: 'destination_ip_prohibited',
    ECONNRESET: 'connection_terminated',
    EPIPE: 'connection_terminated',
    ECONNABORTED: 'connection_terminated',
  } satisfies Record<string, Cause>),
);

const CERT_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_CHAIN_TOO_LONG',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'HOSTNAME_MISMATCH',
]);

function codeOf(err: RawError): string {
  if (typeof err.code === 'string' && err.code !== '') return err.code;
  if (err.name === 'HTTPParserError') return 'HPE_INVALID';
  return err.name || 'UNKNOWN';
}

function errnoOf(err: RawError): number | undefined {
  return typeof err.errno === 'number' ? err.errno : undefined;
}

function tlsCause(code: string, message: string): { cause: Cause; alertId?: number } {
  if (CERT_CODES.has(code)) return { cause: 'tls_certificate_error' };
  const alert = /alert number (\d+)/i.exec(message);
  if (alert) return { cause: 'tls_alert_received', alertId: Number(alert[1]) };
  if (
    CONNECT_CODES.get(code) === 'connection_terminated' ||
    /socket disconnected before secure TLS/i.test(message)
  ) {
    return { cause: 'connection_terminated' };
  }
  if (code === CONNECT_TIMEOUT) return { cause: 'connection_timeout' };
  return { cause: 'tls_protocol_error' };
}

/** What one raw error means, given the phase the attempt was in when it failed. */
export function classifyError(err: RawError, phase: Phase): Omit<Classified, 'phase'> {
  const code = codeOf(err);
  const errno = errnoOf(err);
  const base = errno === undefined ? { code } : { code, errno };
  switch (phase) {
    case 'dns': {
      const dns = DNS_RCODES.get(code) ?? { cause: 'dns_error' as const };
      return dns.rcode === undefined
        ? { ...base, cause: dns.cause }
        : { ...base, cause: dns.cause, rcode: dns.rcode };
    }
    case 'connect':
      return { ...base, cause: CONNECT_CODES.get(code) ?? 'connection_terminated' };
    case 'tls':
      return { ...base, ...tlsCause(code, err.message) };
    case 'request':
      if (code === RESPONSE_TIMEOUT || code === 'UND_ERR_HEADERS_TIMEOUT')
        return { ...base, cause: 'http_response_timeout' };
      return { ...base, cause: responseProblem(code, err.message) ?? 'connection_terminated' };
    case 'response':
      if (code === 'UND_ERR_BODY_TIMEOUT' || code === RESPONSE_TIMEOUT || code === STREAM_IDLE_TIMEOUT)
        return { ...base, cause: 'http_response_timeout' };
      return { ...base, cause: responseProblem(code, err.message) ?? 'http_response_incomplete' };
  }
}

/** A response undici refused to parse: what was wrong with it, or undefined if it simply stopped. */
function responseProblem(code: string, message: string): Cause | undefined {
  if (code === 'UND_ERR_HEADERS_OVERFLOW') return 'http_response_header_section_size';
  // Content-Length contradicting the chunked framing the parser followed: both were sent.
  if (code.startsWith('HPE_') || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') return 'http_protocol_error';
  // A response with no request waiting for it, or a 101 nobody asked for.
  if (code === 'UND_ERR_SOCKET' && /^bad (response|upgrade)$/.test(message)) return 'http_protocol_error';
  return undefined;
}

/**
 * The cause that represents several failed attempts: the most frequent one,
 * ties going to the earliest (the preferred address). Each attempt keeps its own.
 */
export function dominantAttempt(attempts: readonly Attempt[]): Attempt | undefined {
  const counts = new Map<Cause, number>();
  for (const a of attempts) counts.set(a.cause, (counts.get(a.cause) ?? 0) + 1);
  let best: Attempt | undefined;
  let bestCount = 0;
  for (const a of attempts) {
    const n = counts.get(a.cause) ?? 0;
    if (n > bestCount) {
      best = a;
      bestCount = n;
    }
  }
  return best;
}

/** Builds the request's failure from the attempts made to establish a connection. */
export function connectFailure(attempts: readonly Attempt[], elapsedMs: number): Failure {
  const top = dominantAttempt(attempts);
  if (top === undefined) {
    return { cause: 'proxy_internal_error', phase: 'connect', code: NO_ATTEMPT, attempts, elapsedMs };
  }
  return {
    cause: top.cause,
    phase: top.phase,
    code: top.code,
    ...(top.errno === undefined ? {} : { errno: top.errno }),
    ...(top.rcode === undefined ? {} : { rcode: top.rcode }),
    ...(top.alertId === undefined ? {} : { alertId: top.alertId }),
    address: top.address,
    attempts,
    elapsedMs,
  };
}

const CONNECTION_PHASES: ReadonlySet<Phase> = new Set(['dns', 'connect', 'tls']);

/** True when the failure happened before the request was sent: the 531 family. */
export function isConnectPhase(phase: Phase): boolean {
  return CONNECTION_PHASES.has(phase);
}

/** The status code answered for a failure, under the Origin's status profile. */
export function statusFor(failure: Pick<Failure, 'cause' | 'phase'>, profile: StatusProfile): number {
  // Our own failure is no upstream failure: 500, or Edgio's own code for it (530).
  if (failure.cause === 'proxy_internal_error') return profile === 'Edgio' ? 530 : 500;
  if (profile === 'Edgio') {
    const edgio = CAUSES[failure.cause].edgioStatus;
    if (edgio !== 531 && edgio !== 536) return edgio;
  }
  if (failure.cause === 'proxy_loop_detected' || failure.cause === 'destination_unavailable') return 531;
  return isConnectPhase(failure.phase) ? 531 : 536;
}

const REASON_PHRASES: Readonly<Record<number, string>> = {
  500: 'Internal Server Error',
  530: 'Internal Error',
  531: 'Upstream Connection Error',
  533: 'Upstream TLS Error',
  536: 'HTTP Response Timeout',
  537: 'DNS Resolution Error',
  538: 'Request Loop Detected',
};

/** 536 covers every failure after the request was sent; its reason phrase says which kind. */
const RESPONSE_PHRASES: Partial<Record<Cause, string>> = {
  connection_terminated: 'Upstream Connection Dropped',
  http_response_incomplete: 'Upstream Connection Dropped',
  http_protocol_error: 'Invalid Upstream Response',
  http_response_header_section_size: 'Invalid Upstream Response',
  http_response_transfer_coding: 'Invalid Upstream Response',
};

/** The reason phrase of a failure's status line. */
export function reasonPhrase(statusCode: number, cause: Cause): string {
  return (
    (statusCode === 536 ? RESPONSE_PHRASES[cause] : undefined) ??
    REASON_PHRASES[statusCode] ??
    'Upstream Error'
  );
}
