// undici destroys the connection on any 100 Continue ("bad response"): it never
// sends Expect, so it takes one for a broken server (nodejs/undici#201). RFC 9110
// §15.2 says a client MUST parse 1xx responses it did not expect (and a proxy
// forward them), and an origin may send 100 unasked. Here a 100 is parsed like
// undici's other 1xx: handed to the request's handler, then the final response
// that follows is delivered. This reaches into undici's HTTP/1.1 parser; the
// hostile-input battery fails if an undici upgrade changes it.
import type { EventEmitter } from 'node:events';
import symbols from 'undici/lib/core/symbols.js';

interface InFlight {
  readonly aborted: boolean;
  onResponseStart(statusCode: number, headers: unknown[], resume: unknown, statusText: string): unknown;
}

interface Parser {
  onHeadersComplete(statusCode: number, upgrade: boolean, keepAlive: boolean): number;
  statusCode: number;
  statusText: string;
  headers: unknown[];
  headersSize: number;
  readonly resume: unknown;
  readonly client?: Record<symbol, unknown>;
}

function isParser(p: unknown): p is Parser {
  return (
    typeof p === 'object' &&
    p !== null &&
    typeof (p as Parser).onHeadersComplete === 'function' &&
    Array.isArray((p as Parser).headers)
  );
}

/** The request the parser is reading a response for, if undici's bookkeeping is what this code knows. */
function inFlight(parser: Parser): InFlight | undefined {
  const client = parser.client;
  if (client === undefined || Number(client[symbols.kRunning] ?? 0) === 0) return undefined;
  const queue = client[symbols.kQueue] as unknown[] | undefined;
  const request = queue?.[Number(client[symbols.kRunningIdx])] as InFlight | undefined;
  return typeof request?.onResponseStart === 'function' ? request : undefined;
}

/** Makes every connection `pool` opens pass an unsolicited 100 Continue to its handler, as its other 1xx. */
export function tolerateUnsolicitedContinue(pool: EventEmitter): void {
  pool.on('connect', (_origin: unknown, targets: readonly Record<symbol, unknown>[]) => {
    const socket = targets.at(-1)?.[symbols.kSocket] as Record<symbol, unknown> | undefined;
    const parser = socket?.[symbols.kParser];
    // Another parser (undici's optional milo) keeps undici's behaviour.
    if (!isParser(parser)) return;
    const original = parser.onHeadersComplete;
    parser.onHeadersComplete = function (statusCode, upgrade, keepAlive) {
      const request = statusCode === 100 ? inFlight(this) : undefined;
      if (request === undefined) return original.call(this, statusCode, upgrade, keepAlive);
      // As undici does for its other 1xx: reset, tell the handler, 1 = no body.
      const headers = this.headers;
      this.statusCode = 100;
      this.headers = [];
      this.headersSize = 0;
      request.onResponseStart(100, headers, this.resume, this.statusText);
      return request.aborted ? -1 : 1;
    };
  });
}
