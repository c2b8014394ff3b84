// Pure construction of the answer to a failed request: status line, the
// Proxy-Status header (RFC 9209, a Structured Fields list), Retry-After, and a
// body negotiated by Accept (HTML for browsers, JSON for API clients, text
// otherwise). Internal addresses and errno appear only when the Origin allows it.
import { CAUSES } from '../api/causes.ts';
import type { StatusProfile } from '../api/origin.ts';
import { reasonPhrase, statusFor } from '../upstream/classify.ts';
import type { Failure } from '../upstream/failure.ts';
import { hostPort } from '../upstream/host-port.ts';

export interface ErrorResponseOptions {
  readonly profile: StatusProfile;
  readonly retryAfterSeconds: number;
  readonly showDetails: boolean;
  /** Name of this intermediary in Proxy-Status; never an address. */
  readonly proxyName: string;
  readonly requestId: string;
}

export interface ErrorResponse {
  readonly statusCode: number;
  readonly statusMessage: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Serializes an sf-string (RFC 8941 §3.3.3): printable ASCII, with " and \ escaped. */
export function sfString(value: string): string {
  const printable = value.replace(/[^\x20-\x7e]/g, '?');
  return `"${printable.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** An sf-token when the name allows it (RFC 8941 §3.3.4), an sf-string otherwise. */
function sfTokenOrString(value: string): string {
  return /^[A-Za-z*][!#$%&'*+\-.^_`|~:/0-9A-Za-z]*$/.test(value) ? value : sfString(value);
}

function detailsText(failure: Failure, showDetails: boolean): string {
  const info = CAUSES[failure.cause];
  if (failure.cause === 'destination_unavailable' && failure.underlying) {
    return `origin ejected after repeated failures; last: ${failure.underlying.cause}`;
  }
  if (!showDetails) return info.summary;
  const parts = [failure.code];
  if (failure.address !== undefined) parts.push(`address ${failure.address}`);
  if (failure.attempts.length > 0) parts.push(`${failure.attempts.length} attempt(s)`);
  parts.push(`${Math.round(failure.elapsedMs)}ms`);
  return `${info.summary} (${parts.join(', ')})`;
}

/** The Proxy-Status member this proxy adds for a failure. */
export function proxyStatusMember(
  failure: Failure,
  opts: Pick<ErrorResponseOptions, 'proxyName' | 'showDetails'>,
): string {
  let member = `${sfTokenOrString(opts.proxyName)}; error=${failure.cause}`;
  if (failure.rcode !== undefined) member += `; rcode=${sfString(failure.rcode)}`;
  if (failure.alertId !== undefined) member += `; alert-id=${failure.alertId}`;
  if (opts.showDetails && failure.address !== undefined) {
    const a = failure.attempts.find((x) => x.address === failure.address);
    const hop = a === undefined || a.phase === 'dns' ? failure.address : hostPort(failure.address, a.port);
    member += `; next-hop=${sfString(hop)}`;
  }
  member += `; details=${sfString(detailsText(failure, opts.showDetails))}`;
  return member;
}

type BodyKind = 'html' | 'json' | 'text';

/** Chooses the body format from Accept: the highest-q of html and json wins; neither gives text. */
export function negotiate(accept: string | undefined): BodyKind {
  if (accept === undefined || accept === '') return 'text';
  let html = -1;
  let json = -1;
  for (const range of accept.split(',')) {
    const [type = '', ...params] = range.trim().toLowerCase().split(';');
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const q = qParam === undefined ? 1 : Number(qParam.slice(2)) || 0;
    if (type === 'text/html' || type === 'application/xhtml+xml') html = Math.max(html, q);
    else if (type === 'application/json' || type.endsWith('+json')) json = Math.max(json, q);
  }
  if (html <= 0 && json <= 0) return 'text';
  return json > html ? 'json' : 'html';
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** What happened, in the words of the status family: never "did not respond in time" for a response that came. */
function lead(statusCode: number, cause: Failure['cause']): string {
  if (statusCode !== 536) return 'Unable to connect to the origin server';
  switch (cause) {
    case 'http_response_timeout':
      return 'The origin server did not respond in time';
    case 'connection_terminated':
    case 'http_response_incomplete':
      return 'The origin server dropped the connection before responding';
    default:
      return 'The origin server sent a response that cannot be forwarded';
  }
}

function sentence(statusCode: number, failure: Failure): string {
  const cause =
    failure.cause === 'destination_unavailable' && failure.underlying
      ? failure.underlying.cause
      : failure.cause;
  if (failure.cause === 'proxy_loop_detected') return CAUSES.proxy_loop_detected.summary;
  return `${lead(statusCode, failure.cause)}: ${CAUSES[cause].summary.charAt(0).toLowerCase()}${CAUSES[cause].summary.slice(1)}`;
}

/** Everything the client receives for a failed request. */
export function buildErrorResponse(
  failure: Failure,
  accept: string | undefined,
  opts: ErrorResponseOptions,
): ErrorResponse {
  const statusCode = statusFor(failure, opts.profile);
  const statusMessage = reasonPhrase(statusCode, failure.cause);
  const title = `${statusCode} ${statusMessage}`;
  const text = sentence(statusCode, failure);
  const effective =
    failure.cause === 'destination_unavailable' && failure.underlying ? failure.underlying : failure;
  const headers: Record<string, string> = {
    'proxy-status': proxyStatusMember(failure, opts),
    'cache-control': 'no-store',
    'x-request-id': opts.requestId,
  };
  if (opts.retryAfterSeconds > 0 && statusCode !== 500)
    headers['retry-after'] = String(opts.retryAfterSeconds);

  let body: string;
  switch (negotiate(accept)) {
    case 'html':
      headers['content-type'] = 'text/html; charset=utf-8';
      body =
        `<!DOCTYPE html>\n<html>\n<head><title>${escapeHtml(title)}</title></head>\n<body>\n` +
        `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(text)}</p>\n` +
        (opts.showDetails ? `<p>${escapeHtml(CAUSES[effective.cause].hint)}</p>\n` : '') +
        `<p><small>cause: ${escapeHtml(effective.cause)} &middot; request id: ${escapeHtml(opts.requestId)}</small></p>\n` +
        '</body>\n</html>\n';
      break;
    case 'json': {
      headers['content-type'] = 'application/json';
      const doc: Record<string, unknown> = {
        status: statusCode,
        error: statusMessage,
        cause: failure.cause,
        phase: failure.phase,
        message: text,
        requestId: opts.requestId,
      };
      if (failure.rcode !== undefined) doc.rcode = failure.rcode;
      if (failure.alertId !== undefined) doc.alertId = failure.alertId;
      if (failure.underlying)
        doc.lastFailure = { cause: failure.underlying.cause, phase: failure.underlying.phase };
      if (opts.showDetails) {
        doc.hint = CAUSES[effective.cause].hint;
        doc.code = effective.code;
        doc.elapsedMs = Math.round(effective.elapsedMs);
        doc.attempts = effective.attempts.map((a) => ({
          address: a.address,
          port: a.port,
          target: a.target,
          phase: a.phase,
          cause: a.cause,
          code: a.code,
          elapsedMs: Math.round(a.elapsedMs),
        }));
      }
      body = `${JSON.stringify(doc)}\n`;
      break;
    }
    default:
      headers['content-type'] = 'text/plain; charset=utf-8';
      body = `${title}: ${text} (cause: ${effective.cause}, request id: ${opts.requestId})\n`;
      if (opts.showDetails) body += `hint: ${CAUSES[effective.cause].hint}\n`;
  }
  return { statusCode, statusMessage, headers, body };
}
