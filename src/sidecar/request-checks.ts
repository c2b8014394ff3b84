// What a request must be to be forwarded, decided from its head alone (pure).
// Node's parser already refuses what RFC 9112 makes a 400 (ambiguous framing,
// bare CR, obs-fold, bad names); these are the rules it leaves to the server:
// one valid Host (§3.2), framing HTTP/1.0 cannot carry (§6.1), request targets
// that are not for this origin or climb above its root, and the Origin's own
// spec.request (TRACE, header names with underscores).
import type { RequestPolicy } from '../api/traffic.ts';

/** The parts of a request the checks read (IncomingMessage has them all). */
export interface RequestHead {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  /** Node's rawHeaders: [name, value, name, value, ...] as received. */
  readonly rawHeaders: readonly string[];
}

/** A request answered by the sidecar itself; `reason` labels originguard_client_errors_total. */
export interface Refusal {
  readonly status: number;
  readonly reason: string;
  readonly message: string;
  /** Close the connection after answering: what follows on it cannot be trusted. */
  readonly close?: boolean;
}

/** reg-name, IPv4 or IP-literal, optional port (RFC 3986 §3.2.2): no userinfo, path or spaces. */
const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(:[0-9]*)?$/;

function headerValues(raw: readonly string[], lower: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    // The length first: most names differ in it, and lower-casing each would cost every request.
    if (name.length === lower.length && name.toLowerCase() === lower) out.push(raw[i + 1] as string);
  }
  return out;
}

const bad = (reason: string, message: string, close = false): Refusal => ({
  status: 400,
  reason,
  message: `Bad Request: ${message}`,
  close,
});

/** True when the path's dot-segments (also %2e-encoded) climb above the root. */
export function climbsAboveRoot(url: string): boolean {
  if (!url.includes('.') && !url.includes('%')) return false;
  const path = url.split('?', 1)[0] ?? '';
  let depth = 0;
  for (const segment of path.split('/').slice(1)) {
    const s = segment.replace(/%2e/gi, '.');
    if (s === '..') depth--;
    else if (s !== '.') depth++;
    if (depth < 0) return true;
  }
  return false;
}

function checkHost(raw: readonly string[]): Refusal | undefined {
  const hosts = headerValues(raw, 'host');
  if (hosts.length > 1) return bad('duplicate_host', 'more than one Host header (RFC 9112 §3.2)');
  const host = hosts[0];
  if (host !== undefined && !HOST.test(host))
    return bad('invalid_host', 'the Host header is not a valid host[:port]');
  return undefined;
}

function checkFraming(head: RequestHead): Refusal | undefined {
  const te = headerValues(head.rawHeaders, 'transfer-encoding');
  if (te.length === 0) return undefined;
  if (head.httpVersion === '1.0')
    return bad('transfer_encoding_http10', 'Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1)', true);
  const codings = te.flatMap((v) => v.split(',')).map((c) => c.trim().toLowerCase());
  if (codings.length !== 1 || codings[0] !== 'chunked') {
    return {
      status: 501,
      reason: 'transfer_coding',
      message: 'Not Implemented: only the chunked transfer coding is accepted',
      close: true,
    };
  }
  return undefined;
}

function checkTarget(head: RequestHead): Refusal | 'options' | undefined {
  const { url, method } = head;
  if (url === '*')
    return method === 'OPTIONS' ? 'options' : bad('asterisk_form', `"*" is a target only for OPTIONS`);
  if (!url.startsWith('/')) {
    return bad(
      'absolute_form',
      'absolute-form request targets are refused: originguard only forwards to its declared origin',
    );
  }
  if (/[^\x21-\xff]/.test(url))
    return bad('invalid_target', 'the request target has characters a URL cannot have');
  if (climbsAboveRoot(url)) return bad('path_traversal', 'the path climbs above the root ("/..")');
  return undefined;
}

/**
 * Checks that hold for every Origin. 'options' means the request is OPTIONS *,
 * which asks about the server itself: the sidecar answers it.
 */
export function checkRequest(head: RequestHead): Refusal | 'options' | undefined {
  if (head.httpVersion !== '1.1' && head.httpVersion !== '1.0') {
    return {
      status: 505,
      reason: 'http_version',
      message: `HTTP Version Not Supported: HTTP/${head.httpVersion}`,
      close: true,
    };
  }
  return checkHost(head.rawHeaders) ?? checkFraming(head) ?? checkTarget(head);
}

/** Checks of one Origin's spec.request; 'local' means the sidecar is the request's final recipient (Max-Forwards: 0). */
export function checkAgainstPolicy(head: RequestHead, policy: RequestPolicy): Refusal | 'local' | undefined {
  if (head.method === 'TRACE' && policy.trace === 'Refuse') {
    return { status: 405, reason: 'trace', message: 'Method Not Allowed: TRACE is not forwarded' };
  }
  if (policy.underscoresInHeaders === 'Reject') {
    for (let i = 0; i < head.rawHeaders.length; i += 2) {
      if ((head.rawHeaders[i] as string).includes('_'))
        return bad('underscore_header', `header names with underscores are refused: ${head.rawHeaders[i]}`);
    }
  }
  if (
    (head.method === 'OPTIONS' || head.method === 'TRACE') &&
    headerValues(head.rawHeaders, 'max-forwards')[0]?.trim() === '0'
  )
    return 'local';
  return undefined;
}

/** What the sidecar answers as a request's final recipient: TRACE echoes the request without credentials. */
export function localAnswer(head: RequestHead): { contentType?: string; body: string } {
  if (head.method !== 'TRACE') return { body: '' };
  const hidden = new Set(['cookie', 'authorization', 'proxy-authorization']);
  let body = `${head.method} ${head.url} HTTP/${head.httpVersion}\r\n`;
  for (let i = 0; i < head.rawHeaders.length; i += 2) {
    if (!hidden.has((head.rawHeaders[i] as string).toLowerCase()))
      body += `${head.rawHeaders[i]}: ${head.rawHeaders[i + 1]}\r\n`;
  }
  return { contentType: 'message/http', body: `${body}\r\n` };
}
