// What a failure to reach an origin is, once classified: the cause and phase
// with their RFC 9209 parameters, each attempt made, and the request's verdict.
import type { Cause, Phase } from '../api/causes.ts';

/** What a raw error was classified as: the cause plus the RFC 9209 parameters that apply. */
export interface Classified {
  readonly cause: Cause;
  readonly phase: Phase;
  /** Raw code seen: errno name (ECONNREFUSED), c-ares code (ENOTFOUND), OpenSSL or undici code. */
  readonly code: string;
  readonly errno?: number;
  /** DNS response code, for dns_error. */
  readonly rcode?: string;
  /** TLS alert number, for tls_alert_received. */
  readonly alertId?: number;
}

/** One failed attempt to reach one address (or to resolve one name). */
export interface Attempt extends Classified {
  /** What was tried: an IP address, or a host name for DNS failures. */
  readonly address: string;
  readonly port: number;
  /** 0 for the primary upstream, 1.. for backups in order. */
  readonly target: number;
  readonly elapsedMs: number;
  readonly message: string;
}

/** A classified failure of one proxied request. */
export interface Failure extends Classified {
  readonly address?: string;
  readonly attempts: readonly Attempt[];
  readonly elapsedMs: number;
  /** For destination_unavailable (fast-failed while ejected): the failure that caused the ejection. */
  readonly underlying?: Failure;
}

export type RawError = Error & {
  code?: string | number;
  errno?: number | string;
  reason?: string;
  library?: string;
  syscall?: string;
};
