// HTTP/1.1 framing as the battery's two ends see it: the recording origin splits
// what a proxy sends it into requests, the client splits what a proxy answers into
// responses. Deliberately plain (CRLF lines, Content-Length or chunked, else none or
// until close): whatever does not fit is kept as raw bytes and reported, since a
// proxy that emits something ambiguous is itself a finding.

/** One header line as received: name and value, value trimmed of surrounding whitespace. */
export type HeaderLine = readonly [name: string, value: string];

export interface Message {
  /** The start line: request line or status line. */
  readonly start: string;
  readonly headers: readonly HeaderLine[];
  /** The decoded body (chunked framing removed). */
  readonly body: string;
  /** Every byte of the message as received (latin1). */
  readonly raw: string;
  /** False when the connection ended (or the data stopped) before the message did. */
  readonly complete: boolean;
}

/** The values of a header, case-insensitively, in order. */
export function headerValues(m: Pick<Message, 'headers'>, name: string): string[] {
  const lower = name.toLowerCase();
  return m.headers.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v);
}

/** The single value of a header, the values joined with ", " when repeated, or undefined. */
export function header(m: Pick<Message, 'headers'>, name: string): string | undefined {
  const v = headerValues(m, name);
  return v.length === 0 ? undefined : v.join(', ');
}

function parseHead(head: string): { start: string; headers: HeaderLine[] } {
  const [start = '', ...lines] = head.split('\r\n');
  const headers: HeaderLine[] = [];
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon < 0) headers.push([line, '']);
    else headers.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  return { start, headers };
}

type Body = { kind: 'none' } | { kind: 'length'; n: number } | { kind: 'chunked' } | { kind: 'close' };

/** Decodes chunked data from `at`; returns the body and where it ends, or undefined if incomplete. */
function dechunk(data: string, at: number): { body: string; end: number } | undefined {
  let body = '';
  let pos = at;
  for (;;) {
    const eol = data.indexOf('\r\n', pos);
    if (eol < 0) return undefined;
    const size = Number.parseInt(data.slice(pos, eol).split(';', 1)[0]?.trim() ?? '', 16);
    if (!Number.isFinite(size) || size < 0) return undefined;
    if (size === 0) {
      // Trailer lines, if any, end with an empty line.
      const after = eol + 2;
      if (data.startsWith('\r\n', after)) return { body, end: after + 2 };
      const end = data.indexOf('\r\n\r\n', after);
      return end < 0 ? undefined : { body, end: end + 4 };
    }
    if (data.length < eol + 2 + size + 2) return undefined;
    body += data.slice(eol + 2, eol + 2 + size);
    pos = eol + 2 + size + 2;
  }
}

function bodyEnd(
  data: string,
  at: number,
  kind: Body,
  closed: boolean,
): { body: string; end: number; complete: boolean } | undefined {
  switch (kind.kind) {
    case 'none':
      return { body: '', end: at, complete: true };
    case 'length':
      if (data.length >= at + kind.n)
        return { body: data.slice(at, at + kind.n), end: at + kind.n, complete: true };
      return closed ? { body: data.slice(at), end: data.length, complete: false } : undefined;
    case 'chunked': {
      const d = dechunk(data, at);
      if (d !== undefined) return { ...d, complete: true };
      return closed ? { body: data.slice(at), end: data.length, complete: false } : undefined;
    }
    case 'close':
      return closed ? { body: data.slice(at), end: data.length, complete: true } : undefined;
  }
}

function framing(headers: readonly HeaderLine[], noBody: boolean, untilClose: boolean): Body {
  if (noBody) return { kind: 'none' };
  const te = header({ headers }, 'transfer-encoding');
  if (te !== undefined && /chunked\s*$/i.test(te)) return { kind: 'chunked' };
  const cl = header({ headers }, 'content-length');
  if (cl !== undefined && /^\d+$/.test(cl)) return { kind: 'length', n: Number(cl) };
  return untilClose ? { kind: 'close' } : { kind: 'none' };
}

/**
 * Splits `data` into messages. `kind` decides the bodies: a request without
 * Content-Length or chunked has none; a response to HEAD, a 1xx, 204 or 304 has
 * none, and one without framing runs until the connection closes.
 */
export function splitMessages(
  data: string,
  kind: 'request' | 'response',
  closed: boolean,
  headMethods: readonly string[] = [],
): { messages: Message[]; rest: string } {
  const messages: Message[] = [];
  let pos = 0;
  let finals = 0;
  while (pos < data.length) {
    const headEnd = data.indexOf('\r\n\r\n', pos);
    if (headEnd < 0) break;
    const { start, headers } = parseHead(data.slice(pos, headEnd));
    const status = kind === 'response' ? Number(start.split(' ')[1]) : 0;
    const informational = status >= 100 && status < 200;
    const noBody =
      kind === 'response' &&
      (informational || status === 204 || status === 304 || headMethods[finals] === 'HEAD');
    const b = bodyEnd(data, headEnd + 4, framing(headers, noBody, kind === 'response'), closed);
    if (b === undefined) break;
    messages.push({ start, headers, body: b.body, raw: data.slice(pos, b.end), complete: b.complete });
    if (!informational) finals++;
    pos = b.end;
  }
  return { messages, rest: data.slice(pos) };
}

/** The status code of a response start line (NaN if it is not one). */
export function statusOf(m: Pick<Message, 'start'>): number {
  const match = /^HTTP\/\d\.\d (\d{3})(?: |$)/.exec(m.start);
  return match === null ? Number.NaN : Number(match[1]);
}
