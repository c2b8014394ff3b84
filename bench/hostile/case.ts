// The shape of a hostile-input case and the checks both runs share: what
// originguard must do exactly (the test suite asserts it, byte for byte at the
// origin), and the property any reverse proxy must have (the comparison with
// nginx judges both with it).
import type { Exchange, Part } from './client.ts';
import type { Answer, Recorded } from './recording-origin.ts';
import { header, headerValues, type Message, statusOf } from './wire.ts';

export const CLASSES = {
  smuggling: 'Request smuggling: framing two parsers could read differently (RFC 9112 §6.3, §11.2)',
  injection: 'Header injection: bytes a header must not carry, names a backend misreads',
  'hop-by-hop': 'Hop-by-hop abuse: Connection naming headers the proxy sets or frames with',
  forwarding: 'Forwarding-header spoofing: a client claiming another address, scheme or host',
  'open-proxy': 'Open-proxy and routing attempts: other hosts, absolute targets, CONNECT, traversal',
  method: 'Methods a proxy answers itself or refuses: TRACE, OPTIONS *, Max-Forwards',
  'slow-client': 'Slow clients: a request trickling in must not hold the origin',
  informational: '1xx responses from the origin: forwarded (RFC 9110 §15.2)',
  'malformed-response':
    'Malformed responses from the origin: refused with the right cause, never passed on ambiguous',
} as const;

export type CaseClass = keyof typeof CLASSES;

/** What happened in one case: what the client got and what reached the origin. */
export interface Outcome {
  readonly exchange: Exchange;
  readonly forwarded: readonly Recorded[];
}

/** originguard's behaviour, exactly. */
export interface Expected {
  /** Status of every response the client gets, 1xx included, in order. */
  readonly statuses: readonly number[];
  /** Every request the origin receives, byte for byte ({cdn} stands for the Origin's CDN-Loop id). */
  readonly forwarded: readonly string[];
  /** The reason phrase of the last response, as bytes (latin1). */
  readonly reason?: string;
  /** The body of the last response (a RegExp for error pages). */
  readonly body?: string | RegExp;
  /** Proxy-Status error of the last response; none when absent. */
  readonly cause?: string;
  /** The sidecar closes the connection after answering. */
  readonly closed?: boolean;
  /** The response counts as a failure of the origin (a malformed response); a client's doing never does. */
  readonly originFailure?: boolean;
}

export interface HostileCase {
  /** Short and unique: the table's first column. */
  readonly id: string;
  readonly class: CaseClass;
  /** What the client (or the origin) tries. */
  readonly title: string;
  readonly send: readonly Part[];
  /** Methods of the requests sent (default GET): a response to HEAD has no body. */
  readonly methods?: readonly string[];
  /** Final responses a correct proxy gives (default 1). */
  readonly finals?: number;
  /** What the origin answers to its nth request; default 200 "ok". */
  readonly origin?: readonly Answer[];
  readonly expect: Expected;
  /** The property any proxy must have: undefined when it holds, else what went wrong. */
  readonly judge: (o: Outcome) => string | undefined;
}

/** The request line and client headers every request case starts from. */
export const HOST = 'live.test';

export interface ForwardedSpec {
  /** Request line as originguard sends it. */
  readonly line?: string;
  /** Client headers that are forwarded, in order, as "Name: value". */
  readonly headers?: readonly string[];
  readonly host?: string;
  /** A body, sent with content-length. */
  readonly body?: string;
  /** Forwarding headers when they differ from what the sidecar saw. */
  readonly xff?: string;
  readonly proto?: string;
}

/** The request originguard sends the origin, byte for byte (its header order: client headers, then its own). */
export function forwarded(spec: ForwardedSpec = {}): string {
  const host = spec.host ?? HOST;
  const lines = [
    spec.line ?? 'GET / HTTP/1.1',
    `host: ${host}`,
    'connection: keep-alive',
    ...(spec.headers ?? []),
    `x-forwarded-for: ${spec.xff ?? '127.0.0.1'}`,
    `x-forwarded-proto: ${spec.proto ?? 'http'}`,
    `x-forwarded-host: ${host}`,
    `forwarded: for=127.0.0.1;host=${/^[\w.-]+$/.test(host) ? host : `"${host}"`};proto=http`,
    'x-real-ip: 127.0.0.1',
    'via: 1.1 originguard',
    'cdn-loop: {cdn}',
  ];
  if (spec.body !== undefined) lines.push(`content-length: ${Buffer.byteLength(spec.body, 'latin1')}`);
  return `${lines.join('\r\n')}\r\n\r\n${spec.body ?? ''}`;
}

/** A plain request from the client: request line, Host, then the given header lines. */
export function request(line: string, headers: readonly string[] = [], body = ''): string {
  return `${[line, `Host: ${HOST}`, ...headers].join('\r\n')}\r\n\r\n${body}`;
}

const finals = (o: Outcome): Message[] => o.exchange.responses.filter((m) => !(statusOf(m) < 200));

/** Judges, each a property a proxy must have. */
export const must = {
  /** Nothing reached the origin. */
  notForward: (o: Outcome) =>
    o.forwarded.length === 0 ? undefined : `the origin received ${o.forwarded.length} request(s)`,

  /**
   * Every request at the origin is one the proxy composed (it carries the
   * X-Forwarded-For every proxy here adds): a request hidden in another's body
   * reaches the origin without it. A hidden request the proxy parsed and sent on
   * as a request of its own is pipelining, not smuggling.
   */
  notSmuggle(o: Outcome): string | undefined {
    const hidden = o.forwarded.find((r) => r.complete && headerValues(r, 'x-forwarded-for').length === 0);
    if (hidden !== undefined)
      return `the origin received a request the proxy did not compose: ${hidden.start}`;
    const both = o.forwarded.find(
      (r) => headerValues(r, 'content-length').length + headerValues(r, 'transfer-encoding').length > 1,
    );
    return both === undefined ? undefined : 'the origin received a request with ambiguous framing';
  },

  /** The client gets an answer (any status) and the connection is not left hanging. */
  answer(o: Outcome): string | undefined {
    return finals(o).length > 0 || o.exchange.closed ? undefined : 'no answer';
  },

  /** The final answer's status satisfies `ok`. */
  status(ok: (status: number) => boolean, what: string) {
    return (o: Outcome): string | undefined => {
      const s = finals(o).map(statusOf);
      if (s.length === 0) return o.exchange.closed ? undefined : 'no answer';
      return s.every(ok) ? undefined : `answered ${s.join(', ')}, want ${what}`;
    };
  },

  /** Every request at the origin has exactly one Host, naming `host` (any case, with or without a port). */
  host(host: string) {
    const name = (h: string | undefined) => h?.toLowerCase().replace(/:\d*$/, '');
    return (o: Outcome): string | undefined => {
      for (const r of o.forwarded) {
        const h = headerValues(r, 'host');
        if (h.length !== 1 || name(h[0]) !== name(host)) return `the origin saw Host ${JSON.stringify(h)}`;
      }
      return undefined;
    };
  },

  /** A forwarded header, when present, is one the proxy vouches for (`ok(value)`). */
  headerIs(name: string, ok: (value: string | undefined) => boolean, what: string) {
    return (o: Outcome): string | undefined => {
      const bad = o.forwarded.find((r) => !ok(header(r, name)));
      return bad === undefined ? undefined : `the origin saw ${name}: ${header(bad, name)} (${what})`;
    };
  },

  /** No forwarded request carries `text` anywhere in its head. */
  notCarry(text: string) {
    return (o: Outcome): string | undefined => {
      const bad = o.forwarded.find((r) => r.raw.split('\r\n\r\n', 1)[0]?.includes(text));
      return bad === undefined ? undefined : `the origin saw ${JSON.stringify(text)}`;
    };
  },

  /** The client never receives `text` (a poisoned or smuggled response). */
  notDeliver(text: string) {
    return (o: Outcome): string | undefined =>
      o.exchange.bytes.includes(text) ? `the client received ${JSON.stringify(text)}` : undefined;
  },
};

/** All the judges must hold; the first failing one says why. */
export function all(...judges: ((o: Outcome) => string | undefined)[]) {
  return (o: Outcome): string | undefined => {
    for (const j of judges) {
      const why = j(o);
      if (why !== undefined) return why;
    }
    return undefined;
  };
}
