// Requests aimed at something other than this origin (other hosts, absolute
// targets, CONNECT, paths above the root), methods a proxy answers or refuses
// itself, and clients that send slowly.
import { all, forwarded, type HostileCase, must, type Outcome, request } from './case.ts';

const parserRefuses = { statuses: [400], forwarded: [], closed: true } as const;
const refusedSafely = all(
  must.notForward,
  must.status((s) => s >= 400 && s < 500, '4xx'),
);
const originForm = (o: Outcome) =>
  o.forwarded.every((r) => / \/\S* HTTP\//.test(r.start) || r.start.startsWith('OPTIONS * '))
    ? undefined
    : 'the origin received a request target that is not origin-form';
const withinRoot = (o: Outcome) =>
  o.forwarded.some((r) => /\/(\.\.|%2e%2e)(\/| )/i.test(r.start))
    ? 'the origin received a path above its root'
    : undefined;

/** The origin saw nothing of the request before the client had sent all of it. */
const heldUntilComplete = (o: Outcome) => {
  const first = o.forwarded[0];
  if (first === undefined) return 'nothing reached the origin';
  const early = o.exchange.lastWriteAt - first.firstByteAt;
  return early > 5 ? `the origin held a partial request for ${Math.round(early)} ms` : undefined;
};

const openProxy: HostileCase[] = [
  {
    id: 'absolute-form-other',
    class: 'open-proxy',
    title: 'GET http://evil.test/ with Host: live.test',
    send: [request('GET http://evil.test/ HTTP/1.1')],
    expect: { statuses: [400], forwarded: [] },
    judge: all(must.answer, originForm),
  },
  {
    id: 'absolute-form-internal',
    class: 'open-proxy',
    title: 'GET http://127.0.0.1:22/ (reach an internal address through the proxy)',
    send: ['GET http://127.0.0.1:22/ HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n'],
    expect: { statuses: [400], forwarded: [] },
    judge: all(must.answer, originForm),
  },
  {
    id: 'authority-form',
    class: 'open-proxy',
    title: 'GET live.test:80 (authority-form outside CONNECT)',
    send: [request('GET live.test:80 HTTP/1.1')],
    expect: { statuses: [400], forwarded: [] },
    judge: all(must.answer, originForm),
  },
  {
    id: 'connect',
    class: 'open-proxy',
    title: 'CONNECT 127.0.0.1:22 (use the proxy as a tunnel)',
    send: ['CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n'],
    expect: { statuses: [405], forwarded: [], closed: true },
    judge: all(
      refusedSafely,
      must.status((s) => s !== 200, 'no tunnel'),
    ),
  },
  {
    id: 'other-host',
    class: 'open-proxy',
    title: 'Host: evil.test, which no Origin on the port declares',
    send: ['GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n'],
    expect: { statuses: [421], forwarded: [] },
    judge: must.answer,
  },
  {
    id: 'duplicate-host',
    class: 'open-proxy',
    title: 'Host: live.test, then Host: evil.test (RFC 9112 §3.2: 400)',
    send: ['GET / HTTP/1.1\r\nHost: live.test\r\nHost: evil.test\r\n\r\n'],
    expect: { statuses: [400], forwarded: [] },
    judge: refusedSafely,
  },
  {
    id: 'host-userinfo',
    class: 'open-proxy',
    title: 'Host: live.test@evil.test',
    send: ['GET / HTTP/1.1\r\nHost: live.test@evil.test\r\n\r\n'],
    expect: { statuses: [400], forwarded: [] },
    judge: all(must.answer, must.notCarry('@evil.test')),
  },
  {
    id: 'host-path',
    class: 'open-proxy',
    title: 'Host: live.test/evil',
    send: ['GET / HTTP/1.1\r\nHost: live.test/evil\r\n\r\n'],
    expect: { statuses: [400], forwarded: [] },
    judge: all(must.answer, must.notCarry('live.test/evil')),
  },
  {
    id: 'host-empty',
    class: 'open-proxy',
    title: 'An empty Host',
    send: ['GET / HTTP/1.1\r\nHost: \r\n\r\n'],
    expect: { statuses: [400], forwarded: [] },
    judge: must.answer,
  },
  {
    id: 'host-missing',
    class: 'open-proxy',
    title: 'HTTP/1.1 without Host',
    send: ['GET / HTTP/1.1\r\nX-A: 1\r\n\r\n'],
    expect: parserRefuses,
    judge: refusedSafely,
  },
  {
    id: 'host-port',
    class: 'open-proxy',
    title: 'Host: LIVE.test:8080 (case and port): routed, forwarded as sent',
    send: ['GET / HTTP/1.1\r\nHost: LIVE.test:8080\r\n\r\n'],
    expect: { statuses: [200], forwarded: [forwarded({ host: 'LIVE.test:8080' })] },
    judge: all(must.answer, must.host('LIVE.test:8080')),
  },
  {
    id: 'dot-dot',
    class: 'open-proxy',
    title: 'GET /../etc/passwd (a path above the root)',
    send: [request('GET /../etc/passwd HTTP/1.1')],
    expect: { statuses: [400], forwarded: [] },
    judge: all(must.answer, withinRoot),
  },
  {
    id: 'dot-dot-encoded',
    class: 'open-proxy',
    title: 'GET /static/%2e%2e/%2e%2e/etc/passwd',
    send: [request('GET /static/%2e%2e/%2e%2e/etc/passwd HTTP/1.1')],
    expect: { statuses: [400], forwarded: [] },
    judge: all(must.answer, withinRoot),
  },
  {
    id: 'dot-dot-inside',
    class: 'open-proxy',
    title: 'GET /a/../b stays inside the root: forwarded as sent, not rewritten',
    send: [request('GET /a/../b HTTP/1.1')],
    expect: { statuses: [200], forwarded: [forwarded({ line: 'GET /a/../b HTTP/1.1' })] },
    judge: must.answer,
  },
  {
    id: 'asterisk-get',
    class: 'open-proxy',
    title: 'GET * (asterisk-form is only for OPTIONS)',
    send: [request('GET * HTTP/1.1')],
    expect: { statuses: [400], forwarded: [] },
    judge: all(
      must.answer,
      must.status((s) => s < 500, 'not a server error'),
    ),
  },
];

const methods: HostileCase[] = [
  {
    id: 'trace',
    class: 'method',
    title: 'TRACE with a cookie (cross-site tracing)',
    send: [request('TRACE / HTTP/1.1', ['Cookie: session=secret'])],
    expect: { statuses: [405], forwarded: [] },
    judge: all(must.notForward, must.notDeliver('session=secret')),
  },
  {
    id: 'track',
    class: 'method',
    title: 'TRACK (IIS) with a cookie',
    send: [request('TRACK / HTTP/1.1', ['Cookie: session=secret'])],
    expect: parserRefuses,
    judge: all(must.notForward, must.notDeliver('session=secret')),
  },
  {
    id: 'options-asterisk',
    class: 'method',
    title: 'OPTIONS * (about the server itself): answered, never a 500',
    send: [request('OPTIONS * HTTP/1.1')],
    expect: { statuses: [200], forwarded: [] },
    judge: must.status((s) => s < 500, 'not a server error'),
  },
  {
    id: 'options-max-forwards-0',
    class: 'method',
    title: 'OPTIONS with Max-Forwards: 0 (the proxy is the final recipient, RFC 9110 §7.6.2)',
    send: [request('OPTIONS / HTTP/1.1', ['Max-Forwards: 0'])],
    expect: { statuses: [200], forwarded: [] },
    judge: all(
      must.notForward,
      must.status((s) => s < 500, 'not a server error'),
    ),
  },
  {
    id: 'options-max-forwards-3',
    class: 'method',
    title: 'OPTIONS with Max-Forwards: 3: forwarded with 2',
    send: [request('OPTIONS / HTTP/1.1', ['Max-Forwards: 3'])],
    expect: {
      statuses: [200],
      forwarded: [forwarded({ line: 'OPTIONS / HTTP/1.1', headers: ['Max-Forwards: 2'] })],
    },
    judge: must.headerIs('max-forwards', (v) => v === undefined || Number(v) < 3, 'must count down'),
  },
  {
    id: 'unknown-method',
    class: 'method',
    title: 'A method token the parser does not know',
    send: [request('FOO / HTTP/1.1')],
    expect: parserRefuses,
    judge: must.answer,
  },
  {
    id: 'http09',
    class: 'method',
    title: 'An HTTP/0.9 request line',
    send: ['GET /\r\n\r\n'],
    expect: { statuses: [505], forwarded: [], closed: true },
    judge: must.answer,
  },
];

const slow: HostileCase[] = [
  {
    id: 'slow-head',
    class: 'slow-client',
    title: 'A request head sent in three parts, 150 ms apart',
    send: ['GET / HTTP/1.1\r\n', { pauseMs: 150 }, 'Host: live.test\r\n', { pauseMs: 150 }, '\r\n'],
    expect: { statuses: [200], forwarded: [forwarded()] },
    judge: all(must.answer, heldUntilComplete),
  },
  {
    id: 'slow-body',
    class: 'slow-client',
    title: 'A 6-byte body sent one byte every 100 ms',
    send: [
      request('POST / HTTP/1.1', ['Content-Length: 6']),
      ...[...'abcdef'].flatMap((c) => [{ pauseMs: 100 }, c]),
    ],
    expect: { statuses: [200], forwarded: [forwarded({ line: 'POST / HTTP/1.1', body: 'abcdef' })] },
    judge: all(must.answer, heldUntilComplete),
  },
  {
    id: 'slow-chunked-body',
    class: 'slow-client',
    title: 'A chunked body sent one chunk every 100 ms',
    send: [
      request('POST / HTTP/1.1', ['Transfer-Encoding: chunked']),
      ...['2\r\nab\r\n', '2\r\ncd\r\n', '0\r\n\r\n'].flatMap((c) => [{ pauseMs: 100 }, c]),
    ],
    expect: { statuses: [200], forwarded: [forwarded({ line: 'POST / HTTP/1.1', body: 'abcd' })] },
    judge: all(must.answer, heldUntilComplete),
  },
  {
    id: 'body-abandoned',
    class: 'slow-client',
    title: 'A body that stops half way and the client leaves',
    send: [request('POST / HTTP/1.1', ['Content-Length: 10'], 'abc'), { pauseMs: 100 }, { end: true }],
    finals: 0,
    // Node's parser answers the cut request 400 as the connection ends.
    expect: { statuses: [400], forwarded: [] },
    judge: (o) =>
      o.forwarded.some((r) => r.complete)
        ? 'the origin received a request the client never finished'
        : undefined,
  },
];

export const ROUTING_CASES: readonly HostileCase[] = [...openProxy, ...methods, ...slow];
