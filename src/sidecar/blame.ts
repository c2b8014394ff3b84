// Whose doing a failed request is (pure). The client's: it left, broke off or
// oversized its body, or sent something undici refuses to put on the wire. Those
// get a 4xx (or nothing, when no one is left to answer) and are counted as client
// errors; only what remains is the origin's (or the sidecar's own) and reaches
// health, outlier detection, failure metrics and reports.
import type { Cause, Phase } from '../api/causes.ts';
import { BodyTooLargeError, ClientBodyError, ClientGoneError } from './errors.ts';

export type ClientFault =
  /** The client left or stopped sending: no one to answer. */
  | { readonly kind: 'gone' }
  /** Answer the client with this status; `reason` labels originguard_client_errors_total. */
  | { readonly kind: 'refused'; readonly status: number; readonly reason: string; readonly message: string };

/** undici's codes for a request it will not send as given: the request is at fault, not the origin. */
const REFUSED_BY_UNDICI = new Set([
  'UND_ERR_INVALID_ARG',
  'UND_ERR_NOT_SUPPORTED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
]);

/** The client's part in a failed request, or undefined when the failure is not the client's. */
export function clientFault(err: Error, phase: Phase, clientGone: boolean): ClientFault | undefined {
  if (clientGone || err instanceof ClientGoneError || err instanceof ClientBodyError) return { kind: 'gone' };
  if (err instanceof BodyTooLargeError) {
    return {
      kind: 'refused',
      status: 413,
      reason: 'body_too_large',
      message: 'Content Too Large: request body over the limit',
    };
  }
  const code = (err as { code?: unknown }).code;
  if (phase !== 'response' && typeof code === 'string' && REFUSED_BY_UNDICI.has(code)) {
    return {
      kind: 'refused',
      status: 400,
      reason: 'invalid_request',
      message: `Bad Request: the request cannot be forwarded: ${err.message}`,
    };
  }
  return undefined;
}

/**
 * Whether a failure the sidecar answered says something about the origin's
 * health: not a loop (the request's own CDN-Loop header says so, and a client
 * can write one) nor the sidecar's own error.
 */
export function isOriginFailure(cause: Cause): boolean {
  return cause !== 'proxy_loop_detected' && cause !== 'proxy_internal_error';
}
