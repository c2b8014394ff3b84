// The origin's response head on its way to the client: what of it can be sent as
// received (a reason phrase in any bytes HTTP allows), what must be refused (a
// transfer coding the sidecar does not decode), and 1xx responses (RFC 9110 §15.2:
// a proxy forwards them, except to HTTP/1.0 clients).
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The reason phrase to send: the origin's bytes when they are a valid
 * reason-phrase (RFC 9112 §4: HTAB, SP, VCHAR, obs-text), else undefined for
 * the standard one. undici decodes the phrase as UTF-8; re-encoding recovers the
 * bytes unless they were not UTF-8 (then U+FFFD marks what was lost).
 */
export function reasonPhrase(decoded: string | undefined): string | undefined {
  if (decoded === undefined || decoded === '' || decoded.includes('\uFFFD')) return undefined;
  const bytes = Buffer.from(decoded, 'utf8').toString('latin1');
  return /^[\t\x20-\x7e\x80-\xff]*$/.test(bytes) ? bytes : undefined;
}

/**
 * A Transfer-Encoding the sidecar cannot pass on: undici decodes only chunked, and
 * Transfer-Encoding is hop-by-hop, so any other coding would reach the client as
 * undecodable bytes with nothing saying so.
 */
export function unsupportedTransferCoding(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const codings = (Array.isArray(value) ? value : [value])
    .flatMap((v) => v.split(','))
    .map((c) => c.trim().toLowerCase());
  return codings.length === 1 && codings[0] === 'chunked' ? undefined : codings.join(', ');
}

type Informational = ServerResponse & {
  writeInformation?: (statusCode: number, headers: readonly string[]) => void;
};

/**
 * Passes a 1xx from the origin to the client (101 never gets here). Node queues
 * it behind earlier responses on the connection, like writeEarlyHints. A client
 * that sent Expect already had its 100 from Node. A 1xx Node cannot send (older
 * Node, invalid header) is dropped: the final response still follows.
 */
export function sendInformational(
  req: IncomingMessage,
  res: ServerResponse,
  statusCode: number,
  headers: readonly string[],
): boolean {
  if (req.httpVersion === '1.0' || res.headersSent) return false;
  if (statusCode === 100 && req.headers.expect !== undefined) return false;
  const r = res as Informational;
  try {
    if (typeof r.writeInformation === 'function') r.writeInformation(statusCode, headers);
    else if (statusCode === 103) res.writeEarlyHints(earlyHints(headers));
    else if (statusCode === 102) res.writeProcessing();
    else if (statusCode === 100) res.writeContinue();
    else return false;
    return true;
  } catch {
    return false;
  }
}

/** writeEarlyHints' object form: repeated fields as arrays. */
function earlyHints(flat: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < flat.length; i += 2) {
    const name = (flat[i] as string).toLowerCase();
    const value = flat[i + 1] as string;
    const prev = out[name];
    out[name] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value];
  }
  return out;
}
